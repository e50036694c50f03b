"""fetch-kubeconfig: hand the operator an admin kubeconfig that points at the endpoint."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster import kubeconfig
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, Step, StepPlan, do
from k8slk_ops.node import paths
from k8slk_ops.output.events import EventKind


class KubeconfigOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merge: bool = False


def kubeconfig_path(ctx: PlanContext) -> Path:
    if ctx.options.kubeconfig_out is not None:
        return ctx.options.kubeconfig_out.expanduser()
    return ctx.inventory.source.parent / f"{ctx.inventory.cluster.name}.kubeconfig"


class FetchKubeconfig(Step[KubeconfigOptions]):
    name = "fetch-kubeconfig"
    phase = "kubeconfig"
    changes = False
    read_only = True

    def plan(self, options: KubeconfigOptions, ctx: PlanContext, node: str) -> StepPlan:
        target = kubeconfig_path(ctx)
        return do(
            Action(
                f"read {paths.ADMIN_CONF}, set server https://{ctx.inventory.endpoint}, "
                f"write {target} (0600)",
                {"local": str(target)},
            )
        )

    async def apply(self, options: KubeconfigOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        raw = await lk.read_file(paths.ADMIN_CONF)
        if raw is None:
            raise NodeError(f"{paths.ADMIN_CONF} is missing", phase=self.phase)
        text = raw.decode()
        for secret in _key_data(text):
            ctx.add_secret(secret)
        target = kubeconfig_path(ctx.plan)
        merge = options.merge or ctx.options.merge_kubeconfig
        try:
            pointed = kubeconfig.point_at(text, ctx.inventory.endpoint, f"{node}:{paths.ADMIN_CONF}")
            existing = kubeconfig.read_existing(target)
            if merge:  # named per cluster even into a new file: the next merge keeps them apart
                pointed = kubeconfig.merge(
                    existing or "", pointed, str(target), cluster=ctx.inventory.cluster.name
                )
            if existing == pointed:
                ctx.emit(node, self.phase, EventKind.PROGRESS, f"{target} is up to date")
            else:
                written = kubeconfig.write_private(target, pointed)
                via = f" (through the link {target})" if target.is_symlink() else ""
                ctx.emit(node, self.phase, EventKind.PROGRESS, f"wrote {written}{via}")
        except kubeconfig.KubeconfigError as exc:
            raise NodeError(str(exc), phase=self.phase) from None
        ctx.state.kubeconfig = target
        return False


def _key_data(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key in ("client-key-data", "client-certificate-data", "token") and value.strip():
            out.append(value.strip())
    return out
