"""Failures at fleet scale: a failed join leaves the other joins alone, a failed init stops the
run before any join. The fleet's ``--fail-nodes`` makes those nodes' kubeadm fail preflight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import CliRun, bootstrap_fleet

pytestmark = pytest.mark.lab


def bootstrap_with_failures(directory: Path, nodes: int, fail: str) -> tuple[CliRun, dict[str, Any]]:
    return bootstrap_fleet(directory, nodes, settle=0.1, kubeadm_seconds=0.2, ready_delay=0.2,
                           fail_nodes=fail)


def test_failed_joins_fail_alone_with_kubeadms_words(tmp_path: Path) -> None:
    run, stats = bootstrap_with_failures(tmp_path, 12, "w-3,w-7")
    assert run.code == 1, run.stderr[-2000:]
    nodes = {n["name"]: n for n in run.report["nodes"]}
    for name in ("w-3", "w-7"):
        assert nodes[name]["outcome"] == "failed"
        assert nodes[name]["phase"] == "join"
        assert any("[ERROR Mem]" in line for line in nodes[name]["logTail"])
    assert {n for n, v in nodes.items() if v["outcome"] == "ok"} == set(nodes) - {"w-3", "w-7"}
    assert stats["members"] == 10
    assert stats["tokens"] == 0  # cleanup ran although the run failed


def test_a_failed_init_stops_the_run_before_any_join(tmp_path: Path) -> None:
    run, stats = bootstrap_with_failures(tmp_path, 6, "cp-1")
    assert run.code == 1, run.stderr[-2000:]
    nodes = {n["name"]: n for n in run.report["nodes"]}
    assert nodes["cp-1"]["outcome"] == "failed" and nodes["cp-1"]["phase"] == "init"
    assert {nodes[f"w-{i}"]["outcome"] for i in range(1, 6)} == {"skipped"}
    assert stats["members"] == 0
    assert "write-file" in stats["commands"]  # cp-1 was written to
    assert stats["commands"]["follow-log"] == 1  # and no worker was ever triggered
