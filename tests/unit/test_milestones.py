"""Milestones: a stage beside another starts when that one's step has got far enough
(engine/milestones.py), not when it has ended; and not at all when it never gets there."""

from __future__ import annotations

import asyncio

import pytest

from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.milestones import Milestones, NotStarted
from k8slk_ops.engine.playbook import Stage, StepCall
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do
from k8slk_ops.output.events import EventKind, Outcome
from tests.unit.test_executor import setup

UP = "up"


class Timeline:
    def __init__(self) -> None:
        self.said: list[str] = []
        self.release = asyncio.Event()  # the reaching step goes on past its milestone
        self.reached = asyncio.Event()
        self.entered = asyncio.Event()
        self.hold_before = False  # the reaching step waits to be released before its milestone
        self.fail_before = False  # the reaching step fails before its milestone
        self.fail_after = False  # ... or after it


class Reaches(Step[NoOptions]):
    """Reaches UP part-way, then waits to be released before it ends."""

    name = "reaches"
    phase = "reaches"
    reaches = (UP,)
    timeline: Timeline

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action("reach"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        t = Reaches.timeline
        t.entered.set()
        if t.hold_before:
            await t.release.wait()
        await asyncio.sleep(0)
        if t.fail_before:
            raise NodeError("broke early", phase=self.phase)
        t.said.append("reached")
        ctx.milestones.reach(UP, node)
        t.reached.set()
        await t.release.wait()
        if t.fail_after:
            raise NodeError("broke late", phase=self.phase)
        t.said.append("ended")
        return True


class Awaits(Step[NoOptions]):
    name = "awaits"
    phase = "awaits"
    awaits = UP

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action("go"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        Reaches.timeline.said.append("started")
        Reaches.timeline.release.set()
        return True


def _stages(together: bool) -> list[Stage]:
    return [
        Stage(name="first", hosts=("cp-1",), steps=(StepCall(Reaches(), NoOptions()),),
              with_next=together, on_failure="stop"),
        Stage(name="second", hosts=("cp-1",), steps=(StepCall(Awaits(), NoOptions()),)),
    ]


async def test_a_stage_beside_starts_at_the_milestone_not_at_the_end() -> None:
    Reaches.timeline = Timeline()
    ex, _, reports = setup(_stages(together=True), workers=0)
    await asyncio.wait_for(ex.execute(), 5)
    assert Reaches.timeline.said == ["reached", "started", "ended"]
    assert reports["cp-1"].outcome == Outcome.OK


async def test_in_order_the_awaiting_step_starts_after_the_stage_before_ended() -> None:
    timeline = Reaches.timeline = Timeline()
    timeline.release.set()
    ex, _, _ = setup(_stages(together=False), workers=0)
    await asyncio.wait_for(ex.execute(), 5)
    assert timeline.said == ["reached", "ended", "started"]


async def test_a_milestone_missed_leaves_the_step_beside_unstarted() -> None:
    timeline = Reaches.timeline = Timeline()
    timeline.fail_before = True
    ex, rec, reports = setup(_stages(together=True), workers=0)
    await asyncio.wait_for(ex.execute(), 5)
    assert "started" not in timeline.said
    report = reports["cp-1"]
    assert (report.outcome, report.phase, report.message) == (Outcome.FAILED, "reaches",
                                                              "broke early")
    skips = [e.message for e in rec.events if e.kind is EventKind.SKIP and e.phase == "awaits"]
    assert skips == ["not started: reaches failed"]


async def test_a_failure_after_the_milestone_still_stops_the_run() -> None:
    timeline = Reaches.timeline = Timeline()
    timeline.fail_after = True
    stages = [*_stages(together=True),
              Stage(name="third", hosts=("cp-1",), steps=(StepCall(Awaits(), NoOptions()),))]
    ex, _, reports = setup(stages, workers=0)
    await asyncio.wait_for(ex.execute(), 5)
    assert timeline.said == ["reached", "started"]  # the third stage never ran
    assert reports["cp-1"].message == "broke late"
    assert ex.stopped_by_failure


async def test_a_stop_request_while_waiting_settles_the_milestone() -> None:
    timeline = Reaches.timeline = Timeline()
    timeline.hold_before = True
    ex, _, reports = setup(_stages(together=True), workers=0)
    run = asyncio.create_task(ex.execute())
    await asyncio.wait_for(timeline.entered.wait(), 5)
    ex.request_stop("interrupted (Ctrl-C)")
    await asyncio.wait_for(run, 5)
    assert timeline.said == []
    assert reports["cp-1"].outcome == Outcome.CANCELLED
    assert not ex.ctx.milestones.pending(UP, "cp-1")


async def test_milestones_alone() -> None:
    m = Milestones()
    await asyncio.wait_for(m.wait("x", "n"), 1)  # nothing expects it: at once
    m.expect("x", "n")
    assert m.pending("x", "n")
    m.miss("x", "n", "init failed")
    m.reach("x", "n")  # settled already: stays missed
    with pytest.raises(NotStarted, match="init failed"):
        await m.wait("x", "n")
