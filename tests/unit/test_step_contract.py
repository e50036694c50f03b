"""The step contract: each step names its options model once, as ``Step``'s type argument, and
the loader, ``plan`` and ``apply`` all use that model."""

from __future__ import annotations

import ast
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import BaseModel, ConfigDict

from k8slk_ops import steps
from k8slk_ops.engine.context import ClusterFacts, PlanContext, RunOptions
from k8slk_ops.engine.plan import Plan, make_plan
from k8slk_ops.engine.playbook import Playbook, Stage, StepCall
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, _declared_options, do, skip
from k8slk_ops.steps import STEPS


class _Other(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Before(BaseModel):
    model_config = ConfigDict(extra="forbid")
    before_change: bool


def test_every_registered_step_names_its_options_as_its_type_argument() -> None:
    for name, step in STEPS.items():
        declared = _declared_options(type(step))
        assert declared is not None, f"{name}: {type(step).__name__} is not Step[...]"
        assert type(step).Options is declared, name


def test_a_step_naming_two_options_models_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="name its options once"):
        types.new_class("Twice", (Step[NoOptions],), exec_body=lambda ns: ns.update(
            name="twice", phase="twice", Options=_Other))


def test_a_subclass_of_a_step_keeps_its_parents_options() -> None:
    class Parent(Step[_Other]):
        name = "parent"
        phase = "parent"

    class Child(Parent):
        name = "child"

    assert Child.Options is _Other


def test_no_step_narrows_its_options_at_run_time() -> None:
    """``assert isinstance(options, X)`` vanishes under ``python -O``: the type argument is
    the contract, checked by mypy."""
    found = []
    for path in Path(steps.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assert) and "isinstance(options" in ast.unparse(node.test):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


# -- what the planner asks of steps instead of naming them ---------------------------------------


class _Noted(Step[NoOptions]):
    """Due on every node; says one warning when it has work in the plan."""

    name = "noted"
    phase = "noted"
    changes = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action(f"note {node}"))

    def plan_warnings(self, ctx: PlanContext) -> tuple[str, ...]:
        return ("said once",)


class _Idle(_Noted):
    name = "idle"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return skip("nothing due")


class _Guard(Step[_Before]):
    name = "guard"
    phase = "guard"
    changes = False

    def plan(self, options: _Before, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action("guard"))

    def only_guards_a_change(self, options: _Before) -> bool:
        return options.before_change


class _Change(_Noted):
    name = "change"
    changes = True

    def plan_warnings(self, ctx: PlanContext) -> tuple[str, ...]:
        return ()


def _ctx() -> PlanContext:
    nodes = [SimpleNamespace(name=n, role="worker", address="a") for n in ("w-1", "w-2")]
    inventory = SimpleNamespace(nodes=nodes, node=lambda n: next(x for x in nodes if x.name == n))
    return PlanContext(
        inventory=inventory,  # type: ignore[arg-type]
        options=RunOptions(run_id="t"),
        facts={},
        unreachable={},
        cluster=ClusterFacts(primary="w-1"),
    )


def _stage(name: str, *calls: StepCall) -> Stage:
    return Stage(name=name, hosts=("all",), steps=calls)


def _plan(*stages: Stage) -> Plan:
    return make_plan(Playbook("t", "", "t.yml", stages, ()), _ctx())


def test_a_step_with_work_in_the_plan_says_its_warning_once() -> None:
    plan = _plan(_stage("a", StepCall(_Noted(), NoOptions())),
                 _stage("b", StepCall(_Noted(), NoOptions())))
    assert plan.warnings == ("said once",)


def test_a_step_with_no_work_in_the_plan_says_nothing() -> None:
    assert _plan(_stage("a", StepCall(_Idle(), NoOptions()))).warnings == ()


def test_a_guard_of_changes_is_dropped_when_nothing_changes() -> None:
    guard = _stage("guard", StepCall(_Guard(), _Before(before_change=True)))
    alone = _plan(guard)
    assert alone.stages[0].nodes == ()
    assert {why for _, why in alone.stages[0].skipped} == {"nothing changes after it: no snapshot needed"}
    with_change = _plan(guard, _stage("change", StepCall(_Change(), NoOptions())))
    assert [n.node for n in with_change.stages[0].nodes] == ["w-1", "w-2"]


def test_a_call_that_guards_nothing_stays_when_nothing_changes() -> None:
    plan = _plan(_stage("guard", StepCall(_Guard(), _Before(before_change=False))))
    assert [n.node for n in plan.stages[0].nodes] == ["w-1", "w-2"]
