"""The live view's counts from events: facts in, counts out.

A stage's FAILED column counts its failed nodes, DONE only those whose last step ended ok, and
the two agree with the FAILED list after every event. The engine's own events (a join failing
on a worker, then that stage's cleanup on it) are fed to the model as they were emitted: the
cleanup once turned the failed worker back into a running, then a done, one (``FAILED 0`` with
the worker in the FAILED list).
"""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console, RenderableType

from k8slk_ops.engine.playbook import StepCall
from k8slk_ops.engine.step import NoOptions
from k8slk_ops.output.events import Event, EventKind, Part
from k8slk_ops.output.liveview import (
    ESTIMATE_MIN_OK,
    ESTIMATE_MIN_SECONDS,
    ProgressModel,
    StageProgress,
    State,
    stage_view,
)
from tests.unit.test_executor import CleanupStep, FakeStep, Probe, setup, stage, with_cleanup


def ev(node: str | None, phase: str, kind: EventKind, message: str = "", at: float = 0.0,
       nodes: tuple[str, ...] = (), part: Part = Part.LAST) -> Event:
    return Event(node, phase, kind, message, monotonic=at, nodes=nodes, part=part)


def names(n: int) -> list[str]:
    return [f"w-{i}" for i in range(1, n + 1)]


def screen(renderable: RenderableType, width: int = 80, height: int = 24) -> list[str]:
    console = Console(file=io.StringIO(), width=width, height=height, color_system=None,
                      legacy_windows=False)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get().rstrip("\n").split("\n")


def counts(stage: StageProgress) -> tuple[int, int, int, int]:
    """DONE, FAILED, RUNNING, WAITING, as the stage's line shows them."""
    return stage.done, stage.counts[State.FAILED], stage.counts[State.RUNNING], stage.waiting


def failed_agree(model: ProgressModel) -> None:
    """Every failed node of every stage is one entry of the FAILED list, and no other is."""
    assert sum(s.counts[State.FAILED] for s in model.stages) == len(model.failures)
    for s in model.stages:
        failed = sorted(n for n, state in s.states.items() if state == State.FAILED)
        assert failed == sorted(f.node for f in model.failures if f.node in s.states
                                and s.states[f.node] == State.FAILED)


def joining(model: ProgressModel, nodes: list[str]) -> None:
    model.apply(ev(None, "join-workers", EventKind.STAGE, at=0.0, nodes=tuple(nodes)))
    for name in nodes:
        model.apply(ev(name, "join", EventKind.START, "triggered join", at=0.0))


def test_a_failed_join_stays_failed_while_its_cleanup_runs() -> None:
    model = ProgressModel()
    joining(model, names(4))
    model.apply(ev("w-1", "join", EventKind.OK, at=3.0))
    model.apply(ev("w-2", "join", EventKind.FAIL, "preflight: [Mem] too little RAM", at=3.0))
    assert counts(model.stages[-1]) == (1, 1, 2, 0)
    # The join stage's cleanup on w-2, as the engine emits it.
    model.apply(ev("w-2", "remove-config", EventKind.START, "remove the kubeadm config", at=3.1,
                   part=Part.CLEANUP))
    assert counts(model.stages[-1]) == (1, 1, 2, 0)
    model.apply(ev("w-2", "remove-config", EventKind.OK, "0.1s", at=3.2, part=Part.CLEANUP))
    stage = model.stages[-1]
    assert counts(stage) == (1, 1, 2, 0)
    assert "w-2" not in stage.running
    assert [(f.node, f.phase) for f in model.failures] == [("w-2", "join")]
    line = model.nodes["w-2"]  # its row (the per-node view) keeps the failure
    assert (line.state, line.phase, line.message) == (
        State.FAILED, "join", "preflight: [Mem] too little RAM")
    failed_agree(model)


def test_the_stage_line_and_the_failed_list_agree_on_screen() -> None:
    model = ProgressModel()
    everyone = names(300)
    for name in everyone:
        model.apply(ev(name, "connect", EventKind.START, at=0.0))
        model.apply(ev(name, "connect", EventKind.OK, at=1.0))
    failing = ("w-17", "w-203")
    joining(model, everyone[1:])  # 299 workers
    for name in [n for n in everyone[1:] if n not in failing][:130]:
        model.apply(ev(name, "join", EventKind.OK, at=5.0))
    for name in failing:
        model.apply(ev(name, "join", EventKind.FAIL, "preflight: [Mem] too little RAM", at=5.0))
        model.apply(ev(name, "tidy", EventKind.START, at=5.1, part=Part.CLEANUP))
        model.apply(ev(name, "tidy", EventKind.OK, at=5.2, part=Part.CLEANUP))
    lines = screen(stage_view(model, 6.0, 80, 24, str))
    join = next(line.split() for line in lines if line.startswith("join-workers"))
    assert join[2:6] == ["130/299", "2", "167", "0"], lines
    assert "FAILED (2)" in lines
    failed_agree(model)


