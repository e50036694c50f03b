"""etcd-healthy: health before disruption. Before a control plane is restarted (an upgrade's
reboot, a certificate renewal's static pod restart), every etcd member must answer and be part
of a quorum; a member already down plus the one about to restart can be the quorum's end.

One member is asked for the whole cluster first (``steps.etcd.cluster_view``: etcdctl's
``--cluster`` dials every listed member from there), through the primary's etcd pod: one node
answers for all, instead of an SSH exchange per control plane. Only when that member cannot
answer, or is not healthy itself, is each control plane's member asked through its own node,
the same path as ``etcd status`` (``steps.etcd.member_health``). Either way, members with no
control plane of the inventory behind them are named too (a dead machine left out of the
inventory).

Before an upgrade disrupts a control plane, ``upgrade-etcd-healthy`` also reads each member's
running etcd version (``endpoint status``) and refuses what kubeadm of the target could not
take through the roll (``kubeadm.etcdversions.refusal``). ``--force`` turns either refusal into
a warning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster.etcdctl import ClusterView, EtcdctlError, MemberHealth
from k8slk_ops.cluster.etcdmembers import addresses_of, member_of
from k8slk_ops.cluster.etcdpod import EtcdPodError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.kubeadm import etcdversions
from k8slk_ops.kubeadm.errors import VersionError
from k8slk_ops.kubeadm.etcdversions import EtcdVersion, MemberEtcd
from k8slk_ops.output.events import EventKind
from k8slk_ops.ssh import SSHError
from k8slk_ops.steps.etcd import NO_LEADER, cluster_view, member_health
from k8slk_ops.steps.upgrade import member_version, not_due, target_version


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


def view_problems(view: ClusterView, owners: Mapping[str, frozenset[str]]) -> list[str]:
    """``who: why`` for each control plane whose member is not healthy in ``view``, each
    control plane with no member listed, and each member no control plane accounts for.
    ``owners``: control plane -> the addresses it may have given etcd. Pure."""
    bad, claimed = [], set()
    for cp, addresses in owners.items():
        member = member_of(view.members, cp, addresses)
        if member is None:
            bad.append(f"{cp}: no etcd member of it is listed")
            continue
        claimed.add(member.member_id)
        why = view.problem(member, NO_LEADER)
        if why:
            bad.append(f"{cp}: {why}")
    for m in view.members:
        if m.member_id not in claimed:
            label = m.name or f"{m.member_id:x} (added, not started)"
            bad.append(f"{label}: listed by etcd, no control plane of the inventory answers for it")
    return bad


@dataclass(frozen=True)
class EtcdReading:
    """What the gate learnt of etcd: what is wrong (empty: healthy), each answering member's
    version, and how it was asked."""

    bad: list[str]
    versions: dict[str, str]  # control plane -> its member's running etcd version
    through: str  # "NODE (--cluster)" or "each control plane"


async def read_etcd(ctx: RunContext, cps: list[str]) -> EtcdReading:
    """The cluster view through one healthy member when it can be had, else each control
    plane's member through its own node."""
    owners = {cp: addresses_of(ctx.inventory, ctx.plan.node_ips, cp) for cp in cps}
    asked = [ctx.plan.cluster.primary] if ctx.plan.cluster.primary in cps else []
    asked += [cp for cp in cps if cp not in asked]
    first = next((cp for cp in asked if cp not in ctx.plan.unreachable), None)
    if first is not None:
        try:
            view = await cluster_view(await ctx.node(first))
        except (EtcdPodError, EtcdctlError, SSHError):
            view = None
        own = member_of(view.members, first, owners[first]) if view is not None else None
        if view is not None and own is not None and not view.problem(own, NO_LEADER):
            versions = {}
            for cp, addresses in owners.items():
                member = member_of(view.members, cp, addresses)
                status = view.status_of(member) if member is not None else None
                if status is not None and status.version:
                    versions[cp] = status.version
            return EtcdReading(view_problems(view, owners), versions, f"{first} (--cluster)")
    healths = list(await asyncio.gather(*(_health(ctx, cp) for cp in cps)))
    versions = {h.node: h.status.version for h in healths
                if h.status is not None and h.status.version}
    return EtcdReading(unhealthy_members(healths), versions, "each control plane")


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
        reading = await read_etcd(ctx, cps)
        self.refuse_unhealthy(ctx, node, reading.bad)
        await self.after_health(ctx, node, reading)
        return False

    async def after_health(self, ctx: RunContext, node: str, reading: EtcdReading) -> None:
        """What a subclass checks once etcd's health is known."""

    def refuse_unhealthy(self, ctx: RunContext, node: str, bad: list[str]) -> None:
        if not bad:
            return
        said = "; ".join(bad)
        if ctx.options.etcd_unhealthy_ok:
            ctx.emit(node, self.phase, EventKind.WARN,
                     f"etcd is not healthy ({said}); going on because of --force")
            return
        raise NodeError(
            f"etcd is not healthy, {node} not disrupted: {said}. Bring the member back (or "
            "remove it with remove-node), check with `k8slk-ops etcd status`, then run again; "
            "--force goes on anyway",
            phase=self.phase,
        )


class UpgradeEtcdHealthy(EtcdHealthy):
    """``etcd-healthy`` for the control planes this roll has work on only, and the check that
    kubeadm of the target can take the etcd the members run (``kubeadm.etcdversions``)."""

    name = "upgrade-etcd-healthy"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        skipped = not_due(ctx, node) or super().plan(options, ctx, node)
        if skipped.due:
            target = target_version(ctx)
            return do(Action(
                "check that every etcd member is healthy and runs an etcd kubeadm "
                f"{target.major}.{target.minor} can upgrade "
                f"({etcdversions.oldest_upgradable(target).line} or newer, one minor for all)"
            ))
        return skipped

    async def after_health(self, ctx: RunContext, node: str, reading: EtcdReading) -> None:
        target = target_version(ctx.plan)
        members = []
        for cp, text in sorted(reading.versions.items()):
            try:
                version = EtcdVersion.parse(text)
            except VersionError:
                continue  # not a version: the health refusal, or none, already spoke for it
            at_target = (member_version(ctx.plan.cluster.members.get(cp)) == target
                         or ctx.state.versions.get(cp) == str(target))
            members.append(MemberEtcd(cp, version, at_target))
        if members:
            ctx.emit(node, self.phase, EventKind.PROGRESS,
                     f"{etcdversions.summary(target, members)} (read through {reading.through})")
        why = etcdversions.refusal(target, members)
        if not why:
            return
        if ctx.options.etcd_unhealthy_ok:
            ctx.emit(node, self.phase, EventKind.WARN,
                     f"etcd's version: {why}; going on because of --force")
            return
        raise NodeError(f"refusing the upgrade, {node} not disrupted: {why}; --force goes on "
                        "anyway", phase=self.phase)
