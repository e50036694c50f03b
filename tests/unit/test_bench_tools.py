"""The benchmark's own helpers: the open-file check before a fleet comes up, and the phases
read from the stopwatch's marks."""

from __future__ import annotations

import resource

import pytest

from tests import bench
from tests.benchphases import spans


def test_a_hard_open_file_limit_too_low_for_the_fleet_is_said_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = {"now": (1024, 4096)}
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda which, value: limits.update(now=value))
    why = bench.raise_nofile(5000)
    assert why is not None and "5000 nodes" in why and "4096" in why
    assert limits["now"] == (4096, 4096)  # the soft limit was lifted all the same
    assert bench.raise_nofile(1000) is None


def test_phases_are_spans_between_marks_with_the_report_after_the_last() -> None:
    marks = [
        ["imported", 0.5, 0.3],
        ["inventory start", 0.5, 0.3], ["inventory end", 0.7, 0.45],
        ["facts of 3 start", 0.8, 0.5], ["facts of 3 end", 1.8, 0.9],
        ["stage join start", 1.9, 0.9], ["stage join end", 4.0, 1.0],
        ["exit", 4.5, 1.2],
    ]
    assert spans(marks) == [
        ("start and imports", 0.5, 0.3),
        ("inventory", 0.2, 0.15),
        ("facts of 3", 1.0, 0.4),
        ("stage join", 2.1, 0.1),
        ("report and exit", 0.5, 0.2),
    ]
