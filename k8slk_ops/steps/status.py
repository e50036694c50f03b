"""status: one row of facts per node, read-only.

Everything comes from facts already gathered (task states, kubeadm log, versions) and the
cluster's node list; control planes add their earliest certificate expiry from
``kubeadm certs check-expiration``, and a configured node that is not Ready its kubelet client
certificate's (one that expired while the node was off never rotates again). Unreachable nodes become rows too (the operation fills them
in), never crashes.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do
from k8slk_ops.output.rows import CertSummary, StatusRow
from k8slk_ops.steps.certs import kubelet_cert_expiry, read_certs


def status_row(ctx: PlanContext, node: str) -> StatusRow:
    """The facts part of a node's row (pure)."""
    facts = ctx.facts[node]
    member = ctx.cluster.members.get(node)
    return StatusRow(
        reachable=True,
        host_key="ok",
        kubelet_task=facts.tasks.get("kubelet", "MISSING").lower(),
        kubeadm=facts.kubeadm_state.value,
        kubeadm_version=facts.kubeadm_version,
        kubelet_version=member.kubelet_version if member else "",
        registered=member is not None,
        ready=bool(member and member.ready),
        not_ready_reason=member.not_ready_text if member else "",
        unschedulable=bool(member and member.unschedulable),
    )


class Status(Step[NoOptions]):
    name = "status"
    phase = "status"
    changes = False
    read_only = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        what = "read facts"
        if ctx.spec(node).role == "control-plane" and ctx.facts[node].admin_conf:
            what += " and `kubeadm certs check-expiration`"
        return do(Action(what))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        row = status_row(ctx.plan, node)
        facts = ctx.facts(node)
        if ctx.plan.spec(node).role == "control-plane" and facts.admin_conf:
            try:
                certs = await read_certs(ctx, node)
            except NodeError:
                pass  # status shows what it can; `certs check` says why
            else:  # status shows the earliest; `certs check` lists all
                row = dataclasses.replace(row, certs=CertSummary.of(certs, datetime.now(UTC)))
        member = ctx.plan.cluster.members.get(node)
        if facts.marker and not (member is not None and member.ready):
            expires = await kubelet_cert_expiry(ctx, node)
            if expires is not None:
                row = dataclasses.replace(row, kubelet_cert_expire=expires)
        ctx.state.status[node] = row
        return False