def test_a_node_is_done_only_when_its_last_step_ended_ok() -> None:
    model = ProgressModel()
    model.apply(ev(None, "workers", EventKind.STAGE, nodes=("w-1", "w-2")))
    for name in ("w-1", "w-2"):
        model.apply(ev(name, "cordon", EventKind.START, at=1.0, part=Part.MORE))
    model.apply(ev("w-1", "cordon", EventKind.OK, at=2.0, part=Part.MORE))
    stage = model.stages[-1]
    assert counts(stage) == (0, 0, 2, 0)  # cordoned, the drain still to come
    assert model.nodes["w-1"].state == State.RUNNING
    model.apply(ev("w-1", "drain", EventKind.START, at=2.0, part=Part.LAST))
    assert stage.running["w-1"] == 1.0  # running in the stage since its first step
    model.apply(ev("w-1", "drain", EventKind.OK, at=4.0, part=Part.LAST))
    model.apply(ev("w-2", "cordon", EventKind.FAIL, "refused", at=4.0, part=Part.MORE))
    assert counts(stage) == (1, 1, 0, 0)
    failed_agree(model)


def test_a_failed_cleanup_is_a_note_not_a_second_failure() -> None:
    model = ProgressModel()
    joining(model, ["w-1"])
    model.apply(ev("w-1", "join", EventKind.FAIL, "kubeadm join failed", at=1.0))
    model.apply(ev("w-1", "tidy", EventKind.START, at=1.0, part=Part.CLEANUP))
    model.apply(ev("w-1", "tidy", EventKind.FAIL, "tidy broke", at=1.1, part=Part.CLEANUP))
    assert counts(model.stages[-1]) == (0, 1, 0, 0)
    assert [f.reason for f in model.failures] == ["kubeadm join failed"]
    assert [(n.message, n.warn) for n in model.notes] == [("w-1: cleanup failed: tidy broke", True)]
    failed_agree(model)


# -- the engine's events, into the model ---------------------------------------------------------


def replay(events: list[Event]) -> ProgressModel:
    """The model after each of ``events``, checking the counts against the list every time."""
    model = ProgressModel()
    for event in events:
        model.apply(event)
        failed_agree(model)
        for s in model.stages:
            assert s.done + s.counts[State.FAILED] + s.counts[State.RUNNING] + s.waiting == s.total
    return model


async def test_the_engine_s_failed_join_and_its_cleanup_count_as_one_failed_node() -> None:
    FakeStep.probe = Probe(fail={"join:w-2"})
    CleanupStep.done, CleanupStep.broken = [], set()
    ex, rec, _ = setup([with_cleanup(stage("join-workers", "workers", "join"))], workers=3)
    await ex.execute()
    assert CleanupStep.done == ["w-2"]  # the cleanup ran: its events are in what was emitted
    model = replay(rec.events)
    join = next(s for s in model.stages if s.name == "join-workers")
    assert counts(join) == (2, 1, 0, 0)
    assert [f.node for f in model.failures] == ["w-2"]


async def test_the_engine_says_which_of_a_node_s_steps_an_event_is_about() -> None:
    FakeStep.probe = Probe(fail={"drain:w-2"})
    CleanupStep.done, CleanupStep.broken = [], {"w-2"}
    two_steps = stage("workers", "workers", "cordon")
    two_steps = dataclasses.replace(
        with_cleanup(two_steps), steps=(*two_steps.steps, StepCall(FakeStep("drain"), NoOptions())))
    ex, rec, _ = setup([two_steps], workers=2)
    await ex.execute()
    parts = [(e.node, e.phase, e.kind, e.part) for e in rec.events if e.node == "w-2"]
    assert parts == [
        ("w-2", "cordon", EventKind.START, Part.MORE),
        ("w-2", "cordon", EventKind.OK, Part.MORE),
        ("w-2", "drain", EventKind.START, Part.LAST),
        ("w-2", "drain", EventKind.FAIL, Part.LAST),
        ("w-2", "tidy", EventKind.START, Part.CLEANUP),
        ("w-2", "tidy", EventKind.FAIL, Part.CLEANUP),
    ]
    model = replay(rec.events)
    assert counts(model.stages[-1]) == (1, 1, 0, 0)
    assert [n.message for n in model.notes] == ["w-2: cleanup failed: tidy broke"]


