"""Taking nodes out: the quorum guard, drain, delete the Node, ``kubeadm reset -f``.

Drain and delete run through the primary's kubectl, so they work for a node that is gone
(with ``--force``); the reset runs on the node itself when it can be reached. A drain that fails
or is interrupted leaves its node to the stage's cleanup (``uncordon``) and stops, unless forced. Control planes leave etcd through kubeadm reset's
remove-etcd-member phase before their Node object is deleted.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.base.nextstep import tool_line
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, Duration, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.node.uncut import uncut
from k8slk_ops.output.events import EventKind

UNCORDON_TIMEOUT = 30.0


def removing(ctx: PlanContext) -> list[str]:
    """The nodes this run takes out: ``leaving`` when the command says (apply's nodes marked
    ``remove: true``), else the selection (remove-node's arguments)."""
    gone = set(ctx.options.leaving or ctx.options.selected)
    return [n.name for n in ctx.inventory.nodes if n.name in gone]


def forced(ctx: PlanContext, times: int) -> str:
    """How the operator forces a refused removal on: ``--force`` (``times`` times) on
    remove-node's own line; apply, which takes no ``--force``, hands its nodes to remove-node."""
    if not ctx.options.leaving:
        return "--force twice" if times == 2 else "--force"
    line = tool_line("remove-node", str(ctx.inventory.source), *removing(ctx),
                     *["--force"] * times)
    return f"`{line}`"


class GuardOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RemovalGuard(Step[GuardOptions]):
    """Refuses removals that would leave no control plane or break etcd quorum."""

    name = "removal-guard"
    phase = "guard"
    changes = False
    read_only = True

    def plan(self, options: GuardOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action("check that the removal keeps a control plane and etcd quorum"))

    async def apply(self, options: GuardOptions, ctx: RunContext, node: str) -> bool:
        problem = quorum_problem(ctx.plan)
        if ctx.plan.cluster.primary in removing(ctx.plan) and not problem:
            # Only when control planes outside the inventory keep the cluster: we would be
            # sawing off the branch this run sits on.
            raise NodeError(
                f"{ctx.plan.cluster.primary} is the control plane this run works through and "
                "no other control plane of the inventory answers; add one to the inventory",
                phase=self.phase,
            )
        if problem and ctx.options.force < 2:
            how = ("Pass --force twice" if not ctx.options.leaving
                   else f"Run {forced(ctx.plan, 2)}")
            raise NodeError(f"{problem}; refusing. {how} to do it anyway", phase=self.phase)
        if problem:
            ctx.emit(node, self.phase, EventKind.WARN, f"{problem}; going ahead (--force twice)")
        return False


def quorum_problem(ctx: PlanContext) -> str:
    """Why removing the selected nodes is unsafe for the control plane, or ''. Pure."""
    gone = set(removing(ctx))
    cps = [n for n, m in ctx.cluster.members.items() if m.control_plane]
    leaving = [n for n in cps if n in gone]
    if not leaving:
        return ""
    if len(leaving) == len(cps):
        return "this would remove the last control plane"
    remaining = len(cps) - len(leaving)
    if remaining < len(cps) // 2 + 1:
        return (
            f"removing {len(leaving)} of {len(cps)} control planes at once would break etcd "
            f"quorum ({remaining} left, {len(cps) // 2 + 1} needed)"
        )
    carrier = endpoint_carrier(ctx)
    if carrier in gone:
        return (
            f"{carrier} carries the controlPlaneEndpoint ({ctx.inventory.endpoint}) that every "
            "kubelet and kubeconfig of the cluster talks to; removing it cuts them all off. Point "
            "the endpoint at a load balancer or a DNS name that follows the control planes first"
        )
    return ""


def endpoint_carrier(ctx: PlanContext) -> str | None:
    """The control plane whose own address (or IP, when it is named) is the API endpoint, if
    the endpoint is one."""
    host = ctx.inventory.endpoint_host
    for spec in ctx.inventory.control_planes:
        if host in (spec.address, spec.node_ip, ctx.node_ips.get(spec.name)):
            return spec.name
    return None


class DrainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    timeout: Duration = 300.0
    grace_period: int = Field(default=-1, alias="gracePeriod")
    ignore_daemonsets: bool = Field(default=True, alias="ignoreDaemonsets")
    delete_emptydir_data: bool = Field(default=True, alias="deleteEmptydirData")


def drain_args(options: DrainOptions, node: str, timeout: float, force: bool) -> list[str]:
    """``kubectl drain`` arguments; the timeout in Go's own form, whatever the user wrote."""
    args = ["drain", node, f"--timeout={kubeadm.format_duration(timeout)}"]
    if options.grace_period >= 0:
        args.append(f"--grace-period={options.grace_period}")
    if options.ignore_daemonsets:
        args.append("--ignore-daemonsets")
    if options.delete_emptydir_data:
        args.append("--delete-emptydir-data")
    if force:
        args.append("--force")
    return args


class Drain(Step[DrainOptions]):
    """Cordons and drains a node through the primary.

    A drain that fails or is interrupted leaves the node cordoned; the stage's ``cleanup``
    (``uncordon``) gives it back to the scheduler. With ``--force`` a failed drain is a warning
    and the removal goes on.
    """

    name = "drain"
    phase = "drain"
    disrupts = True
    needs_node = False

    def plan(self, options: DrainOptions, ctx: PlanContext, node: str) -> StepPlan:
        if not ctx.cluster.is_member(node):
            return skip("not in the cluster")
        if node in ctx.unreachable and ctx.options.force < 1:
            return do(Action(f"refuse: the node is unreachable (use {forced(ctx, 1)} to remove "
                             "it anyway)"))
        return do(Action(f"kubectl drain {node} (on {ctx.cluster.primary})"))

    async def apply(self, options: DrainOptions, ctx: RunContext, node: str) -> bool:
        force = ctx.options.force >= 1
        if node in ctx.plan.unreachable and not force:
            raise NodeError(
                f"unreachable ({ctx.plan.unreachable[node]}): use {forced(ctx.plan, 1)} to drain "
                "and delete it without resetting it",
                phase=self.phase,
            )
        primary = await ctx.node(ctx.plan.cluster.primary)
        timeout = ctx.options.drain_timeout or options.timeout
        ctx.state.drains_unfinished.add(node)
        result = await primary.kubectl(*drain_args(options, node, timeout, force), timeout=None)
        if result.exit_status == 0:
            ctx.state.drains_unfinished.discard(node)
            return True
        last = kubeadm.failure_summary(result.stderr or result.stdout)
        if force:
            ctx.state.drains_unfinished.discard(node)
            ctx.emit(node, self.phase, EventKind.WARN, f"drain failed ({last}); forced on")
            return True
        raise NodeError(f"drain failed: {last} ({forced(ctx.plan, 1)} removes it anyway)",
                        phase=self.phase)


class Uncordon(Step[NoOptions]):
    """Cleanup after a drain that did not finish: the node goes back to the scheduler.

    Acts only on a node whose drain this run started and that neither finished nor was forced
    on, so a node the operator had cordoned before stays cordoned.
    """

    name = "uncordon"
    phase = "uncordon"
    changes = False
    needs_node = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        if not ctx.cluster.is_member(node):
            return skip("not in the cluster")
        return do(
            Action(f"kubectl uncordon {node} (on {ctx.cluster.primary}) if its drain did not finish")
        )

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        if node not in ctx.state.drains_unfinished:
            return False
        primary = await ctx.node(ctx.plan.cluster.primary)
        try:
            result = await asyncio.wait_for(primary.kubectl("uncordon", node), UNCORDON_TIMEOUT)
            uncordoned = result.exit_status == 0
        except TimeoutError:
            uncordoned = False
        if not uncordoned:
            raise NodeError(
                f"the drain did not finish and the node is still cordoned: kubectl uncordon {node}",
                phase=self.phase,
            )
        ctx.state.drains_unfinished.discard(node)
        ctx.emit(node, self.phase, EventKind.WARN, "the drain did not finish: node uncordoned")
        return False


class DeleteNode(Step[NoOptions]):
    name = "delete-node"
    phase = "delete"
    needs_node = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        if not ctx.cluster.is_member(node):
            return skip("not in the cluster")
        return do(Action(f"kubectl delete node {node} (on {ctx.cluster.primary})"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        if ctx.plan.cluster.primary in ctx.state.reset:
            ctx.emit(
                node, self.phase, EventKind.WARN,
                "the last control plane was reset: the cluster's API is gone with it, "
                "no Node object is left to delete",
            )
            return True
        primary = await ctx.node(ctx.plan.cluster.primary)
        result = await primary.kubectl("delete", "node", node)
        text = (result.stderr or result.stdout).decode(errors="replace")
        if result.exit_status != 0 and "NotFound" not in text:
            raise NodeError(
                f"kubectl delete node failed: {kubeadm.failure_summary(text)}", phase=self.phase
            )
        ctx.state.members.pop(node, None)
        return True


class KubeadmReset(Step[NoOptions]):
    name = "kubeadm-reset"
    phase = "reset"
    disrupts = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        facts = ctx.facts[node]
        if not (facts.marker or facts.admin_conf or ctx.cluster.is_member(node)):
            return skip("nothing to reset")
        return do(Action("kubeadm reset -f (the node needs a reboot before it can join again)"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        with uncut():  # a reset cut half-way leaves a node neither member nor clean
            result = await lk.kubeadm("reset", "-f", timeout=300)
        if result.exit_status != 0:
            why = kubeadm.failure_summary(result.stdout + result.stderr)
            raise NodeError(f"kubeadm reset failed: {why}", phase=self.phase)
        ctx.state.reset.add(node)
        ctx.emit(node, self.phase, EventKind.PROGRESS, "reset; reboot the node before re-joining")
        return True
