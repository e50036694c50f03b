"""init: create the cluster on the primary control plane through the node's trigger.

Renders InitConfiguration + ClusterConfiguration + KubeletConfiguration for the API version the
node's own kubeadm speaks, writes it atomically to /run/node/kubeadm.yaml (0600) and then
``init`` into the trigger file (one command), and follows the kubeadm log until it completes or
fails (one command, which also tells when the kubeadm task has stopped). The
init's bootstrap token is one of ours, short-lived and described, so no 24 h token lingers.
"""

from __future__ import annotations

import asyncio
import secrets
import string

from pydantic import BaseModel, ConfigDict

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, Duration, Step, StepPlan, do, skip
from k8slk_ops.node import paths
from k8slk_ops.output.events import EventKind
from k8slk_ops.steps.render import api_for, api_label, init_spec


class InitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: Duration | None = None


_ALPHABET = string.ascii_lowercase + string.digits

# What init reaches on the primary (engine/milestones.py): its API server serving the admin
# with its rights (past upload-config: steps beside init may use admin.conf), then the cluster
# initialised (kubeadm has completed: its own addons, CoreDNS and kube-proxy, are in place).
ADMIN_API = "admin-api"
INITIALISED = "initialised"


def new_token() -> str:
    """A bootstrap token in kubeadm's format: 6 + 16 characters of [a-z0-9]."""
    pick = secrets.choice
    return "".join(pick(_ALPHABET) for _ in range(6)) + "." + "".join(
        pick(_ALPHABET) for _ in range(16)
    )


class Init(Step[InitOptions]):
    name = "init"
    phase = "init"
    reaches = (ADMIN_API, INITIALISED)

    def plan(self, options: InitOptions, ctx: PlanContext, node: str) -> StepPlan:
        if ctx.cluster.initialised:
            return skip("control plane already initialised")
        facts = ctx.facts[node]
        api = api_label(facts)
        return do(
            Action(
                f"write {paths.KUBEADM_YAML} (InitConfiguration, ClusterConfiguration, "
                f"KubeletConfiguration; {api}; mode 0600)",
                {"file": paths.KUBEADM_YAML, "apiVersion": api, "mode": "0600"},
            ),
            Action(f"write 'init' to {paths.KUBEADM_RUN}", {"trigger": "init"}),
            Action(
                f"follow {paths.KUBEADM_LOG} until kubeadm has completed",
                {"follow": paths.KUBEADM_LOG},
            ),
        )

    def spec(self, ctx: RunContext, node: str, token: str) -> kubeadm.InitSpec:
        """What the init file says: the inventory's cluster, with this run's token."""
        return init_spec(ctx.plan, node, token=token, run_id=ctx.options.run_id)

    async def apply(self, options: InitOptions, ctx: RunContext, node: str) -> bool:
        facts = ctx.facts(node)
        refused = facts.not_waiting("init")
        if refused is not None:
            raise NodeError(
                refused,
                phase=self.phase,
                log_tail=kubeadm.failure_tail(facts.messages),
                next_step=facts.not_waiting_next_step(ctx.rerun(node)),
            )
        token = new_token()
        ctx.add_secret(token)
        ctx.state.tokens.append(token.split(".")[0])
        api = api_for(facts)
        document = kubeadm.render_init(self.spec(ctx, node, token), api)
        lk = await ctx.node(node)
        await lk.trigger_with("init", document.encode())
        ctx.emit(node, self.phase, EventKind.PROGRESS,
                 f"wrote {paths.KUBEADM_YAML} ({api}), triggered init; following the log")
        timeout = options.timeout or ctx.options.timeout

        def on_line(state: kubeadm.KubeadmLogState) -> None:
            if state.admin_api:
                ctx.milestones.reach(ADMIN_API, node)

        try:
            result = await lk.wait_kubeadm(
                "init",
                timeout=timeout,
                on_note=lambda note: ctx.emit(node, self.phase, EventKind.WARN, note),
                on_line=on_line,
            )
        except asyncio.CancelledError:
            # A stop request ended the wait, not kubeadm: the init goes on on the node and
            # makes the run's token there. Counting the cluster as coming up makes
            # revoke-credentials delete that token, or name it in the report when it cannot.
            ctx.state.initialised = True
            ctx.state.kubeadm_cut[node] = "init"
            raise
        if not result.ok:
            raise NodeError(result.reason, phase=self.phase, log_tail=result.tail(),
                            next_step=result.next_step(ctx.rerun(node)))
        printed = kubeadm.parse_join_commands("\n".join(result.output))
        ctx.state.init_ca_hashes = tuple(sorted({h for cmd in printed for h in cmd.ca_cert_hashes}))
        ctx.state.initialised = True
        return True
