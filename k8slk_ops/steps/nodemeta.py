"""node-metadata: the inventory's labels and taints on a Node, through the primary's kubectl.

The plan compares the inventory with the Node as the run first read it
(``nodemeta.differences``); the apply reads the Node again right before it writes, so a label
changed or a taint added by hand meanwhile is seen, and writes every change of the node in one
request (``kubectl patch node --type=merge``): labels, taints and the annotations that record
what the tool owns change together or not at all. A node that joins in the same run gets its
labels from the kubelet at the join (``--node-labels``); this step then adds its taints and
records both as owned.
"""

from __future__ import annotations

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.base.nextstep import NextStep
from k8slk_ops.cluster.membership import API_REQUEST_TIMEOUT, NODE_LIST_TIMEOUT, members_of
from k8slk_ops.cluster.nodemeta import Current, Desired, NodeMetaDiff, differences, patch_text
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.output.events import EventKind

PHASE = "labels"


def planned_diff(ctx: PlanContext, node: str) -> NodeMetaDiff | None:
    """What differs on ``node`` as the run first read it; None when it is not a member."""
    member = ctx.cluster.members.get(node)
    if member is None:
        return None
    return differences(node, Desired.of(ctx.spec(node)), Current.of(member))


def _detail(diff: NodeMetaDiff) -> list[Action]:
    actions = [
        Action(f"{c} (kubectl patch on the primary)",
               {"label": c.key, "change": str(c.change), "value": c.new})
        for c in diff.labels
    ] + [
        Action(f"{c} (kubectl patch on the primary)",
               {"taint": c.ident, "change": str(c.change),
                "value": None if c.new is None else c.new.value})
        for c in diff.taints
    ]
    if not actions:  # only the record of what the tool owns changes
        actions = [Action(line, {"record": True}) for line in diff.summaries()]
    return actions


class NodeMetadata(Step[NoOptions]):
    """Sets the labels and taints the inventory lists, removes those it owned and dropped."""

    name = "node-metadata"
    phase = PHASE
    needs_node = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        diff = planned_diff(ctx, node)
        if diff is None:
            desired = Desired.of(ctx.spec(node))
            if desired.empty:
                return skip("no labels or taints in the inventory")
            if node in ctx.unreachable:
                return skip("unreachable: it has to join first")
            wanted = [f"{k}={v}" for k, v in sorted(desired.labels.items())]
            wanted += [str(t) for t in desired.taints]
            return do(Action(
                f"once it has joined: labels and taints {', '.join(wanted)}, recorded as owned "
                "(kubectl patch on the primary)",
                {"joining": True},
            ))
        if diff.empty:
            return skip("labels and taints match the inventory")
        return do(*_detail(diff))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        primary = await ctx.node(ctx.plan.cluster.primary)
        again = NextStep.then(
            f"check that {ctx.plan.cluster.primary}'s API answers (`kubectl get node {node}`)",
            ctx.again or ctx.rerun(node).join,
        )
        result = await primary.kubectl(
            "get", "node", node, "-o", "json",
            f"--request-timeout={kubeadm.format_duration(API_REQUEST_TIMEOUT)}",
            timeout=NODE_LIST_TIMEOUT,
        )
        if result.exit_status != 0:
            why = kubeadm.failure_summary(result.stderr or result.stdout)
            raise NodeError(f"reading the Node failed: {why}", phase=self.phase, next_step=again)
        try:
            member = members_of(result.stdout.decode(errors="replace")).get(node)
        except kubeadm.ParseError as exc:
            raise NodeError(f"reading the Node failed: {exc}", phase=self.phase,
                            next_step=again) from None
        if member is None:
            raise NodeError("the cluster has no Node of this name", phase=self.phase,
                            next_step=again)
        current = Current.of(member)
        diff = differences(node, Desired.of(ctx.plan.spec(node)), current)
        if diff.empty:
            return False
        patched = await primary.kubectl(
            "patch", "node", node, "--type=merge", "-p", patch_text(current, diff),
            f"--request-timeout={kubeadm.format_duration(API_REQUEST_TIMEOUT)}",
            timeout=NODE_LIST_TIMEOUT,
        )
        if patched.exit_status != 0:
            why = kubeadm.failure_summary(patched.stderr or patched.stdout)
            raise NodeError(f"kubectl patch node failed: {why}", phase=self.phase,
                            next_step=again)
        for line in diff.summaries():
            ctx.emit(node, self.phase, EventKind.PROGRESS, line)
        return True