# -- the estimate ---------------------------------------------------------------------------------


def test_no_estimate_until_enough_nodes_ended_ok() -> None:
    model = ProgressModel()
    everyone = names(100)
    model.apply(ev(None, "join-workers", EventKind.STAGE, nodes=tuple(everyone)))
    for name in everyone[:50]:
        model.apply(ev(name, "join", EventKind.START, at=0.0))
    stage = model.stages[-1]
    # Nine joins ok in 10 s: more than the five, but less than a tenth of the stage.
    for name in everyone[:9]:
        model.apply(ev(name, "join", EventKind.OK, at=10.0))
    assert stage.left(now=10.0) is None
    lines = screen(stage_view(model, 10.0, 80, 24, str))
    assert lines[0].split()[-1] == "LEFT"
    assert "~" not in next(line for line in lines if line.startswith("join-workers"))
    model.apply(ev("w-10", "join", EventKind.FAIL, "refused", at=10.0))  # a tenth finished
    assert stage.left(now=10.0) is not None


def test_no_estimate_from_failures_alone_or_too_early() -> None:
    model = ProgressModel()
    everyone = names(40)
    model.apply(ev(None, "join-workers", EventKind.STAGE, nodes=tuple(everyone)))
    for name in everyone[:20]:
        model.apply(ev(name, "join", EventKind.START, at=0.0))
    for name in everyone[:10]:
        model.apply(ev(name, "join", EventKind.FAIL, "refused", at=0.5))
    for name in everyone[10 : 10 + ESTIMATE_MIN_OK - 1]:
        model.apply(ev(name, "join", EventKind.OK, at=1.0))
    stage = model.stages[-1]
    assert stage.left(now=5.0) is None  # a quarter of the stage failed quickly: no pace yet
    model.apply(ev(everyone[10 + ESTIMATE_MIN_OK - 1], "join", EventKind.OK, at=1.0))
    assert stage.left(now=ESTIMATE_MIN_SECONDS / 2) is None  # a stage this young is not read
    assert stage.left(now=ESTIMATE_MIN_SECONDS) is not None


def test_the_estimate_sends_the_waiting_nodes_through_the_stage_s_parallelism() -> None:
    model = ProgressModel()
    everyone = names(300)
    model.apply(ev(None, "join-workers", EventKind.STAGE, nodes=tuple(everyone)))
    for name in everyone[:60]:  # 60 at a time, each join 4 s
        model.apply(ev(name, "join", EventKind.START, at=0.0))
    for i, name in enumerate(everyone[:30]):
        model.apply(ev(name, "join", EventKind.OK, at=4.0))
        model.apply(ev(everyone[60 + i], "join", EventKind.START, at=4.0))
    stage = model.stages[-1]
    assert counts(stage) == (30, 0, 60, 210)
    # 210 waiting go through 60 at a time, 4 s each, and the last needs its own 4 s.
    assert stage.left(now=4.0) == 4.0 * 210 / 60 + 4.0


def test_the_last_wave_is_estimated_from_its_youngest_node() -> None:
    model = ProgressModel()
    everyone = names(10)
    model.apply(ev(None, "join-workers", EventKind.STAGE, nodes=tuple(everyone)))
    for name in everyone[:8]:
        model.apply(ev(name, "join", EventKind.START, at=0.0))
    for name in everyone[:8]:
        model.apply(ev(name, "join", EventKind.OK, at=4.0))
    for name in everyone[8:]:
        model.apply(ev(name, "join", EventKind.START, at=5.0))
    stage = model.stages[-1]
    assert stage.waiting == 0
    assert stage.left(now=6.0) == 3.0  # started at 5, a join takes 4
    assert stage.left(now=9.5) is None  # they outlasted the pace: no honest figure
    for name in everyone[8:]:
        model.apply(ev(name, "join", EventKind.OK, at=9.5))
    assert stage.left(now=20.0) is None  # nothing left
