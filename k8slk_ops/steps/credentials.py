"""mint-credentials and revoke-credentials: the join credentials of one run.

On the primary: a dedicated bootstrap token (short TTL, described with the run's ID), the CA
pin computed from the cluster CA certificate (and checked against what init printed), and, when
a control plane will join, a fresh certificate key from ``init phase upload-certs``. They live in
the run's memory only and are registered as secrets. The tokens are deleted when the run ends,
whether it succeeded or not.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from k8slk_ops import kubeadm, paths
from k8slk_ops.context import JoinCredentials, PlanContext, RunContext
from k8slk_ops.errors import NodeError
from k8slk_ops.events import EventKind
from k8slk_ops.steps.base import Action, Step, StepPlan, do, skip


class MintOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl: str | None = None


def joining_nodes(ctx: PlanContext) -> list[str]:
    """Nodes of the selection that are not in the cluster and will need to join."""
    selected = set(ctx.options.selected) or {n.name for n in ctx.inventory.nodes}
    return [
        n.name
        for n in ctx.inventory.nodes
        if n.name in selected
        and n.name != ctx.cluster.primary
        and not ctx.cluster.is_member(n.name)
        and n.name in ctx.facts
    ]


class MintCredentials(Step):
    name = "mint-credentials"
    phase = "credentials"
    # Short-lived tokens, revoked when the run ends: the primary itself is left as it was.
    changes = False
    Options = MintOptions

    def plan(self, options: BaseModel, ctx: PlanContext, node: str) -> StepPlan:
        joining = joining_nodes(ctx)
        if not joining:
            return skip("no node needs to join")
        assert isinstance(options, MintOptions)
        ttl = options.ttl or ctx.options.token_ttl
        actions = [
            Action(f"kubeadm token create --ttl {ttl} (for {len(joining)} joining node(s))"),
            Action(f"compute the CA pin from {paths.CA_CERT}"),
        ]
        if any(ctx.spec(n).role == "control-plane" for n in joining):
            actions.append(Action("kubeadm init phase upload-certs --upload-certs"))
        return do(*actions)

    async def apply(self, options: BaseModel, ctx: RunContext, node: str) -> None:
        assert isinstance(options, MintOptions)
        lk = await ctx.node(node)
        ttl = options.ttl or ctx.options.token_ttl
        description = f"k8slk-ops run {ctx.options.run_id}"
        result = await lk.kubeadm("token", "create", "--ttl", ttl, "--description", description)
        if result.exit_status != 0:
            raise NodeError(_fail("kubeadm token create", result.stderr), phase=self.phase)
        token = kubeadm.parse_token(result.stdout.decode())
        ctx.add_secret(token)
        token_id = token.split(".")[0]
        ctx.results.setdefault("tokens", []).append(token_id)

        pem = await lk.read_file(paths.CA_CERT)
        if pem is None:
            raise NodeError(f"{paths.CA_CERT} is missing on the primary", phase=self.phase)
        pin = kubeadm.ca_cert_hash(pem)
        printed = ctx.results.get("init_ca_hashes") or []
        if printed and pin not in printed:
            raise NodeError(
                f"the CA pin computed from {paths.CA_CERT} ({pin}) differs from the one kubeadm "
                f"init printed ({', '.join(printed)}): refusing to hand it to joining nodes",
                phase=self.phase,
            )
        cert_key = None
        joining = joining_nodes(ctx.plan)
        if any(ctx.plan.spec(n).role == "control-plane" for n in joining):
            up = await lk.kubeadm("init", "phase", "upload-certs", "--upload-certs")
            if up.exit_status != 0:
                raise NodeError(_fail("kubeadm upload-certs", up.stdout + up.stderr), phase=self.phase)
            cert_key = kubeadm.parse_certificate_key(up.stdout.decode())
            ctx.add_secret(cert_key)
        ctx.credentials = JoinCredentials(
            endpoint=ctx.inventory.endpoint,
            token=token,
            ca_cert_hash=pin,
            certificate_key=cert_key,
            token_id=token_id,
        )
        ctx.emit(node, self.phase, EventKind.PROGRESS, f"token {token_id} minted (ttl {ttl}); CA pin {pin}")


class RevokeCredentials(Step):
    name = "revoke-credentials"
    phase = "cleanup"
    changes = False

    def plan(self, options: BaseModel, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action("delete the bootstrap tokens this run minted, if any"))

    async def apply(self, options: BaseModel, ctx: RunContext, node: str) -> None:
        token_ids: list[str] = ctx.results.get("tokens") or []
        if not token_ids:
            return
        lk = await ctx.node(node)
        result = await lk.kubeadm("token", "delete", *token_ids)
        if result.exit_status != 0:
            raise NodeError(_fail("kubeadm token delete", result.stdout + result.stderr), phase=self.phase)
        ctx.results["tokens"] = []
        ctx.emit(node, self.phase, EventKind.PROGRESS, f"deleted token(s) {', '.join(token_ids)}")


def _fail(what: str, output: bytes) -> str:
    text = output.decode(errors="replace").strip().splitlines()
    return f"{what} failed: {text[-1] if text else 'no output'}"
