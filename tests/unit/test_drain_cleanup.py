"""drain and its cleanup, uncordon, against a fake primary's kubectl (no nodes).

A drain that fails or is interrupted leaves the node cordoned; the stage's cleanup gives it back
to the scheduler, unless --force carried the removal on. A node the drain never started on is
left as it was.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from k8slk_ops.base.errors import NodeError, UsageError
from k8slk_ops.engine.context import ClusterFacts, Member, PlanContext, RunContext, RunOptions
from k8slk_ops.engine.executor import Executor
from k8slk_ops.engine.plan import make_plan
from k8slk_ops.engine.playbook import load_builtin, load_playbook
from k8slk_ops.inventory import load_inventory
from k8slk_ops.node.facts import parse_facts
from k8slk_ops.output.events import Event, NodeReport, Outcome
from k8slk_ops.ssh.target import CommandResult
from k8slk_ops.steps import STEPS
from k8slk_ops.steps.remove import Drain, DrainOptions, Uncordon

INVENTORY = """\
cluster: {name: lab}
nodes:
  - {name: cp-1, address: 10.0.0.11, role: control-plane}
  - {name: w-1, address: 10.0.0.21, role: worker}
"""
JOINED = "marker=1\ntask kubelet 1 RUNNING\ntask kubeadm 2 STOPPED\nkubeadm_version=v1.31.3\n"


class Primary:
    """kubectl on the primary: drain answers as told (or hangs), uncordon succeeds."""

    def __init__(self, drain_exit: int = 0, hang: bool = False) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.drain_exit = drain_exit
        self.hang = hang
        self.draining = asyncio.Event()

    async def kubectl(self, *args: str, timeout: float | None = 60) -> CommandResult:
        self.calls.append(args)
        if args[0] == "drain":
            self.draining.set()
            if self.hang:
                await asyncio.Event().wait()
            if self.drain_exit:
                return CommandResult(self.drain_exit, b"", b"error: global timeout reached: 2s\n")
        return CommandResult(0, b"node/w-1 uncordoned\n" if args[0] == "uncordon" else b"", b"")


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def run_context(tmp_path: Path, primary: Primary, **options: Any) -> RunContext:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    members = {n: Member(n, True, n == "cp-1") for n in ("cp-1", "w-1")}
    plan = PlanContext(
        inventory=load_inventory(path),
        options=RunOptions(run_id="r1", selected=("w-1",), **options),
        facts={n: parse_facts(JOINED) for n in ("cp-1", "w-1")},
        unreachable={},
        cluster=ClusterFacts(primary="cp-1", initialised=True, members=members),
    )

    async def connect(name: str) -> Any:
        assert name == "cp-1", "drain and uncordon act through the primary"
        return primary

    return RunContext(plan=plan, sink=Sink(), connect=connect, add_secret=lambda s: None)


def uncordons(primary: Primary) -> list[tuple[str, ...]]:
    return [c for c in primary.calls if c[0] == "uncordon"]


async def test_a_failed_drain_fails_and_its_cleanup_uncordons(tmp_path: Path) -> None:
    primary = Primary(drain_exit=1)
    ctx = run_context(tmp_path, primary)
    with pytest.raises(NodeError, match=r"global timeout reached: 2s .*--force removes it"):
        await Drain().apply(DrainOptions(), ctx, "w-1")
    assert ctx.state.drains_unfinished == {"w-1"}
    await Uncordon().apply(DrainOptions(), ctx, "w-1")
    assert uncordons(primary) == [("uncordon", "w-1")]
    assert not ctx.state.drains_unfinished


async def test_a_forced_drain_goes_on_and_nothing_is_uncordoned(tmp_path: Path) -> None:
    primary = Primary(drain_exit=1)
    ctx = run_context(tmp_path, primary, force=1)
    await Drain().apply(DrainOptions(), ctx, "w-1")
    await Uncordon().apply(DrainOptions(), ctx, "w-1")
    assert uncordons(primary) == []
    assert "--force" in primary.calls[0]


async def test_a_drained_node_stays_cordoned(tmp_path: Path) -> None:
    primary = Primary()
    ctx = run_context(tmp_path, primary)
    await Drain().apply(DrainOptions(), ctx, "w-1")
    await Uncordon().apply(DrainOptions(), ctx, "w-1")
    assert uncordons(primary) == []


@pytest.mark.parametrize(("given", "passed"), [(None, "--timeout=5m0s"), (90.0, "--timeout=1m30s"),
                                               (2.0, "--timeout=2s")])
async def test_kubectl_gets_a_normalised_timeout(
    tmp_path: Path, given: float | None, passed: str
) -> None:
    primary = Primary()
    ctx = run_context(tmp_path, primary, drain_timeout=given)
    await Drain().apply(DrainOptions.model_validate({"timeout": "300"}), ctx, "w-1")
    assert passed in primary.calls[0]


async def test_an_interrupted_drain_is_uncordoned_by_the_stage_cleanup(tmp_path: Path) -> None:
    primary = Primary(hang=True)
    ctx = run_context(tmp_path, primary)
    plan = make_plan(load_builtin("remove-node", STEPS), ctx.plan)
    drain_stage = next(s for s in plan.stages if s.name == "drain")
    assert [s.call.name for s in drain_stage.nodes[0].cleanup] == ["uncordon"]
    reports = {n: NodeReport(n, "", "") for n in ("cp-1", "w-1")}
    executor = Executor(ctx, plan, reports)
    task = asyncio.create_task(executor.execute())
    await primary.draining.wait()
    executor.request_stop()
    executor.request_stop()  # the second Ctrl-C cancels kubectl drain
    await task
    assert uncordons(primary) == [("uncordon", "w-1")]
    assert reports["w-1"].outcome == Outcome.CANCELLED
    assert any("node uncordoned" in e.message for e in ctx.sink.events)  # type: ignore[attr-defined]


def test_cleanup_steps_are_validated_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "book.yml"
    path.write_text(
        "name: x\nstages:\n  - name: a\n    steps:\n      - drain: {}\n    cleanup:\n"
        "      - uncordn: {}\n"
    )
    with pytest.raises(UsageError, match=r"book.yml:7:\d+: .*unknown step 'uncordn'"):
        load_playbook(path, STEPS)


def test_an_always_stage_has_no_cleanup(tmp_path: Path) -> None:
    path = tmp_path / "book.yml"
    path.write_text(
        "name: x\nstages:\n  - name: a\n    steps:\n      - drain: {}\nalways:\n  - name: b\n"
        "    steps:\n      - revoke-credentials: {}\n    cleanup:\n      - uncordon: {}\n"
    )
    with pytest.raises(UsageError, match=r"book.yml:10:\d+: always\[0\].cleanup: an always stage has no cleanup"):
        load_playbook(path, STEPS)


@pytest.mark.parametrize("bad", ["5 m", ".inf", ".nan", "-5m", "0", "5mx", "'inf'"])
def test_playbook_durations_are_checked_with_file_and_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "book.yml"
    path.write_text(f"name: x\nstages:\n  - name: a\n    steps:\n      - drain: {{timeout: {bad}}}\n")
    with pytest.raises(UsageError, match=r"book.yml:5:\d+: stages\[0\].steps\[0\].drain.timeout"):
        load_playbook(path, STEPS)


@pytest.mark.parametrize(("given", "seconds"), [("600", 600.0), ("10m", 600.0), ("1.5", 1.5),
                                                ("1h30m", 5400.0), ("'90s'", 90.0)])
def test_playbook_durations_take_go_durations_or_seconds(
    tmp_path: Path, given: str, seconds: float
) -> None:
    path = tmp_path / "book.yml"
    path.write_text(f"name: x\nstages:\n  - name: a\n    steps:\n      - init: {{timeout: {given}}}\n")
    call = load_playbook(path, STEPS).stages[0].steps[0]
    assert call.options.timeout == seconds  # type: ignore[attr-defined]
