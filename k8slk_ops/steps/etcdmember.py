"""A control plane's etcd member when its machine is gone: out on remove-node, checked on add-node.

``remove-etcd-member`` (remove-node, after ``kubeadm reset``): the node's member is removed
through the primary's etcd when it is still listed, does not answer, and the members left keep
quorum. A reset that reached etcd has taken the member out already; this is for the machine that
never ran it (dead, with ``--force``) or one whose reset could not reach etcd.

``etcd-member-check`` (add-node, on the primary, before anything is minted): kubeadm's
``join --control-plane`` fails its check-etcd phase while any listed member does not answer, and
cannot add a member at a peer URL that is already listed. Rather than let the node fail half way
(a failed join leaves certificates and manifests that need a reset and a reboot), the run stops
here and names the command that fixes it: ``remove-node NAME --force --yes``. add-node never
removes a member itself (see docs/etcd-members.md for why).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster import etcdctl, etcdmembers
from k8slk_ops.cluster.etcdmembers import MemberRemovalRefused
from k8slk_ops.cluster.etcdpod import EtcdPod, EtcdPodError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, Step, StepPlan, do, skip
from k8slk_ops.output.events import EventKind


class EtcdMemberOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RemoveEtcdMember(Step[EtcdMemberOptions]):
    name = "remove-etcd-member"
    phase = "etcd"
    needs_node = False  # through the primary's etcd: the node itself may be gone

    def plan(self, options: EtcdMemberOptions, ctx: PlanContext, node: str) -> StepPlan:
        if ctx.spec(node).role != "control-plane":
            return skip("not a control plane")
        return do(Action(
            f"if its etcd member is still listed and does not answer: etcdctl member remove "
            f"through {ctx.cluster.primary}'s etcd, once the members left are checked for quorum"
        ))

    async def apply(self, options: EtcdMemberOptions, ctx: RunContext, node: str) -> bool:
        if ctx.plan.cluster.primary in ctx.state.reset:
            return True  # the last control plane was reset: its etcd went with it
        primary = await ctx.node(ctx.plan.cluster.primary)
        addresses = etcdmembers.addresses_of(ctx.inventory, ctx.plan.node_ips, node)
        try:
            pod = await EtcdPod.find(primary)
            removal = await etcdmembers.remove_dead_member(pod, node, addresses)
        except (EtcdPodError, MemberRemovalRefused) as exc:
            raise NodeError(str(exc), phase=self.phase) from None
        if removal is None:
            return False
        ctx.state.etcd_removed.append(removal)
        ctx.emit(node, self.phase, EventKind.PROGRESS, removal.line())
        return True


class EtcdMemberCheck(Step[EtcdMemberOptions]):
    name = "etcd-member-check"
    phase = "etcd"
    changes = False

    def plan(self, options: EtcdMemberOptions, ctx: PlanContext, node: str) -> StepPlan:
        names = checked(ctx)
        if not names:
            return skip("no control plane to join")
        return do(Action(
            f"etcd through {node}: every member answers (kubeadm's check-etcd) and none at "
            f"{', '.join(names)}'s address was left by a machine that is gone"
        ))

    async def apply(self, options: EtcdMemberOptions, ctx: RunContext, node: str) -> bool:
        names = checked(ctx.plan)
        try:
            pod = await EtcdPod.find(await ctx.node(node))
            members = await etcdmembers.listed_members(pod)
            silent = await etcdmembers.silent_members(pod, members)
        except (EtcdPodError, etcdctl.EtcdctlError) as exc:
            raise NodeError(f"etcd is not healthy, no control plane can join: {exc}",
                            phase=self.phase) from None
        problems = []
        for name in names:
            mine = etcdmembers.member_of(
                members, name, etcdmembers.addresses_of(ctx.inventory, ctx.plan.node_ips, name))
            if mine is None or mine.member_id not in silent:
                continue  # not listed, or a live member (a NotReady node whose etcd runs)
            problems.append(
                f"etcd still lists {name}'s old member {mine.member_id:x} "
                f"({', '.join(mine.peer_urls) or 'no peer URL'}), which does not answer: the "
                f"machine at that address is not that member. Run "
                f"`{etcdmembers.remove_node_command(ctx.inventory, name)}` first (it removes the "
                "member and the Node), then add-node again")
        for m in members:
            owner = etcdmembers.node_of(m, ctx.inventory, ctx.plan.node_ips)
            if m.member_id not in silent or owner in names:
                continue
            fix = (etcdmembers.remove_node_command(ctx.inventory, owner) if owner
                   else etcdmembers.etcdctl_remove_command(m))
            problems.append(
                f"etcd member {m.member_id:x} ({m.name or 'not started'}) does not answer "
                f"({silent[m.member_id]}): kubeadm's check-etcd refuses every control-plane join "
                f"while it is listed. If its machine is gone for good: {fix}")
        if problems:
            raise NodeError("; ".join(problems), phase=self.phase)
        return False


def checked(ctx: PlanContext) -> list[str]:
    """The control planes this add-node run would join (selected, not in the cluster), and
    those named on the command line that are in the cluster already: a machine replaced while
    its old Node is still there (Ready, even, for the minute before the Node is marked
    otherwise) would be skipped by join as a member, so the run looks at its etcd member and
    says why."""
    named = set(ctx.options.selected)
    return [
        spec.name for spec in ctx.inventory.control_planes
        if spec.name != ctx.cluster.primary
        and (spec.name in named or (not named and not ctx.cluster.is_member(spec.name)))
    ]
