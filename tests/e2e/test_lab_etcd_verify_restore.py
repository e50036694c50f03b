"""``etcd snapshot --verify-restore`` on the lab's real etcd (Debian's, the control plane's etcd
static pod) and its real containerd holding the etcd image (Debian's binaries, no shell).

The new snapshot is restored on the control plane with that image, a throwaway etcd serves it
in a container of its own, and its keys and Node names come back into the report and the
metrics file (read with prometheus_client's own parser). Afterwards the node holds neither the
scratch directory nor the container. A throwaway etcd that cannot start (the real etcd refusing
a flag) fails the run with etcd's own words, keeps the snapshot and leaves nothing either.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from k8slk_ops.cluster import restorecheck
from tests.e2e.helpers import cli
from tests.unit.clirun import K8slk

pytestmark = pytest.mark.lab


def _samples(path: Path, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for family in text_string_to_metric_families(path.read_text())
            for s in family.samples if s.name == name]


def _nothing_left(lab: Any) -> None:
    """No scratch directory, no container, no task of the check on the control plane."""
    lib = lab._files("cp-1").var_node / "var/lib"
    assert [p.name for p in lib.iterdir() if p.name.startswith("k8slk-ops-verify")] == []
    for what in ("containers", "tasks"):
        listed = lab.ssh("cp-1", f"ctr --namespace k8s.io {what} ls -q")
        assert listed.returncode == 0, listed.stderr
        assert [c for c in listed.stdout.split() if c.startswith("k8slk-etcd-")] == [], \
            listed.stdout


def test_verify_restore_on_one_control_plane(
    lab_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = lab_factory(nodes=2, control_planes=1)
    inv = lab.inventory_path
    boot = cli("bootstrap", str(inv), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr

    # A throwaway etcd that cannot start: the real etcd refuses a flag it does not know.
    real_argv = restorecheck.etcd_argv
    monkeypatch.setattr(restorecheck, "etcd_argv", lambda: [*real_argv(), "--no-such-flag=1"])
    logger = logging.getLogger("k8slk_ops")  # the in-process CLI sets it up for itself
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    bad_prom = tmp_path / "bad.prom"
    (tmp_path / "bad").mkdir()
    bad = K8slk(tmp_path / "bad")("etcd", "snapshot", inv, "-o", tmp_path / "bad-snaps",
                                  "--verify-restore", "--metrics-file", bad_prom, "--json")
    assert bad.code == 1, bad.why()
    failed = bad.nodes["cp-1"]
    assert failed["message"].startswith(
        "restore check failed: the throwaway etcd exited before it answered"), failed
    assert "is kept" in failed["message"] and "may still be fine" in failed["message"]
    assert any("no-such-flag" in line for line in failed["logTail"]), failed["logTail"]
    assert Path(bad.report["data"]["snapshot"]["path"]).is_file()
    assert bad.report["data"]["restoreCheck"]["verified"] is False
    assert [v for _, v in _samples(bad_prom, "k8slk_ops_etcd_snapshot_restore_verified")] == [0]
    _nothing_left(lab)
    monkeypatch.setattr(restorecheck, "etcd_argv", real_argv)

    prom = tmp_path / "snap.prom"
    run = cli("etcd", "snapshot", str(inv), "-o", str(tmp_path / "snaps"), "--verify-restore",
              "--metrics-file", str(prom), "--json", log_file=tmp_path / "snap.log",
              timeout=600)
    assert run.code == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    check = report["data"]["restoreCheck"]
    assert check["verified"] is True
    assert check["node"] == "cp-1"
    assert check["nodes"] == ["cp-1", "w-1"]
    assert check["keys"] > 0
    line = f"restore verified: {check['keys']} keys, 2 nodes (cp-1, w-1)"
    assert line in report["messages"]
    row = {n["name"]: n for n in report["nodes"]}["cp-1"]
    assert row["message"] == line
    assert row["details"]["restoreCheck"]["keys"] == check["keys"]
    assert Path(report["data"]["snapshot"]["path"]).is_file()

    cluster = report["cluster"]
    verified = _samples(prom, "k8slk_ops_etcd_snapshot_restore_verified")
    assert verified == [({"command": "etcd snapshot", "cluster": cluster}, 1.0)]
    keys = _samples(prom, "k8slk_ops_etcd_snapshot_restore_keys")
    assert keys == [({"command": "etcd snapshot", "cluster": cluster}, float(check["keys"]))]

    _nothing_left(lab)
