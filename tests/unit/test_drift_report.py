"""drift's report in every output: the table on a terminal (rich) and in plain text, the JSON
document, the log file and the metrics, each difference once and every secret redacted."""

from __future__ import annotations

import io
import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from k8slk_ops.base.nextstep import NextStep
from k8slk_ops.drift import DriftItem, DriftResult
from k8slk_ops.output import metrics
from k8slk_ops.output.events import NodeReport, Outcome, RunReport
from k8slk_ops.output.redact import Redactor
from k8slk_ops.output.report import JsonReporter, LiveReporter, LogFileReporter, PlainReporter

TOKEN = "abcdef.0123456789abcdef"
KINDS = ("nodes", "static-pods")


def report(items: tuple[DriftItem, ...]) -> RunReport:
    r = RunReport(command="drift", cluster="lab", inventory="inv.yml")
    r.nodes = [NodeReport("cp-1", "control-plane", "127.0.0.11", Outcome.UNCHANGED)]
    r.drift = DriftResult(items, KINDS)
    r.exit_code = 1 if items else 0
    return r


ITEM = DriftItem("static-pods", "cp-1", "kube-apiserver --audit-log-maxage", "30", "7",
                 NextStep(f"rewrite it (token {TOKEN} seen)", "kubeadm upgrade node"))


def test_the_terminal_shows_a_table_of_the_differences() -> None:
    buf = io.StringIO()
    rep = LiveReporter(Redactor(), Console(file=buf, force_terminal=True, width=200))
    rep.finish(report((ITEM,)))
    text = buf.getvalue()
    header = next(line for line in text.splitlines() if "EXPECTED" in line)
    for column in ("KIND", "WHERE", "WHAT", "EXPECTED", "FOUND", "FIX"):
        assert column in header
    assert text.count("kube-apiserver --audit-log-maxage") == 1  # the table, not also a line
    assert TOKEN not in text


def test_plain_text_json_and_log_file(tmp_path: Path) -> None:
    plain = io.StringIO()
    out = io.StringIO()
    JsonReporter(PlainReporter(Redactor(), plain), Redactor(), out).finish(report((ITEM,)))
    row = next(line for line in plain.getvalue().splitlines() if line.startswith("static-pods"))
    assert row.split()[:6] == ["static-pods", "cp-1", "kube-apiserver", "--audit-log-maxage",
                               "30", "7"]
    doc = json.loads(out.getvalue())
    [item] = doc["data"]["drift"]["items"]
    assert item["fix"].pop("command") == "kubeadm upgrade node"
    assert item["fix"].pop("action").startswith("rewrite it (token ")
    assert item == {"kind": "static-pods", "where": "cp-1", "fix": {},
                    "what": "kube-apiserver --audit-log-maxage", "expected": "30", "found": "7"}
    assert doc["data"]["drift"]["counts"] == {"nodes": 0, "static-pods": 1}
    assert TOKEN not in out.getvalue() and TOKEN not in plain.getvalue()
    log = LogFileReporter(tmp_path / "run.log", Redactor())
    log.finish(report((ITEM,)))
    log.close()
    assert "kube-apiserver --audit-log-maxage" in (tmp_path / "run.log").read_text()


def test_metrics_name_every_kind_and_none_without_a_comparison() -> None:
    def drift_items(r: RunReport) -> dict[str, float]:
        found = {}
        for family in text_string_to_metric_families(metrics.render(r)):
            if family.name == "k8slk_ops_drift_items":
                found.update({s.labels["kind"]: s.value for s in family.samples})
        return found

    assert drift_items(report((ITEM,))) == {"nodes": 0.0, "static-pods": 1.0}
    assert drift_items(report(())) == {"nodes": 0.0, "static-pods": 0.0}
    compared_nothing = report(())
    compared_nothing.drift = None
    assert drift_items(compared_nothing) == {}
