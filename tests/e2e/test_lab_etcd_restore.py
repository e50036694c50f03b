"""``etcd restore`` on the lab's real etcd (Debian's, as each control plane's etcd static pod),
run through the etcd image in each node's containerd (Debian's binaries, imported at boot).

A ConfigMap made before the snapshot is there after the restore, one made after it is not; the
three members are healthy as Debian's etcdctl sees them, every node is Ready and the cluster
takes writes. A truncated snapshot and an unconfirmed restore are refused with the cluster
unchanged; a restore with quorum lost (two members stopped) brings the cluster back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli, kubectl_nodes

pytestmark = pytest.mark.lab


def _kubectl(lab: Any, *args: str) -> subprocess.CompletedProcess[str]:
    out: subprocess.CompletedProcess[str] = lab.kubelet_exec(
        "cp-1", ["kubectl", *args, "--request-timeout=20s"])
    return out


def _configmaps(lab: Any) -> set[str]:
    out = _kubectl(lab, "get", "configmaps", "-n", "default", "-o", "json")
    assert out.returncode == 0, out.stderr
    return {i["metadata"]["name"] for i in json.loads(out.stdout)["items"]}


def _make(lab: Any, name: str) -> None:
    out = _kubectl(lab, "create", "configmap", name, "-n", "default", "--from-literal=k=v")
    assert out.returncode == 0, out.stderr


def _members(lab: Any) -> list[dict[str, Any]]:
    """``etcdctl endpoint health`` of every member."""
    done = _etcdctl(lab, "endpoint", "health", "-w", "json")
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def _etcdctl(lab: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's etcdctl from the host against every control plane's member, with the
    cluster's healthcheck-client certificate."""
    pki = lab._files("cp-1").var_node / "etc/kubernetes/pki/etcd"
    endpoints = ",".join(f"https://{lab.node(n).address}:2379" for n in ("cp-1", "cp-2", "cp-3"))
    return subprocess.run(
        ["etcdctl", f"--endpoints={endpoints}", f"--cacert={pki}/ca.crt",
         f"--cert={pki}/healthcheck-client.crt", f"--key={pki}/healthcheck-client.key",
         "--command-timeout=10s", *args],
        capture_output=True, text=True, timeout=60, check=False,
        env=dict(os.environ, ETCDCTL_API="3"),
    )


def _one_cluster(lab: Any) -> None:
    """Every member answers for the same cluster of three: members restored apart, each its
    own cluster, would each be healthy on its own and still be three clusters."""
    done = _etcdctl(lab, "endpoint", "status", "-w", "json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    ids = {s["Status"]["header"]["cluster_id"] for s in status}
    assert len(status) == 3 and len(ids) == 1, done.stdout
    members = _etcdctl(lab, "member", "list", "-w", "json")
    assert members.returncode == 0, members.stderr
    assert len(json.loads(members.stdout)["members"]) == 3, members.stdout


def _snapshot(inv: Path, out: Path, tmp_path: Path) -> Path:
    run = cli("etcd", "snapshot", str(inv), "-o", str(out), "--json",
              log_file=tmp_path / "snap.log")
    assert run.code == 0, run.stderr
    path = Path(json.loads(run.stdout)["data"]["snapshot"]["path"])
    assert (path.parent / (path.name + ".sha256")).read_text().split()[0] == \
        json.loads(run.stdout)["data"]["snapshot"]["sha256"]
    return path


def test_restore_on_three_control_planes(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=4, control_planes=3)
    inv = lab.inventory_path
    boot = cli("bootstrap", str(inv), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    _make(lab, "before")
    snap = _snapshot(inv, tmp_path / "snaps", tmp_path)
    _make(lab, "after")

    # A truncated copy (its recorded hash beside it) is refused; nothing changes.
    cut = tmp_path / "cut" / snap.name
    cut.parent.mkdir()
    cut.write_bytes(snap.read_bytes()[: snap.stat().st_size // 2])
    (cut.parent / (snap.name + ".sha256")).write_text(
        (snap.parent / (snap.name + ".sha256")).read_text())
    refused = cli("etcd", "restore", str(inv), str(cut), "--yes", "--metrics-file",
                  str(tmp_path / "cut.prom"), log_file=tmp_path / "cut.log")
    assert refused.code == 2, refused.stderr
    assert "truncated or replaced" in refused.stderr
    assert (tmp_path / "cut.prom").exists()
    # Without --yes and without a terminal: refused, the metrics say so.
    unconfirmed = subprocess.run(
        [*_cli_argv(), "etcd", "restore", str(inv), str(snap), "--metrics-file",
         str(tmp_path / "no.prom")], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, check=False)
    assert unconfirmed.returncode == 2, unconfirmed.stderr
    assert "needs --yes" in unconfirmed.stderr
    assert "k8slk_ops_run_exit_code" in (tmp_path / "no.prom").read_text()
    assert _configmaps(lab) >= {"before", "after"}

    run = cli("etcd", "restore", str(inv), str(snap), "--yes", "--json",
              log_file=tmp_path / "restore.log", timeout=900)
    assert run.code == 0, run.stdout + run.stderr
    restored = json.loads(run.stdout)["data"]["etcdRestore"]
    assert restored["revision"] > 0
    assert len(restored["kept"]) == 3

    names = _configmaps(lab)
    assert "before" in names and "after" not in names
    health = _members(lab)
    assert len(health) == 3 and all(h["health"] for h in health), health
    _one_cluster(lab)
    assert all(n["ready"] for n in kubectl_nodes(lab).values())
    _make(lab, "written-after-restore")
    assert "written-after-restore" in _configmaps(lab)
    for cp in ("cp-1", "cp-2", "cp-3"):
        lib = lab._files(cp).var_node / "var/lib"
        assert not (lib / "k8slk-ops-restore").exists()
        assert [p.name for p in lib.iterdir() if p.name.startswith("etcd.before-restore-")]

    # Quorum lost: two members stopped (the API stops answering), then their data directories
    # gone; the kubelet may start them again on empty directories; the restore brings back
    # the snapshot's cluster whatever state they reached.
    for cp in ("cp-2", "cp-3"):
        lab.fault(cp, "etcd-stop")
    down = _kubectl(lab, "get", "nodes")
    picture = _etcdctl(lab, "endpoint", "status", "-w", "table")
    assert down.returncode != 0 and "etcdserver: request timed out" in down.stderr, (
        down.stdout, down.stderr, picture.stdout, picture.stderr)
    for cp in ("cp-2", "cp-3"):
        shutil.rmtree(lab._files(cp).var_node / "var/lib/etcd")
        lab.fault(cp, "etcd-start")
    again = cli("etcd", "restore", str(inv), str(snap), "--yes", "--json",
                log_file=tmp_path / "again.log", timeout=900)
    assert again.code == 0, again.stdout + again.stderr
    names = _configmaps(lab)
    assert "before" in names and "written-after-restore" not in names
    assert len(_members(lab)) == 3
    _one_cluster(lab)
    assert all(n["ready"] for n in kubectl_nodes(lab).values())


def _cli_argv() -> list[str]:
    return [sys.executable, "-m", "k8slk_ops"]
