"""Interrupting a run and racing two runs, end to end against the lab."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import Background, cli, kubectl_nodes, trigger_state, wait_until

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
    # The running join's trigger was written whole; the wait on its log ended at the Ctrl-C.
    assert outcomes["w-1"] == "cancelled"
    assert trigger_state(lab, "w-1") != "absent"
    assert any(m.startswith("w-1: kubeadm join was triggered and goes on on the node")
               for m in report["messages"])
    assert outcomes["w-2"] == "cancelled" and outcomes["w-3"] == "cancelled"
    assert trigger_state(lab, "w-2") == "absent"  # nothing new was launched
    tokens = lab.kubelet_exec("cp-1", ["kubeadm", "token", "list"]).stdout
    assert "k8slk-ops" not in tokens  # the run's tokens were deleted
    assert not lab.exists("cp-1", "/run/k8slk-ops.lock")  # the cluster lock was released
    # and the next run finishes the job
    again = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "run2.log")
    after = {n["name"]: n["outcome"] for n in again.report["nodes"]}
    assert after["w-2"] == after["w-3"] == "ok", again.stderr
    # w-1's join went on without the run: in the cluster, or failed for want of the revoked
    # token (then the report says to reboot it), as the interrupted run's report warned.
    assert after["w-1"] in ("ok", "unchanged", "failed"), again.stderr


def test_sigterm_during_the_ready_wait_stops_the_run_and_cleans_up(
    lab_factory: Any, tmp_path: Path
) -> None:
    """SIGTERM, as `timeout` or systemd send it, while the run waits for Ready: the run ends
    at once (long before the playbook's 5-minute Ready timeout), having deleted its tokens,
    released its locks and written its report and its metrics."""
    lab = lab_factory(nodes=2, control_planes=1, pod_network_addon=False)  # never Ready
    log = tmp_path / "run.log"
    prom = tmp_path / "run.prom"
    run = Background(
        "bootstrap", str(lab.inventory_path), "--json", "--metrics-file", str(prom),
        log_file=log, cache=tmp_path / "cache",
    )
    wait_until(lambda: log.exists() and "ready" in log.read_text() and "NotReady" in
               log.read_text(), timeout=120, what="the Ready wait")
    signalled = time.monotonic()
    run.terminate()
    result = run.wait(timeout=120)  # the Ready timeout is 300 s: the signal ended the run
    print(f"SIGTERM to exit: {time.monotonic() - signalled:.1f} s")  # shown with -s, not asserted
    assert result.code == 130, result.stderr
    assert result.report["interrupted"] is True
    assert result.report["exitCode"] == 130
    assert "terminated (SIGTERM): stopping now" in result.log
    tokens = lab.kubelet_exec("cp-1", ["kubeadm", "token", "list"]).stdout
    assert "k8slk-ops" not in tokens  # the run's tokens were deleted
    assert not lab.exists("cp-1", "/run/k8slk-ops.lock")
    leases = lab.kubelet_exec("cp-1", ["kubectl", "get", "lease", "-n", "kube-system", "-o",
                                       "name"]).stdout
    assert "k8slk-ops-lock" not in leases  # the cluster lock was released
    text = prom.read_text()
    assert 'result="interrupted"' in text and "k8slk_ops_run_exit_code" in text


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


def test_interrupted_removal_uncordons_and_a_concurrent_add_is_refused(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=3, control_planes=1)
    boot = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    lab.fault("w-1", "drain-block")  # the drain waits for its timeout: a run that lasts
    log = tmp_path / "remove.log"
    removal = Background(
        "remove-node", str(lab.inventory_path), "w-1", "--drain-timeout", "300s", "--json",
        log_file=log, cache=tmp_path / "cache-a",
    )
    wait_until(lambda: kubectl_nodes(lab)["w-1"]["raw"]["spec"].get("unschedulable"),
               what="w-1 cordoned by the drain")

    other = cli("add-node", str(lab.inventory_path), log_file=tmp_path / "add.log",
                cache=tmp_path / "cache-b")
    assert other.code == 3
    assert "locked" in other.stderr and "remove-node" in other.stderr

    removal.interrupt()  # Ctrl-C: the drain is cut at once, its node given back
    result = removal.wait(timeout=60)
    assert result.code == 130, result.stderr
    node = {n["name"]: n for n in result.report["nodes"]}["w-1"]
    assert node["outcome"] == "cancelled"
    assert "uncordoned" in result.log
    member = kubectl_nodes(lab)["w-1"]
    assert not member["raw"]["spec"].get("unschedulable")  # given back to the scheduler
    assert lab.exists("w-1", "/var/node/var/lib/kubelet/config.yaml")  # not reset
    assert not lab.exists("cp-1", "/run/k8slk-ops.lock")  # the cluster lock was released
    drains = lab.kubelet_exec("cp-1", ["sh", "-c", "grep -l 'dr[a]in' /proc/[0-9]*/cmdline"])
    assert drains.stdout.strip() == ""  # kubectl drain was killed on the node, not left running
