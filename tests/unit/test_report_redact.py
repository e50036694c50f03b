"""Secrets never leave through any reporter; the plain, live and JSON outputs are well formed."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from k8slk_ops.output.events import Event, EventKind, NodeReport, Outcome, RunReport
from k8slk_ops.output.redact import Redactor
from k8slk_ops.output.report import JsonReporter, LiveReporter, LogFileReporter, PlainReporter
from tests.unit.pem import pem_private_key

TOKEN = "abcdef.0123456789abcdef"
KEY = "c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f"
PIN = "sha256:" + "ab" * 32


def report() -> RunReport:
    r = RunReport(command="bootstrap", cluster="lab", inventory="inv.yml")
    ok = NodeReport("cp-1", "control-plane", "127.0.0.11", Outcome.OK, "init", "", "v1.31.3", 3.2)
    bad = NodeReport("w-1", "worker", "127.0.0.12", Outcome.FAILED, "join",
                     f"kubeadm join --token {TOKEN} failed", log_tail=[f"kubeadm join --certificate-key {KEY}"])
    r.nodes = [ok, bad]
    r.messages = [f"pinned {PIN}"]
    r.exit_code = 1
    return r


def test_registered_and_pattern_secrets_are_hidden_ca_pins_are_not() -> None:
    red = Redactor()
    red.add("s3cr3t-value-xyz")
    text = (f"a s3cr3t-value-xyz b --token {TOKEN} --certificate-key {KEY} {PIN}\n"
            "client-key-data: QUJDREVGRw==\n" + pem_private_key("", "MIIE\n").rstrip("\n"))
    out = red.redact(text)
    for secret in ("s3cr3t-value-xyz", TOKEN, KEY, "QUJDREVGRw==", "MIIE"):
        assert secret not in out
    assert PIN in out


def test_overlapping_registered_secrets() -> None:
    red = Redactor()
    red.add("abcdefgh")
    red.add("abcdefghijkl")
    assert "ijkl" not in red.redact("xx abcdefghijkl yy")


@settings(max_examples=60)
@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=8, max_size=40),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
def test_a_registered_secret_never_survives(secret: str, before: str, after: str) -> None:
    red = Redactor()
    red.add(secret)
    assert secret.strip() not in red.redact(before + secret + after)


def test_plain_reporter_lines_and_summary() -> None:
    stream = io.StringIO()
    rep = PlainReporter(Redactor(), stream)
    rep.emit(Event("w-1", "join", EventKind.FAIL, f"bad token {TOKEN}"))
    rep.finish(report())
    text = stream.getvalue()
    assert "\x1b[" not in text
    assert " w-1 join FAIL: bad token " in text
    assert TOKEN not in text and KEY not in text
    assert "w-1" in text and "failed" in text and "exit 1" in text


def test_json_reporter_prints_one_redacted_document() -> None:
    out = io.StringIO()
    rep = JsonReporter(PlainReporter(Redactor(), io.StringIO()), Redactor(), out)
    rep.finish(report())
    doc = json.loads(out.getvalue())
    assert doc["exitCode"] == 1
    assert TOKEN not in out.getvalue() and KEY not in out.getvalue()
    assert doc["messages"] == [f"pinned {PIN}"]


def test_live_reporter_renders_every_node() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=140)
    rep = LiveReporter(Redactor(), console)
    rep.emit(Event("cp-1", "init", EventKind.START, "writing"))
    rep.emit(Event("cp-1", "init", EventKind.OK))
    rep.emit(Event(None, "plan", EventKind.INFO, "nothing to do"))
    rep.finish(report())
    text = buf.getvalue()
    assert "cp-1" in text and "w-1" in text and "nothing to do" in text
    assert TOKEN not in text and KEY not in text


def test_log_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    rep = LogFileReporter(path, Redactor())
    rep.emit(Event("w-1", "join", EventKind.FAIL, f"--token {TOKEN}"))
    rep.finish(report())
    rep.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert TOKEN not in path.read_text()
    assert "result w-1 failed" in path.read_text()
