"""etcd-healthy: health before disruption. Before a control plane is restarted (an upgrade's
reboot, a certificate renewal's static pod restart), every etcd member must answer and be part
of a quorum; a member already down plus the one about to restart can be the quorum's end.

Each control plane's member is asked through the same path as ``etcd status``
(``steps.etcd.member_health``); the member list a healthy member reports names members with no
healthy control plane behind them too (a dead machine left out of the inventory). ``--force``
turns the refusal into a warning.
"""

from __future__ import annotations

import asyncio

from k8slk_ops.context import PlanContext, RunContext
from k8slk_ops.errors import NodeError
from k8slk_ops.etcdctl import MemberHealth
from k8slk_ops.events import EventKind
from k8slk_ops.ssh import SSHError
from k8slk_ops.steps.base import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.steps.etcd import member_health
from k8slk_ops.steps.upgrade import not_due


async def _health(ctx: RunContext, node: str) -> MemberHealth:
    why = ctx.plan.unreachable.get(node)
    if why is not None:
        return MemberHealth(node, False, f"unreachable: {why}")
    try:
        return await member_health(await ctx.node(node))
    except SSHError as exc:
        return MemberHealth(node, False, f"unreachable: {exc}")


def unhealthy_members(healths: list[MemberHealth]) -> list[str]:
    """``member: why`` for each member that is not healthy, and for each member a healthy one
    lists that no healthy control plane answers for. Pure."""
    bad = [f"{h.node}: {h.error}" for h in healths if not h.healthy]
    answered = {h.node for h in healths}
    for h in healths:
        if not h.healthy:
            continue
        for m in h.members:
            if m.name not in answered:
                label = m.name or f"{m.member_id:x} (added, not started)"
                bad.append(f"{label}: listed by etcd, no control plane of the inventory answers for it")
                answered.add(m.name)
        break
    return bad


class EtcdHealthy(Step[NoOptions]):
    """Refuses to disrupt a control plane while etcd has a member that is not healthy."""

    name = "etcd-healthy"
    phase = "check"
    changes = False
    needs_node = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        if ctx.spec(node).role != "control-plane":
            return skip("not a control plane")
        if node in ctx.unreachable:  # nothing of it is disrupted: it stays reported unreachable
            return skip("unreachable")
        if ctx.cluster.through_ssh:
            # No API answers (every certificate expired, say): etcd's members refuse each
            # other too, and bringing them back is what this run is for.
            return skip("no API answers: etcd's health is what this run brings back")
        return do(Action("check that every etcd member is healthy (etcd status)"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        members = ctx.state.members
        cps = [n.name for n in ctx.inventory.control_planes if n.name in members]
        healths = list(await asyncio.gather(*(_health(ctx, cp) for cp in cps)))
        bad = unhealthy_members(healths)
        if not bad:
            return False
        said = "; ".join(bad)
        if ctx.options.etcd_unhealthy_ok:
            ctx.emit(node, self.phase, EventKind.WARN,
                     f"etcd is not healthy ({said}); going on because of --force")
            return False
        raise NodeError(
            f"etcd is not healthy, {node} not disrupted: {said}. Bring the member back (or "
            "remove it with remove-node), check with `k8slk-ops etcd status`, then run again; "
            "--force goes on anyway",
            phase=self.phase,
        )


class UpgradeEtcdHealthy(EtcdHealthy):
    """``etcd-healthy`` for the control planes this roll has work on only."""

    name = "upgrade-etcd-healthy"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return not_due(ctx, node) or super().plan(options, ctx, node)
