"""The executor's policies, with in-memory steps: no network, no nodes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import ClusterFacts, Member, PlanContext, RunContext, RunOptions
from k8slk_ops.engine.executor import Executor
from k8slk_ops.engine.plan import make_plan
from k8slk_ops.engine.playbook import Playbook, Stage, StepCall
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do
from k8slk_ops.node.uncut import uncut
from k8slk_ops.output.events import Event, EventKind, NodeReport, Outcome


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


class Probe:
    """Shared by fake steps: who ran, how many at once, which nodes fail."""

    def __init__(self, fail: set[str] | None = None, gate: asyncio.Event | None = None) -> None:
        self.ran: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail = fail or set()
        self.gate = gate
        self.entered: asyncio.Queue[str] = asyncio.Queue()
        self.uncut: set[str] = set()  # nodes whose step waits inside an uncut section
        self.idle: set[str] = set()  # "step:node" pairs that find nothing to do

    async def wait_entered(self, count: int) -> None:
        for _ in range(count):
            await self.entered.get()


class FakeStep(Step[NoOptions]):
    probe: ClassVar[Probe]

    def __init__(self, name: str, changes: bool = True) -> None:
        self._name = name
        self._changes = changes

    @property  # type: ignore[override]
    def name(self) -> str:  # type: ignore[override]
        return self._name

    @property  # type: ignore[override]
    def phase(self) -> str:  # type: ignore[override]
        return self._name

    @property  # type: ignore[override]
    def changes(self) -> bool:  # type: ignore[override]
        return self._changes

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action(f"{self._name} on {node}"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        probe = FakeStep.probe
        probe.in_flight += 1
        probe.max_in_flight = max(probe.max_in_flight, probe.in_flight)
        probe.entered.put_nowait(node)
        try:
            if probe.gate is not None:
                with uncut() if node in probe.uncut else contextlib.nullcontext():
                    await probe.gate.wait()
            else:
                await asyncio.sleep(0)
            probe.ran.append((self._name, node))
            if (self._name, node) in {tuple(x.split(":")) for x in probe.fail}:
                raise NodeError(f"{self._name} broke", phase=self._name, log_tail=["last line"])
        finally:
            probe.in_flight -= 1
        return (self._name, node) not in {tuple(x.split(":")) for x in probe.idle}


def stage(name: str, hosts: str, step: str, **kw: Any) -> Stage:
    call = StepCall(FakeStep(step, kw.pop("changes", True)), NoOptions())
    return Stage(name=name, hosts=(hosts,), steps=(call,), **kw)


def setup(stages: list[Stage], always: list[Stage] | None = None, workers: int = 3,
          concurrency: int = 64) -> tuple[Executor, Recorder, dict[str, NodeReport]]:
    nodes = [SimpleNamespace(name="cp-1", role="control-plane", address="a",
                             is_control_plane=True)] + [
        SimpleNamespace(name=f"w-{i}", role="worker", address="a", is_control_plane=False)
        for i in range(1, workers + 1)
    ]
    inventory = SimpleNamespace(nodes=nodes, node=lambda n: next(x for x in nodes if x.name == n))
    pctx = PlanContext(
        inventory=inventory,  # type: ignore[arg-type]
        options=RunOptions(run_id="t", concurrency=concurrency),
        facts={},
        unreachable={},
        cluster=ClusterFacts(primary="cp-1"),
    )
    book = Playbook("t", "", "t.yml", tuple(stages), tuple(always or ()))
    plan = make_plan(book, pctx)
    rec = Recorder()

    async def connect(name: str) -> Any:
        raise AssertionError("fake steps never connect")

    rctx = RunContext(plan=pctx, sink=rec, connect=connect, add_secret=lambda s: None)
    reports = {n.name: NodeReport(n.name, n.role, n.address) for n in nodes}
    return Executor(rctx, plan, reports), rec, reports


async def test_stop_policy_prevents_later_stages_but_always_runs() -> None:
    FakeStep.probe = Probe(fail={"init:cp-1"})
    ex, rec, reports = setup(
        [stage("init", "primary", "init", on_failure="stop"), stage("join", "workers", "join")],
        always=[stage("cleanup", "primary", "cleanup", changes=False)],
    )
    await ex.execute()
    assert ("join", "w-1") not in FakeStep.probe.ran
    assert ("cleanup", "cp-1") in FakeStep.probe.ran
    assert reports["cp-1"].outcome == Outcome.FAILED
    assert reports["cp-1"].phase == "init"
    assert reports["cp-1"].log_tail == ["last line"]
    assert reports["w-1"].outcome == Outcome.SKIPPED
    assert any(e.kind == EventKind.FAIL and e.node == "cp-1" for e in rec.events)


async def test_one_failed_worker_does_not_stop_the_others() -> None:
    FakeStep.probe = Probe(fail={"join:w-2"})
    ex, _, reports = setup(
        [stage("join", "workers", "join"), stage("ready", "all", "ready", changes=False)]
    )
    await ex.execute()
    assert reports["w-1"].outcome == Outcome.OK
    assert reports["w-3"].outcome == Outcome.OK
    assert reports["w-2"].outcome == Outcome.FAILED
    # the failed node drops out of later stages
    assert ("ready", "w-2") not in FakeStep.probe.ran
    assert ("ready", "w-1") in FakeStep.probe.ran
    assert reports["cp-1"].outcome == Outcome.UNCHANGED


async def test_serial_runs_one_at_a_time() -> None:
    FakeStep.probe = Probe()
    ex, _, _ = setup([stage("join", "workers", "join", serial=1)], workers=4)
    await ex.execute()
    assert FakeStep.probe.max_in_flight == 1
    assert [n for _, n in FakeStep.probe.ran] == ["w-1", "w-2", "w-3", "w-4"]


async def test_concurrency_bounds_nodes_in_flight() -> None:
    gate = asyncio.Event()
    FakeStep.probe = Probe(gate=gate)
    ex, _, _ = setup([stage("join", "workers", "join")], workers=10, concurrency=3)
    task = asyncio.create_task(ex.execute())
    await FakeStep.probe.wait_entered(3)
    for _ in range(20):  # give the executor every chance to start a fourth one
        await asyncio.sleep(0)
    assert FakeStep.probe.in_flight == 3
    gate.set()
    await task
    assert FakeStep.probe.max_in_flight == 3
    assert len(FakeStep.probe.ran) == 10


async def test_stop_request_cuts_waits_lets_uncut_work_end_and_launches_nothing_new() -> None:
    gate = asyncio.Event()
    FakeStep.probe = Probe(gate=gate)
    FakeStep.probe.uncut = {"w-1"}  # w-1 writes a trigger; w-2 only waits
    ex, _, reports = setup(
        [stage("join", "workers", "join")],
        always=[stage("cleanup", "primary", "cleanup", changes=False)],
        workers=4,
        concurrency=2,
    )
    task = asyncio.create_task(ex.execute())
    await FakeStep.probe.wait_entered(2)
    ex.request_stop()
    for _ in range(10):
        await asyncio.sleep(0)
    assert ex.progress["w-2"].cancelled  # w-2's wait was cut at once, the gate still shut
    assert not ex.progress["w-1"].cancelled  # w-1 is still in its uncut section
    gate.set()
    await task
    joined = [n for s, n in FakeStep.probe.ran if s == "join"]
    assert joined == ["w-1"]  # the uncut section ended; the wait was cut; nothing new started
    assert ("cleanup", "cp-1") in FakeStep.probe.ran
    assert reports["w-1"].outcome == Outcome.OK  # its one step ended whole
    assert reports["w-2"].outcome == Outcome.CANCELLED
    assert reports["w-2"].message == "cancelled while running"
    assert reports["w-3"].outcome == Outcome.CANCELLED
    assert reports["w-3"].message == "not started: the run was interrupted"
    assert ex.interrupted


async def test_a_first_stop_request_does_not_cut_the_always_stages() -> None:
    gate = asyncio.Event()
    FakeStep.probe = Probe(gate=gate)
    ex, _, _ = setup(
        [], always=[stage("cleanup", "primary", "cleanup", changes=False)], workers=1
    )
    task = asyncio.create_task(ex.execute())
    await FakeStep.probe.wait_entered(1)
    ex.request_stop()
    await asyncio.sleep(0)
    gate.set()
    await task
    assert ("cleanup", "cp-1") in FakeStep.probe.ran  # the credentials are revoked all the same


async def test_second_stop_request_cancels_running_steps() -> None:
    gate = asyncio.Event()
    FakeStep.probe = Probe(gate=gate)
    ex, _, reports = setup([stage("join", "workers", "join")], workers=2)
    task = asyncio.create_task(ex.execute())
    await FakeStep.probe.wait_entered(2)
    ex.request_stop()
    ex.request_stop()
    await task
    assert FakeStep.probe.ran == []
    assert reports["w-1"].outcome == Outcome.CANCELLED


@pytest.mark.parametrize("hosts,expected", [
    ("all", ["cp-1", "w-1", "w-2", "w-3"]),
    ("workers", ["w-1", "w-2", "w-3"]),
    ("primary", ["cp-1"]),
    ("secondary-control-planes", []),
])
async def test_host_groups(hosts: str, expected: list[str]) -> None:
    FakeStep.probe = Probe()
    ex, _, _ = setup([stage("s", hosts, "x")])
    await ex.execute()
    assert sorted(n for _, n in FakeStep.probe.ran) == expected


async def test_a_node_failed_earlier_makes_a_stop_stage_stop() -> None:
    FakeStep.probe = Probe(fail={"preflight:cp-1"})
    ex, _, reports = setup(
        [
            stage("preflight", "all", "preflight", changes=False),
            stage("init", "primary", "init", on_failure="stop"),
            stage("join", "workers", "join"),
        ]
    )
    await ex.execute()
    assert not any(step == "join" for step, _ in FakeStep.probe.ran)
    assert reports["cp-1"].phase == "preflight"
    assert reports["w-1"].outcome == Outcome.SKIPPED


class CleanupStep(Step[NoOptions]):
    """Records the nodes it cleans up after; fails on the nodes named in ``broken``."""

    name = "tidy"
    phase = "tidy"
    changes = False
    done: ClassVar[list[str]] = []
    broken: ClassVar[set[str]] = set()

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action(f"tidy {node}"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        await asyncio.sleep(0)
        if node in CleanupStep.broken:
            raise NodeError("tidy broke", phase="tidy")
        CleanupStep.done.append(node)
        return True


def with_cleanup(st: Stage) -> Stage:
    return dataclasses.replace(st, cleanup=(StepCall(CleanupStep(), NoOptions()),))


async def test_a_failed_node_gets_its_stage_cleanup_and_only_it() -> None:
    FakeStep.probe = Probe(fail={"drain:w-2"})
    CleanupStep.done, CleanupStep.broken = [], set()
    ex, rec, reports = setup([with_cleanup(stage("drain", "workers", "drain"))])
    await ex.execute()
    assert CleanupStep.done == ["w-2"]
    assert reports["w-2"].outcome == Outcome.FAILED
    assert reports["w-2"].phase == "drain"  # the cleanup does not hide what failed
    assert reports["w-1"].outcome == Outcome.OK
    assert ("w-2", "tidy", EventKind.OK) in [(e.node, e.phase, e.kind) for e in rec.events]


async def test_an_interrupted_node_gets_its_stage_cleanup() -> None:
    gate = asyncio.Event()
    FakeStep.probe = Probe(gate=gate)
    CleanupStep.done, CleanupStep.broken = [], set()
    ex, _, reports = setup([with_cleanup(stage("drain", "workers", "drain"))], workers=2)
    task = asyncio.create_task(ex.execute())
    await FakeStep.probe.wait_entered(2)
    ex.request_stop()
    ex.request_stop()  # the second Ctrl-C cancels the running drains
    await task
    assert sorted(CleanupStep.done) == ["w-1", "w-2"]
    assert reports["w-1"].outcome == Outcome.CANCELLED


async def test_a_failed_cleanup_is_reported_not_hidden() -> None:
    FakeStep.probe = Probe(fail={"drain:w-1"})
    CleanupStep.done, CleanupStep.broken = [], {"w-1"}
    ex, _, reports = setup([with_cleanup(stage("drain", "workers", "drain"))], workers=1)
    await ex.execute()
    assert ex.ctx.state.cleanup_errors == ["w-1: tidy broke"]
    assert reports["w-1"].message == "drain broke"


def test_the_plan_shows_each_node_s_cleanup() -> None:
    FakeStep.probe = Probe()
    ex, _, _ = setup([with_cleanup(stage("drain", "workers", "drain"))], workers=1)
    assert "w-1: if it fails: tidy w-1" in ex.plan.to_text()
    assert ex.plan.to_json()[0]["nodes"][0]["cleanup"] == [{"step": "tidy", "summary": "tidy w-1"}]


async def test_running_never_changes_the_plan_context() -> None:
    FakeStep.probe = Probe()
    ex, _, _ = setup([stage("join", "workers", "join")])
    before = (dict(ex.ctx.plan.cluster.members), ex.ctx.plan.cluster.initialised)
    ex.ctx.state.members["w-1"] = Member("w-1", True, False)  # what a step learns at run time
    ex.ctx.state.initialised = True
    await ex.execute()
    assert (dict(ex.ctx.plan.cluster.members), ex.ctx.plan.cluster.initialised) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        ex.ctx.plan.cluster = ClusterFacts(primary="w-1")  # type: ignore[misc]


async def test_a_changing_step_that_finds_nothing_to_do_leaves_its_node_unchanged() -> None:
    FakeStep.probe = Probe()
    FakeStep.probe.idle = {"renew:w-1"}
    ex, _, reports = setup([stage("renew", "workers", "renew")])
    await ex.execute()
    assert reports["w-1"].outcome == Outcome.UNCHANGED  # apply said it changed nothing
    assert reports["w-2"].outcome == Outcome.OK


async def test_what_a_check_says_it_changed_does_not_count() -> None:
    """Only steps that declare ``changes`` make a node changed, whatever their apply says."""
    FakeStep.probe = Probe()
    ex, _, reports = setup([stage("ready", "workers", "ready", changes=False)])
    await ex.execute()
    assert reports["w-1"].outcome == Outcome.UNCHANGED
