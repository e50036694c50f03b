"""At a terminal, apply's plan is printed above the live view, which then goes on."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from k8slk_ops.output.events import Event, EventKind
from k8slk_ops.output.redact import Redactor
from k8slk_ops.output.report import LiveReporter


def test_the_live_view_stops_for_the_plan_and_starts_again_with_the_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    buf = io.StringIO()
    rep = LiveReporter(Redactor(), Console(file=buf, width=80, height=24, force_terminal=True))
    rep.show_text("plan: apply\nstage labels:\n  w-1: add label zone=a")
    assert not rep.live.is_started  # nothing redraws over the plan or a question after it
    assert "w-1: add label zone=a" in capsys.readouterr().out
    rep.emit(Event("w-1", "labels", EventKind.START, "add label zone=a"))
    assert rep.live.is_started
    rep.live.stop()
    rep.close()
