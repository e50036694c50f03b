"""wait-ready: wait until nodes are Ready in the cluster's own node list.

Nothing on the node can be streamed for this, so one poller per run asks the primary for
``kubectl get nodes -o json`` with backoff and wakes every waiting node at once; a thousand
waiting nodes cost one request per poll, not a thousand.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, ConfigDict, Field

from k8slk_ops import kubeadm
from k8slk_ops.context import Member, PlanContext, RunContext
from k8slk_ops.errors import NodeError
from k8slk_ops.steps.base import Action, Step, StepPlan, do, skip


class ReadyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: float | None = Field(default=None, gt=0)


class MemberWatcher:
    """Polls the primary's node list while anyone waits; shared by all waiters of a run."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.members: dict[str, Member] = {}
        self.changed = asyncio.Condition()
        self.waiters = 0
        self.task: asyncio.Task[None] | None = None
        self.error = ""

    async def poll_once(self) -> None:
        lk = await self.ctx.node(self.ctx.plan.cluster.primary)
        result = await lk.kubectl("get", "nodes", "-o", "json", timeout=30)
        if result.exit_status != 0:
            self.error = kubeadm.failure_summary(result.stderr)
            return
        self.error = ""
        self.members = {
            n.name: Member(n.name, n.ready, n.control_plane, n.unschedulable, n.kubelet_version)
            for n in kubeadm.parse_nodes_json(result.stdout.decode())
        }
        self.ctx.plan.cluster.members.update(self.members)

    async def _run(self) -> None:
        delay = 0.25
        while self.waiters:
            try:
                await self.poll_once()
            except Exception as exc:  # a lost connection is retried at the next poll
                self.error = str(exc)
            async with self.changed:
                self.changed.notify_all()
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 3.0)

    async def wait_ready(self, name: str, timeout: float) -> Member:
        self.waiters += 1
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        deadline = time.monotonic() + timeout
        try:
            async with self.changed:
                while True:
                    member = self.members.get(name)
                    if member is not None and member.ready:
                        return member
                    left = deadline - time.monotonic()
                    if left <= 0:
                        state = "not registered" if member is None else "NotReady"
                        extra = f" ({self.error})" if self.error else ""
                        raise NodeError(
                            f"still {state} after {timeout:.0f}s{extra}", phase="ready"
                        )
                    try:
                        await asyncio.wait_for(self.changed.wait(), left)
                    except TimeoutError:
                        continue
        finally:
            self.waiters -= 1


class WaitReady(Step):
    name = "wait-ready"
    phase = "ready"
    changes = False
    Options = ReadyOptions

    def plan(self, options: BaseModel, ctx: PlanContext, node: str) -> StepPlan:
        member = ctx.cluster.members.get(node)
        if member is not None and member.ready:
            return skip("Ready")
        return do(Action("wait until the node is Ready in `kubectl get nodes`"))

    async def apply(self, options: BaseModel, ctx: RunContext, node: str) -> None:
        assert isinstance(options, ReadyOptions)
        watcher = ctx.results.get("member_watcher")
        if watcher is None:
            watcher = ctx.results["member_watcher"] = MemberWatcher(ctx)
        member = await watcher.wait_ready(node, options.timeout or ctx.options.ready_timeout)
        ctx.results.setdefault("versions", {})[node] = member.kubelet_version
