"""Executing a plan: stages in order, nodes concurrently within bounds, failures contained.

Policy (docs/architecture.md): a stage with ``onFailure: stop`` that loses a node ends the run
(no join after a failed init); a stage marked ``withNext`` runs beside the next one (a run of
them, all together), and the run goes on (or stops) once all have ended, a step among them
starting when what it awaits is reached (engine/milestones.py); otherwise a failed node drops
out of later stages and the others go on. ``serial`` runs a stage in batches; ``concurrency``
bounds nodes in flight. A stop request (Ctrl-C, SIGTERM) launches no new node work and cancels
the running steps at once: a wait ends there, and only a command that must not be cut half-way
(``uncut``: a file written on a node, a kubeadm trigger or change) runs to its end first.
``always`` stages (credentials revoked) are not cut by it; a second request cuts everything. A
node whose step fails or is cancelled gets its stage's ``cleanup`` steps (shielded from the
cancellation, bounded by ``CLEANUP_TIMEOUT``). ``always`` stages run in every case. A worker's
connection is closed once it is done with the last stage that uses it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from k8slk_ops.base.errors import NodeError
from k8slk_ops.base.nextstep import NextStep
from k8slk_ops.engine.context import RunContext
from k8slk_ops.engine.milestones import NotStarted
from k8slk_ops.engine.plan import Plan, PlannedNode, PlannedStage, PlannedStep
from k8slk_ops.node.uncut import cut, uncut
from k8slk_ops.output.events import Event, EventKind, NodeReport, Outcome, Part
from k8slk_ops.ssh import SSHError

log = logging.getLogger("k8slk_ops.engine.executor")
CLEANUP_TIMEOUT = 60.0  # seconds a node's cleanup may take once its step was cancelled


@dataclass
class NodeProgress:
    started: float | None = None
    ended: float | None = None
    changed: bool = False
    changes_done: int = 0
    failed: bool = False
    cancelled: bool = False
    phase: str = ""
    message: str = ""
    log_tail: list[str] = field(default_factory=list)
    next_step: NextStep | None = None
    lost: SSHError | None = None  # the connection error the node failed with, if that was it


@dataclass(frozen=True)
class StepFailure:
    """Why a step failed on a node: the message, its log tail and what to do next (from the
    step, or, for a lost connection, the SSH error the report words it from)."""

    message: str
    log_tail: list[str] = field(default_factory=list)
    next_step: NextStep | None = None
    lost: SSHError | None = None


class Executor:
    """Runs one plan against live nodes and fills in the per-node reports."""

    def __init__(
        self,
        ctx: RunContext,
        plan: Plan,
        reports: dict[str, NodeReport],
        guard: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self.ctx = ctx
        # Asked before every stage that changes nodes: None to go on, else why the run stops
        # (the cluster lock is no longer the run's).
        self.guard = guard
        self.guard_stopped = ""
        self.plan = plan
        self.reports = reports
        self.progress: dict[str, NodeProgress] = {name: NodeProgress() for name in reports}
        self.stopping = asyncio.Event()
        self.stopped_by_failure = False
        self._running: set[asyncio.Task[None]] = set()  # node work of the ordinary stages
        self._always_running: set[asyncio.Task[None]] = set()  # node work of ``always`` stages
        self._changes_per_node: dict[str, int] | None = None
        self._last_use: dict[str, PlannedStage] | None = None

    # -- control ------------------------------------------------------------------------------

    def request_stop(self, why: str = "interrupted") -> None:
        """First call: launch nothing new and cut the running node work now (waits end at
        once; an ``uncut`` command ends first), leaving the ``always`` stages to run. Second
        call: cut everything, ``always`` stages and ``uncut`` commands too.

        A stop that only let running steps end would keep a run that ``timeout`` or systemd
        asked to stop waiting for Ready until its own timeout, minutes later, and then be
        killed before it deleted its tokens and released its locks."""
        if self.stopping.is_set():
            for task in (*self._running, *self._always_running):
                cut(task, force=True)
            return
        self.stopping.set()
        self.ctx.emit(
            None, "run", EventKind.WARN,
            f"{why}: stopping now (waits end; running writes and kubeadm triggers finish), "
            "then cleaning up; interrupt again to cut the cleanup too",
        )
        for task in list(self._running):
            cut(task)

    @property
    def interrupted(self) -> bool:
        return self.stopping.is_set()

    # -- running ------------------------------------------------------------------------------

    async def execute(self) -> None:
        for group in self._groups():
            if self.stopping.is_set() or self.stopped_by_failure:
                break
            if not await self._guard_allows(*group):
                break
            if len(group) == 1:
                results = [await self._run_stage(group[0])]
            else:
                self._expect_milestones(group)
                self._announce(group)
                results = list(await asyncio.gather(
                    *(self._run_stage(stage, announce=False) for stage in group)
                ))
            for stage, failed in zip(group, results, strict=True):
                if failed and stage.stage.on_failure == "stop":
                    self.stopped_by_failure = True
                    names = ", ".join(sorted(failed))
                    self.ctx.emit(
                        None, stage.name, EventKind.WARN,
                        f"stage {stage.name} failed on {names}: stopping before later stages",
                    )
        for stage in self.plan.always:
            await self._run_stage(stage, always=True)
        if self.ctx.state.member_watcher is not None:
            self.ctx.state.member_watcher.stop()  # before the connections close
        self._finish_reports()

    def _groups(self) -> list[tuple[PlannedStage, ...]]:
        """The ordinary stages in order, a stage marked ``withNext`` grouped with the next one
        (and that one with its next, while they are marked): each group starts once the one
        before it has ended."""
        groups: list[tuple[PlannedStage, ...]] = []
        group: list[PlannedStage] = []
        for stage in self.plan.stages:
            group.append(stage)
            if not stage.stage.with_next:
                groups.append(tuple(group))
                group = []
        if group:
            groups.append(tuple(group))
        return groups

    def _expect_milestones(self, group: tuple[PlannedStage, ...]) -> None:
        """The milestones the steps of stages that run together will reach: a step beside
        them that awaits one waits for it (engine/milestones.py)."""
        for stage in group:
            for planned in stage.nodes:
                for step in planned.steps:
                    for name in step.call.step.reaches:
                        self.ctx.milestones.expect(name, planned.node)

    def _settle_milestones(self, step: PlannedStep, name: str, why: str | None) -> None:
        """What ``step`` reaches, once it has ended on ``name``: reached if it went well (it
        may have said so earlier), else missed, ``why``."""
        for milestone in step.call.step.reaches:
            if why is None:
                self.ctx.milestones.reach(milestone, name)
            else:
                self.ctx.milestones.miss(milestone, name, why)

    def _announce(self, group: tuple[PlannedStage, ...]) -> None:
        """One STAGE event for stages that run together: the live view counts their nodes
        once, as one stage (``addons + credentials``), rather than giving the events of both
        to whichever was announced last."""
        name = " + ".join(stage.name for stage in group)
        covered: dict[str, None] = {}
        for stage in group:
            for planned in stage.nodes:
                if not self.progress[planned.node].failed:
                    covered[planned.node] = None
            covered.update((n, None) for n, _ in stage.skipped)
        self.ctx.sink.emit(Event(None, name, EventKind.STAGE, nodes=tuple(covered)))

    async def _guard_allows(self, *stages: PlannedStage) -> bool:
        changing = any(
            step.call.step.changes for stage in stages for n in stage.nodes for step in n.steps
        )
        if self.guard is None or not changing:
            return True
        why = await self.guard()
        if why is None:
            return True
        self.guard_stopped = why
        name = " + ".join(stage.name for stage in stages)
        self.ctx.emit(None, stages[0].name, EventKind.WARN, f"stopping before {name}: {why}")
        return False

    async def _run_stage(
        self, stage: PlannedStage, always: bool = False, announce: bool = True
    ) -> set[str]:
        todo = [n for n in stage.nodes if always or not self.progress[n.node].failed]
        # A node that failed earlier counts as failed here too: a stage that must stop the run
        # (init) stops it whether its node fails now or already failed in preflight.
        failed = {n.node for n in stage.nodes if not always and self.progress[n.node].failed}
        covered = (*(n.node for n in todo), *(name for name, _ in stage.skipped))
        if announce:
            self.ctx.sink.emit(Event(None, stage.name, EventKind.STAGE, nodes=covered))
        for name, reason in stage.skipped:
            self.ctx.emit(name, stage.name, EventKind.SKIP, reason)
        if not todo:
            self._miss_unrun(stage)
            return failed
        limit = stage.stage.concurrency or self.ctx.options.concurrency
        batch = stage.stage.serial or len(todo)
        for i in range(0, len(todo), batch):
            if self.stopping.is_set() and not always:
                break
            gate = asyncio.Semaphore(max(1, limit))
            tasks = [
                asyncio.create_task(self._run_node(stage, planned, gate, always))
                for planned in todo[i : i + batch]
            ]
            running = self._always_running if always else self._running
            running.update(tasks)
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                running.difference_update(tasks)
            failed.update(n.node for n in todo[i : i + batch] if self.progress[n.node].failed)
            if failed and stage.stage.serial and stage.stage.on_failure == "stop":
                break
        self._miss_unrun(stage)
        return failed

    def _miss_unrun(self, stage: PlannedStage) -> None:
        """Milestones of the stage's steps that never ran (an earlier failure, a stop): a
        step waiting for one does not wait for ever."""
        for planned in stage.nodes:
            for step in planned.steps:
                self._settle_milestones(step, planned.node, f"{step.call.name} did not run")

    async def _run_node(
        self, stage: PlannedStage, planned: PlannedNode, gate: asyncio.Semaphore, always: bool
    ) -> None:
        async with gate:
            if self.stopping.is_set() and not always:
                return
            await self._run_steps(planned, always)
        if self._last_stage_using(planned.node) is stage:
            await self.ctx.release(planned.node)

    async def _run_steps(self, planned: PlannedNode, always: bool) -> None:
        """One node's steps of a stage, in order, until one fails (then its cleanup)."""
        name = planned.node
        progress = self.progress[name]
        if progress.started is None and not always:
            progress.started = time.monotonic()
        for i, step in enumerate(planned.steps):
            phase = step.call.step.phase
            part = Part.LAST if i == len(planned.steps) - 1 else Part.MORE
            if not always:
                progress.phase = phase
            try:
                result = await self._apply(step, name, part)
            except asyncio.CancelledError:
                progress.cancelled = True
                self._emit_step(name, phase, EventKind.FAIL, "cancelled", part)
                await self._clean_up_after_cancel(planned)
                raise
            if isinstance(result, NotStarted):
                # What it waited for was missed: the step that missed it is the node's failure.
                self._emit_step(name, phase, EventKind.SKIP, str(result), part)
                return
            if isinstance(result, StepFailure):
                self._fail(name, phase, result, always, part)
                if not always:
                    with uncut():  # a stop request must not cut the cleanup (an uncordon)
                        await self._clean_up(planned)
                return
            if step.call.step.changes:
                # A step that found nothing to do (apply said so) leaves the node "unchanged".
                progress.changed = progress.changed or result
                progress.changes_done += 1
        progress.ended = time.monotonic()

    def _emit_step(self, name: str, phase: str, kind: EventKind, message: str, part: Part) -> None:
        """A node's step event, saying which of its steps it is (see :class:`Part`)."""
        self.ctx.sink.emit(Event(name, phase, kind, message, part=part))

    async def _apply(
        self, step: PlannedStep, name: str, part: Part
    ) -> StepFailure | NotStarted | bool:
        """Run one step on one node: whether it changed anything when it went well, else why
        not (``NotStarted``: what it awaits was missed, it did nothing)."""
        kind = step.call.step
        if kind.awaits:
            try:
                await self.ctx.milestones.wait(kind.awaits, name)
            except NotStarted as exc:
                return NotStarted(f"not started: {exc}")
        self._emit_step(name, kind.phase, EventKind.START, step.actions[0].summary, part)
        t0 = time.monotonic()
        try:
            result = await self._apply_step(step, name)
        except asyncio.CancelledError:
            self._settle_milestones(step, name, f"{step.call.name} was cancelled")
            raise
        if not isinstance(result, bool):
            self._settle_milestones(step, name, f"{step.call.name} failed")
            return result
        self._settle_milestones(step, name, None)
        self._emit_step(name, kind.phase, EventKind.OK, f"{time.monotonic() - t0:.1f}s", part)
        return result

    async def _apply_step(
        self, step: PlannedStep, name: str
    ) -> StepFailure | NotStarted | bool:
        try:
            return await step.call.step.apply(step.call.options, self.ctx, name)
        except NodeError as exc:
            return StepFailure(str(exc), exc.log_tail, exc.next_step)
        except SSHError as exc:
            return StepFailure(f"connection: {exc}", lost=exc)
        except NotStarted as exc:  # a wait of its own, part-way (engine/milestones.py)
            return NotStarted(f"stopped part-way: {exc}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an unexpected reply: contain it to the node
            log.debug("step %s failed on %s", step.call.name, name, exc_info=True)
            return StepFailure(f"{type(exc).__name__}: {exc}")

    async def _clean_up(self, planned: PlannedNode) -> None:
        """The stage's cleanup for a node that failed; a failed cleanup step is reported."""
        for step in planned.cleanup:
            result = await self._apply(step, planned.node, Part.CLEANUP)
            if isinstance(result, StepFailure):
                self._fail(planned.node, step.call.step.phase, result, True, Part.CLEANUP)

    async def _clean_up_after_cancel(self, planned: PlannedNode) -> None:
        """The cleanup of a node whose step was cancelled: shielded from the cancellation that
        is under way, bounded, and never masking it."""
        if not planned.cleanup:
            return
        cleanup = asyncio.ensure_future(self._clean_up(planned))
        try:
            await asyncio.wait_for(asyncio.shield(cleanup), CLEANUP_TIMEOUT)
        except (asyncio.CancelledError, Exception):
            log.debug("cleanup of %s after a cancel did not finish", planned.node, exc_info=True)
            self.ctx.state.cleanup_errors.append(
                f"{planned.node}: cleanup after the interruption did not finish"
            )

    def _fail(
        self, name: str, phase: str, failure: StepFailure, always: bool, part: Part
    ) -> None:
        progress = self.progress[name]
        self._emit_step(name, phase, EventKind.FAIL, failure.message, part)
        if always:
            # A failed cleanup is reported, but does not turn a node's result into a failure.
            self.ctx.state.cleanup_errors.append(f"{name}: {failure.message}")
            return
        progress.failed = True
        progress.phase = phase
        progress.message = failure.message
        progress.log_tail = list(failure.log_tail)
        progress.next_step = failure.next_step
        progress.lost = failure.lost
        progress.ended = time.monotonic()

    def _last_stage_using(self, name: str) -> PlannedStage | None:
        """The last stage whose steps use the worker ``name``'s own connection, when no
        ``always`` stage names it: once the worker is done there, its connection is closed
        rather than kept idle to the end of the run. Control planes keep theirs (the primary
        serves every node's requests; the lock file lives on each of them)."""
        if self._last_use is None:
            kept = {n.node for s in self.plan.always for n in s.nodes}
            last: dict[str, PlannedStage] = {}
            for stage in self.plan.stages:
                for planned in stage.nodes:
                    calls = (s.call.step for s in (*planned.steps, *planned.cleanup))
                    if any(step.uses_connection for step in calls):
                        last[planned.node] = stage
            self._last_use = {
                node: stage
                for node, stage in last.items()
                if node not in kept and not self.ctx.plan.spec(node).is_control_plane
            }
        return self._last_use.get(name)

    def _planned_changes(self, name: str) -> int:
        """How many changing steps the plan holds for ``name`` (counted once for all nodes:
        a scan of the whole plan per node would grow with the square of the fleet)."""
        if self._changes_per_node is None:
            counts: dict[str, int] = {}
            for stage in self.plan.stages:
                for planned in stage.nodes:
                    changing = sum(1 for step in planned.steps if step.call.step.changes)
                    counts[planned.node] = counts.get(planned.node, 0) + changing
            self._changes_per_node = counts
        return self._changes_per_node.get(name, 0)

    def _finish_reports(self) -> None:
        for name, report in self.reports.items():
            progress = self.progress[name]
            if name in self.plan.unreachable and progress.started is None:
                report.outcome = Outcome.UNREACHABLE
                report.message = self.plan.unreachable[name]
                continue
            if progress.started is not None:
                report.seconds = (progress.ended or time.monotonic()) - progress.started
            report.phase = progress.phase
            pending = self._planned_changes(name) > progress.changes_done
            if progress.failed:
                report.outcome = Outcome.FAILED
                report.message = progress.message
                report.log_tail = progress.log_tail
                report.next_step = progress.next_step
                if progress.lost is not None and report.next_step is None:
                    report.next_step = self.ctx.lost_next_step(name, progress.lost)
            elif progress.cancelled:
                report.outcome = Outcome.CANCELLED
                report.message = "cancelled while running"
            elif pending and self.interrupted:
                report.outcome = Outcome.CANCELLED
                report.message = "not started: the run was interrupted"
            elif pending:
                report.outcome = Outcome.SKIPPED
                report.message = "not started: an earlier stage failed"
            elif progress.changed:
                report.outcome = Outcome.OK
            else:
                report.outcome = Outcome.UNCHANGED
