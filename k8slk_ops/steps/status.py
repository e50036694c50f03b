"""status: one row of facts per node, read-only.

Everything comes from facts already gathered (task states, kubeadm log, versions) and the
cluster's node list; control planes add their earliest certificate expiry from
``kubeadm certs check-expiration``. Unreachable nodes become rows too (the operation fills them
in), never crashes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from k8slk_ops import kubeadm
from k8slk_ops.context import PlanContext, RunContext
from k8slk_ops.steps.base import Action, Step, StepPlan, do


def status_row(ctx: PlanContext, node: str) -> dict[str, Any]:
    """The facts part of a node's row (pure)."""
    facts = ctx.facts[node]
    member = ctx.cluster.members.get(node)
    return {
        "reachable": True,
        "hostKey": "ok",
        "kubeletTask": facts.tasks.get("kubelet", "MISSING").lower(),
        "kubeadm": facts.kubeadm_state.value,
        "kubeadmVersion": facts.kubeadm_version,
        "kubeletVersion": member.kubelet_version if member else "",
        "registered": member is not None,
        "ready": bool(member and member.ready),
        "notReadyReason": member.not_ready_text if member else "",
        "unschedulable": bool(member and member.unschedulable),
        "certsExpire": None,
    }


class Status(Step):
    name = "status"
    phase = "status"
    changes = False

    def plan(self, options: BaseModel, ctx: PlanContext, node: str) -> StepPlan:
        what = "read facts"
        if ctx.spec(node).role == "control-plane" and ctx.facts[node].admin_conf:
            what += " and `kubeadm certs check-expiration`"
        return do(Action(what))

    async def apply(self, options: BaseModel, ctx: RunContext, node: str) -> None:
        row = status_row(ctx.plan, node)
        facts = ctx.facts(node)
        if ctx.plan.spec(node).role == "control-plane" and facts.admin_conf:
            lk = await ctx.node(node)
            result = await lk.kubeadm("certs", "check-expiration", timeout=60)
            if result.exit_status == 0:
                rows = kubeadm.parse_cert_expiration(result.stdout.decode(errors="replace"))
                dates = [r.expires for r in rows if r.expires is not None and not r.is_ca]
                if dates:
                    soonest = min(dates)
                    row["certsExpire"] = soonest.isoformat()
                    row["certsDaysLeft"] = int(
                        (soonest - datetime.now(UTC)).total_seconds() // 86400
                    )
                row["certsMissing"] = [r.name for r in rows if r.missing]
        ctx.state.details[node] = row
