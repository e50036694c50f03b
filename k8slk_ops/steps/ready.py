"""wait-ready: wait until nodes are Ready in the cluster's own node list.

One watcher per run (``membership.MemberWatcher``) follows ``kubectl get nodes --watch`` on the
primary and wakes each waiting node on news of its own Node (polling the node list where no
watch works): a thousand waiting nodes cost one command, not one each.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from k8slk_ops.engine import podnetwork
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, Duration, Step, StepPlan, do, skip
from k8slk_ops.output.events import EventKind


class ReadyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: Duration | None = None


class WaitReady(Step[ReadyOptions]):
    name = "wait-ready"
    phase = "ready"
    changes = False
    read_only = True
    uses_connection = False  # it asks the primary

    def plan(self, options: ReadyOptions, ctx: PlanContext, node: str) -> StepPlan:
        member = ctx.cluster.members.get(node)
        if member is not None and member.ready:
            return skip("Ready")
        return do(Action("wait until the node is Ready in `kubectl get nodes`"))

    def plan_warnings(self, ctx: PlanContext) -> tuple[str, ...]:
        return podnetwork.plan_warnings(ctx)  # a wait no pod network will end

    async def apply(self, options: ReadyOptions, ctx: RunContext, node: str) -> bool:
        # Each node the watch (or a poll) brings goes into the run's membership
        # (ctx.members_watcher), NotReady ones too: the report explains why they are not Ready.
        member = await ctx.members_watcher().wait_ready(
            node,
            options.timeout or ctx.options.ready_timeout,
            lambda why: ctx.emit(node, self.phase, EventKind.PROGRESS, f"NotReady: {why}"),
        )
        ctx.state.versions[node] = member.kubelet_version
        return False
