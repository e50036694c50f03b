"""join: bring a node into the cluster through its trigger, with this run's credentials.

Renders a JoinConfiguration that always carries the CA pin (never
``unsafeSkipCAVerification: true``), plus ``controlPlane`` with the certificate key for control
planes; writes it atomically (0600) and then ``join`` into the trigger file in one command,
and follows the node's log to its end in another: with the facts probe, three per node.
Nodes already in the cluster are skipped: a re-run joins only what is missing.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, Duration, Step, StepPlan, do, skip
from k8slk_ops.node import paths
from k8slk_ops.output.events import EventKind
from k8slk_ops.steps.credentials import fresh_credentials
from k8slk_ops.steps.render import api_for, api_label, join_spec


class JoinOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: Duration | None = None


class Join(Step[JoinOptions]):
    name = "join"
    phase = "join"

    def plan(self, options: JoinOptions, ctx: PlanContext, node: str) -> StepPlan:
        if node == ctx.cluster.primary:
            return skip("primary control plane")
        if ctx.cluster.is_member(node):
            return skip("already in the cluster")
        facts = ctx.facts[node]
        api = api_label(facts)
        role = ctx.spec(node).role
        kind = "JoinConfiguration with controlPlane" if role == "control-plane" else "JoinConfiguration"
        return do(
            Action(
                f"write {paths.KUBEADM_YAML} ({kind}; {api}; CA pinned; mode 0600)",
                {"file": paths.KUBEADM_YAML, "apiVersion": api, "mode": "0600"},
            ),
            Action(f"write 'join' to {paths.KUBEADM_RUN}", {"trigger": "join"}),
            Action(f"follow {paths.KUBEADM_LOG} until kubeadm has completed"),
        )

    async def apply(self, options: JoinOptions, ctx: RunContext, node: str) -> bool:
        if ctx.state.credentials is None:
            raise NodeError("no join credentials were minted in this run", phase=self.phase)
        facts = ctx.facts(node)
        refused = facts.not_waiting("join")
        if refused is not None:
            raise NodeError(
                refused,
                phase=self.phase,
                log_tail=kubeadm.failure_tail(facts.messages),
                next_step=facts.not_waiting_next_step(ctx.rerun(node)),
            )
        spec = ctx.plan.spec(node)
        creds = await fresh_credentials(ctx, control_plane=spec.role == "control-plane")
        if spec.role == "control-plane" and not creds.certificate_key:
            raise NodeError("no certificate key for a control-plane join", phase=self.phase)
        api = api_for(facts)
        document = kubeadm.render_join(join_spec(ctx.plan, node, creds), api)
        lk = await ctx.node(node)
        await lk.trigger_with("join", document.encode())
        ctx.emit(node, self.phase, EventKind.PROGRESS, "triggered join; following the log")
        timeout = options.timeout or ctx.options.timeout
        # The wait for Ready comes next: its watch of the node list starts now, beside the joins.
        ctx.members_watcher().prime(timeout)
        try:
            result = await lk.wait_kubeadm(
                "join",
                timeout=timeout,
                on_note=lambda note: ctx.emit(node, self.phase, EventKind.WARN, note),
            )
        except asyncio.CancelledError:
            ctx.state.kubeadm_cut[node] = "join"  # a stop request ended the wait, not kubeadm
            raise
        if not result.ok:
            raise NodeError(result.reason, phase=self.phase, log_tail=result.tail(),
                            next_step=result.next_step(ctx.rerun(node)))
        return True
