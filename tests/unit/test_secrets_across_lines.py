"""A secret split over lines never leaves: the run step and the redactor see whole outputs."""

from __future__ import annotations

import asyncio
import io
import json
from types import SimpleNamespace
from typing import Any

import pytest

from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import ClusterFacts, PlanContext, RunContext, RunOptions
from k8slk_ops.output.events import Event, NodeReport, Outcome, RunReport
from k8slk_ops.output.redact import Redactor
from k8slk_ops.output.report import JsonReporter, PlainReporter
from k8slk_ops.ssh import CommandResult
from k8slk_ops.steps.command import CommandOptions, RunCommand

KEY = "c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f"
PEM_BODY = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ",
    "QZ==",
]
PEM = "\n".join(
    ["-----BEGIN PRIVATE" " KEY-----", *PEM_BODY, "-----END PRIVATE" " KEY-----"]
)


class FakeNode:
    def __init__(self, result: CommandResult) -> None:
        self.result = result

    async def shell(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        return self.result

    async def kubelet_exec(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        return self.result


def _run(result: CommandResult) -> tuple[list[Event], Redactor, NodeError | None]:
    redactor = Redactor()
    events: list[Event] = []
    sink = SimpleNamespace(emit=events.append)
    pctx = PlanContext(
        inventory=SimpleNamespace(),  # type: ignore[arg-type]
        options=RunOptions(run_id="t"),
        facts={},
        unreachable={},
        cluster=ClusterFacts(primary="cp-1"),
    )

    async def connect(name: str) -> Any:
        return FakeNode(result)

    ctx = RunContext(plan=pctx, sink=sink, connect=connect, add_secret=redactor.add)  # type: ignore[arg-type]
    options = CommandOptions.model_validate({"command": "kubeadm init phase upload-certs"})
    try:
        asyncio.run(RunCommand().apply(options, ctx, "cp-1"))
    except NodeError as exc:
        return events, redactor, exc
    return events, redactor, None


def _shown(events: list[Event], redactor: Redactor) -> str:
    stream = io.StringIO()
    reporter = PlainReporter(redactor, stream)
    for event in events:
        reporter.emit(event)
    return stream.getvalue()


def test_a_certificate_key_on_the_line_after_its_announcement_is_hidden() -> None:
    out = f"[upload-certs] Storing the certificates\n[upload-certs] Using certificate key:\n{KEY}\n"
    events, redactor, _ = _run(CommandResult(0, out.encode(), b""))
    shown = _shown(events, redactor)
    assert KEY not in shown
    assert "Using certificate key" in shown


def test_every_line_of_a_private_key_is_hidden_in_events_and_the_log_tail() -> None:
    out = f"before\n{PEM}\nafter\n"
    events, redactor, error = _run(CommandResult(1, out.encode(), PEM.encode()))
    assert error is not None
    shown = _shown(events, redactor)
    for line in PEM_BODY:
        assert line not in shown
    report = RunReport(command="run", cluster="lab", inventory="inv.yml")
    report.nodes = [
        NodeReport("cp-1", "control-plane", "a", Outcome.FAILED, "run", str(error), log_tail=error.log_tail)
    ]
    stream = io.StringIO()
    JsonReporter(PlainReporter(redactor, io.StringIO()), redactor, stream).finish(report)
    doc = stream.getvalue()
    json.loads(doc)
    for line in PEM_BODY:
        assert line not in doc


def test_a_key_cut_before_its_end_in_the_last_lines_is_hidden() -> None:
    body = [f"{i:02d}" + "A" * 62 for i in range(30)]
    out = "-----BEGIN RSA PRIVATE" " KEY-----\n" + "\n".join(body) + "\n"
    events, redactor, _ = _run(CommandResult(0, out.encode(), b""))
    shown = _shown(events, redactor)
    for line in body:
        assert line not in shown


def test_the_redactor_registers_each_line_of_a_multi_line_secret() -> None:
    redactor = Redactor()
    redactor.add(PEM)
    for line in PEM_BODY[:3]:
        assert line not in redactor.redact(f"x {line} y")


@pytest.mark.parametrize(
    "raw",
    [
        "v1.31.3\x1b]0;owned\x07",
        "\x1b[2J\x1b[Hkubectl: error",
        "line\rOVERWRITTEN",
        "csi \x9b31m in C1",
        "right-to-left \u202e override",
    ],
)
def test_control_characters_are_escaped_on_the_way_out(raw: str) -> None:
    out = Redactor().redact(raw)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c == "\u202e" for c in out)
    assert "\\x1b" in out or "\\r" in out or "\\x9b" in out or "\\u202e" in out


def test_newlines_and_tabs_stay() -> None:
    assert Redactor().redact("a\tb\nc") == "a\tb\nc"


def test_a_second_private_key_is_hidden_after_a_first_was_registered() -> None:
    redactor = Redactor()
    redactor.add(PEM)
    other = ["Zm9vYmFyYmF6cXV4" * 4, "cXV1eHh5enp5eHd2" * 4]
    text = "-----BEGIN PRIVATE" " KEY-----\n" + "\n".join(other) + "\n-----END PRIVATE" " KEY-----\n"
    out = redactor.redact(text)
    for line in other:
        assert line not in out


def test_a_registered_secret_containing_a_pattern_match_is_hidden_whole() -> None:
    redactor = Redactor()
    redactor.add("qq-abcdef.0123456789abcdef-qq")
    assert redactor.redact("x qq-abcdef.0123456789abcdef-qq y") == "x <redacted> y"


def _tail_report(tail: list[str]) -> RunReport:
    report = RunReport(command="bootstrap", cluster="lab", inventory="inv.yml")
    report.nodes = [NodeReport("cp-1", "control-plane", "a", Outcome.FAILED, "init",
                               "kubeadm init failed", log_tail=tail)]
    return report


@pytest.mark.parametrize("tail", [
    ["[upload-certs] Storing the certificates", "[upload-certs] Using certificate key:", KEY,
     "[mark-control-plane] Marking the node"],
    ["kubeadm said:", *PEM.splitlines(), "and went on"],
])
def test_a_secret_split_over_lines_of_a_kubeadm_log_tail_is_hidden_everywhere(
    tmp_path: Any, tail: list[str]
) -> None:
    """Nothing registered it (kubeadm printed it, the tool never saw it whole): only the
    patterns can find it, and only in the tail as one text."""
    from rich.console import Console

    from k8slk_ops.output.report import LiveReporter, LogFileReporter

    secrets = [KEY, *PEM_BODY]
    redactor = Redactor()
    plain, doc = io.StringIO(), io.StringIO()
    PlainReporter(redactor, plain).finish(_tail_report(tail))
    JsonReporter(PlainReporter(redactor, io.StringIO()), redactor, doc).finish(_tail_report(tail))
    log = tmp_path / "run.log"
    file_reporter = LogFileReporter(log, redactor)
    file_reporter.finish(_tail_report(tail))
    file_reporter.close()
    live = io.StringIO()
    LiveReporter(redactor, Console(file=live, width=200, force_terminal=False)).finish(
        _tail_report(tail))
    texts = {"plain": plain.getvalue(), "json": doc.getvalue(), "log file": log.read_text(),
             "terminal": live.getvalue()}
    for where, text in texts.items():
        assert tail[0] in text, where
        for secret in secrets:
            if secret in "\n".join(tail):
                assert secret not in text, f"{where} shows {secret[:8]}..."
    assert any("<redacted>" in line for line in json.loads(doc.getvalue())["nodes"][0]["logTail"])
