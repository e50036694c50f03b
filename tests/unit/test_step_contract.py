"""The step contract: each step names its options model once, as ``Step``'s type argument, and
the loader, ``plan`` and ``apply`` all use that model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from k8slk_ops import steps
from k8slk_ops.steps import STEPS
from k8slk_ops.steps.base import NoOptions, Step, _declared_options


class _Other(BaseModel):
    model_config = ConfigDict(extra="forbid")


def test_every_registered_step_names_its_options_as_its_type_argument() -> None:
    for name, step in STEPS.items():
        declared = _declared_options(type(step))
        assert declared is not None, f"{name}: {type(step).__name__} is not Step[...]"
        assert type(step).Options is declared, name


def test_a_step_naming_two_options_models_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="name its options once"):

        class Twice(Step[NoOptions]):  # the definition is what fails
            name = "twice"
            phase = "twice"
            Options = _Other


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
