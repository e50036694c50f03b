"""``etcd restore --pki`` on the lab: every control plane lost and replaced by a blank machine,
the cluster made again from the snapshot and the keys ``etcd snapshot --pki`` wrote beside it.

Three control planes behind the load balancer and one worker. A ConfigMap made before the
snapshot is there after the rebuild, one made after it is not; the three members are healthy as
Debian's etcdctl sees them, the worker (never touched: its kubelet.conf is the one it had) is
Ready, and the cluster takes writes. Before that, ``--pki`` onto control planes that are not
blank is refused (exit 2) with the cluster unchanged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli, kubectl_nodes
from tests.e2e.test_lab_etcd_restore import _configmaps, _make, _members

pytestmark = pytest.mark.lab

CPS = ("cp-1", "cp-2", "cp-3")
KUBELET_CONF = "etc/kubernetes/kubelet.conf"


def _snapshot_with_pki(inv: Path, out: Path, tmp_path: Path) -> tuple[Path, Path]:
    run = cli("etcd", "snapshot", str(inv), "-o", str(out), "--pki", "--json",
              log_file=tmp_path / "snap.log")
    assert run.code == 0, run.stderr
    taken = json.loads(run.stdout)["data"]["snapshot"]
    return Path(taken["path"]), Path(taken["pki"]["path"])


def _digest(lab: Any, node: str, rel: str) -> str:
    return hashlib.sha256((lab._files(node).var_node / rel).read_bytes()).hexdigest()


def test_rebuild_on_blank_control_planes(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=4, control_planes=3)
    inv = lab.inventory_path
    boot = cli("bootstrap", str(inv), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    _make(lab, "before")
    snap, pki = _snapshot_with_pki(inv, tmp_path / "snaps", tmp_path)
    _make(lab, "after")
    worker = next(n.spec.name for n in lab.state.nodes if n.spec.name not in CPS)
    ca_before = _digest(lab, "cp-1", "etc/kubernetes/pki/ca.crt")

    # Control planes that still run are not blank: refused, nothing changed.
    refused = cli("etcd", "restore", str(inv), str(snap), "--pki", str(pki), "--yes",
                  log_file=tmp_path / "refused.log")
    assert refused.code == 2, refused.stdout + refused.stderr
    assert "cp-1 is not blank" in refused.stderr, refused.stderr
    assert "nothing was changed" in refused.stderr
    assert _configmaps(lab) >= {"before", "after"}
    for cp in CPS:
        assert not (lab._files(cp).var_node / "var/lib/k8slk-ops-rebuild").exists()

    # Every control plane lost: new blank machines at their addresses (new host keys, which
    # the operator checked). The worker keeps running, its kubelet.conf as it was.
    worker_conf = _digest(lab, worker, KUBELET_CONF)
    for cp in CPS:
        lab.fault(cp, "replace")
    lab.rewrite_known_hosts()

    run = cli("etcd", "restore", str(inv), str(snap), "--pki", str(pki), "--yes", "--json",
              log_file=tmp_path / "rebuild.log", timeout=1200)
    assert run.code == 0, run.stdout + run.stderr
    rebuilt = json.loads(run.stdout)["data"]["etcdRebuild"]
    assert rebuilt["first"] == "cp-1" and sorted(rebuilt["joined"]) == ["cp-2", "cp-3"]
    assert rebuilt["revision"] > 0

    assert _digest(lab, "cp-1", "etc/kubernetes/pki/ca.crt") == ca_before
    names = _configmaps(lab)
    assert "before" in names and "after" not in names
    health = _members(lab)
    assert len(health) == 3 and all(h["health"] for h in health), health
    nodes = kubectl_nodes(lab)
    assert set(nodes) == {*CPS, worker} and all(n["ready"] for n in nodes.values()), nodes
    assert _digest(lab, worker, KUBELET_CONF) == worker_conf
    _make(lab, "written-after-rebuild")
    assert "written-after-rebuild" in _configmaps(lab)
    for cp in CPS:
        assert not (lab._files(cp).var_node / "var/lib/k8slk-ops-rebuild").exists()
    secret = (lab._files("cp-1").var_node / "etc/kubernetes/pki/ca.key").read_text()
    body = secret.split("-----")[2].strip().splitlines()[1]
    assert body not in run.stdout + run.stderr + (tmp_path / "rebuild.log").read_text()
