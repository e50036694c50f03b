"""A run freezes what exists and collects young objects less often; both undone after it."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import pytest

from k8slk_ops.cli.gctune import YOUNG_THRESHOLD, lean_gc
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk


def test_the_heap_is_frozen_during_the_block_and_thawed_after() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    kept = [object() for _ in range(10)]  # noqa: F841 - objects that exist before the run
    with lean_gc():
        assert gc.get_freeze_count() > frozen_before
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_it_is_undone_when_the_run_raises() -> None:
    before = gc.get_threshold()
    try:
        with lean_gc():
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_run_of_the_cli_is_inside_lean_gc(
    fleet: InProcessFleet, k8slk: K8slk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k8slk_ops.cli import cliutil

    seen: list[int] = []

    @contextlib.contextmanager
    def recording() -> Iterator[None]:
        with lean_gc():
            seen.append(gc.get_freeze_count())
            yield

    monkeypatch.setattr(cliutil, "lean_gc", recording)
    run = k8slk("status", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert seen and seen[0] > 0
    assert gc.get_freeze_count() == 0


def test_the_report_is_written_before_the_heap_is_thawed(
    fleet: InProcessFleet, k8slk: K8slk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k8slk_ops.cli import cliutil
    from k8slk_ops.output import report

    inside: list[bool] = [False]
    seen: list[bool] = []

    @contextlib.contextmanager
    def recording() -> Iterator[None]:
        with lean_gc():
            inside[0] = True
            try:
                yield
            finally:
                inside[0] = False

    original = report.JsonReporter.finish

    def finish(self: report.JsonReporter, run_report: report.RunReport) -> None:
        seen.append(inside[0])
        original(self, run_report)

    monkeypatch.setattr(cliutil, "lean_gc", recording)
    monkeypatch.setattr(report.JsonReporter, "finish", finish)
    run = k8slk("status", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert seen == [True]


def test_the_console_entry_point_freezes_the_heap_as_it_exits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from k8slk_ops.cli import main

    monkeypatch.setattr("sys.argv", ["k8slk-ops", "--version"])
    try:
        with pytest.raises(SystemExit):
            main.main()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
