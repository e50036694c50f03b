"""Interrupting a run and racing two runs, end to end against the lab."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import Background, cli, trigger_state, wait_until

pytestmark = pytest.mark.lab


def test_ctrl_c_stops_launching_cleans_up_and_reports(lab_factory: Any, tmp_path: Path) -> None:
    # One worker at a time and a slow settle, so the interrupt lands between two joins.
    lab = lab_factory(nodes=4, control_planes=1, settle=2.0)
    run = Background(
        "bootstrap", str(lab.inventory_path), "--json", "--concurrency", "1",
        log_file=tmp_path / "run.log", cache=tmp_path / "cache",
    )
    wait_until(lambda: trigger_state(lab, "w-1") != "absent", what="w-1's join trigger")
    run.interrupt()
    result = run.wait()
    assert result.code == 130, result.stderr
    report = result.report
    assert report["interrupted"] is True
    outcomes = {n["name"]: n["outcome"] for n in report["nodes"]}
    assert outcomes["cp-1"] == "ok"
    assert outcomes["w-1"] == "ok"  # the running join was allowed to finish
    assert outcomes["w-2"] == "cancelled" and outcomes["w-3"] == "cancelled"
    assert trigger_state(lab, "w-2") == "absent"  # nothing new was launched
    tokens = lab.kubelet_exec("cp-1", ["kubeadm", "token", "list"]).stdout
    assert "k8slk-ops" not in tokens  # the run's tokens were deleted
    assert not lab.exists("cp-1", "/run/k8slk-ops.lock")  # the cluster lock was released
    # and the next run finishes the job
    again = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "run2.log")
    assert again.code == 0, again.stderr
    assert {n["name"]: n["outcome"] for n in again.report["nodes"]}["w-3"] == "ok"


@pytest.mark.parametrize("same_machine", [True, False])
def test_second_concurrent_run_is_refused_with_the_holder(
    lab_factory: Any, tmp_path: Path, same_machine: bool
) -> None:
    lab = lab_factory(nodes=2, control_planes=1, settle=2.0)
    first = Background(
        "bootstrap", str(lab.inventory_path), "--json",
        log_file=tmp_path / "first.log", cache=tmp_path / "cache-a",
    )
    wait_until(lambda: trigger_state(lab, "cp-1") != "absent", what="cp-1's init trigger")
    # Same machine: the local lock answers. Another machine (another lock dir): the cluster lock.
    cache = tmp_path / ("cache-a" if same_machine else "cache-b")
    second = cli("bootstrap", str(lab.inventory_path), log_file=tmp_path / "second.log",
                 cache=cache)
    assert second.code == 3
    assert "locked" in second.stderr
    assert "bootstrap" in second.stderr and "pid" in second.stderr  # names the holder
    done = first.wait()
    assert done.code == 0, done.stderr
