"""etcd snapshots and status on the lab's real etcd (Debian's etcd as each control
plane's etcd static pod, holding the API doubles' state; Nodes under /registry/minions/NAME).

A snapshot must be one that Debian's own etcdctl accepts, and restored into a fresh data
directory it must give an etcd holding the cluster's Nodes. With 2 of 3 members stopped the API
stops answering and every command says why.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from k8slk_ops.node.linuxkit import LinuxKitNode
from tests.e2e.helpers import cli
from tests.unit.clirun import K8slk

pytestmark = pytest.mark.lab
ETCDCTL_ENV = dict(os.environ, ETCDCTL_API="3")


def _etcdctl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["etcdctl", *args], capture_output=True, text=True, env=ETCDCTL_ENV,
                          timeout=timeout, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def restored_nodes(snapshot: Path, work: Path) -> set[str]:
    """Restore the snapshot into a fresh data directory, start an etcd on loopback ports and
    read the Node keys it holds."""
    data = work / "restored"
    done = _etcdctl("snapshot", "restore", str(snapshot), "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    client, peer = _free_port(), _free_port()
    url = f"http://127.0.0.1:{client}"
    log = (work / "restored-etcd.log").open("w")
    proc = subprocess.Popen(
        ["etcd", "--data-dir", str(data), "--listen-client-urls", url,
         "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(60):  # bounded: etcd answers within a few seconds
            keys = _etcdctl(f"--endpoints={url}", "--command-timeout=2s", "get",
                            "--prefix", "/registry/minions/", "--keys-only")
            if keys.returncode == 0:
                return {k.rsplit("/", 1)[-1] for k in keys.stdout.split() if k}
            proc.poll()
            assert proc.returncode is None, (work / "restored-etcd.log").read_text()[-2000:]
        raise AssertionError("the restored etcd did not answer")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _snapshot(inventory: Path, out: Path, log: Path, *extra: str) -> Any:
    run = cli("etcd", "snapshot", str(inventory), "-o", str(out), "--json", *extra, log_file=log)
    return run


def _sample(path: Path, name: str, **labels: str) -> float:
    """The one sample ``name`` (with ``labels``) in a metrics file, read with prometheus_client's
    own parser."""
    hits = [s.value for family in text_string_to_metric_families(path.read_text())
            for s in family.samples
            if s.name == name and set(labels.items()) <= set(s.labels.items())]
    assert len(hits) == 1, (name, labels, path.read_text())
    return hits[0]


def _db_files(out: Path) -> list[str]:
    """The files in ``out`` but the SHA-256 records kept beside the snapshots."""
    return sorted(p.name for p in out.iterdir()
                  if not p.name.endswith(".sha256")) if out.exists() else []


def test_snapshot_on_one_control_plane_restores_the_clusters_nodes(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=2, control_planes=1)
    inv = lab.inventory_path
    boot = cli("bootstrap", str(inv), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    out = tmp_path / "snaps"

    run = _snapshot(inv, out, tmp_path / "snap.log")
    assert run.code == 0, run.stderr
    snap = json.loads(run.stdout)["data"]["snapshot"]
    path = Path(snap["path"])
    status = _etcdctl("snapshot", "status", str(path), "-w", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["revision"] == snap["revision"] > 0
    assert restored_nodes(path, tmp_path) == {"cp-1", "w-1"}
    # The node's copy is gone.
    left = lab.kubelet_exec("cp-1", ["ls", "/var/lib/etcd"]).stdout.split()
    assert [f for f in left if f.startswith("k8slk-snapshot")] == []

    for i in range(3):
        again = _snapshot(inv, out, tmp_path / f"keep-{i}.log", "--keep", "2")
        assert again.code == 0, again.stderr
    kept = _db_files(out)
    assert len(kept) == 2 and all(name.endswith(".db") for name in kept)
    # Each kept snapshot has its record; the pruned ones' went with them.
    records = sorted(p.name for p in out.iterdir() if p.name.endswith(".sha256"))
    assert records == [name + ".sha256" for name in kept]


def test_a_transfer_cut_short_leaves_no_db(
    lab_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = lab_factory(nodes=1, control_planes=1)
    boot = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    real_copy = LinuxKitNode.copy_file_out

    async def cut(self: LinuxKitNode, path: str, write: Callable[[bytes], None]) -> None:
        """The SSH connection drops after the first chunk of the file has arrived."""

        def first_then_cut(chunk: bytes) -> None:
            write(chunk)
            ssh = self.conn._ssh  # the live asyncssh connection
            assert ssh is not None
            ssh.abort()

        await real_copy(self, path, first_then_cut)

    monkeypatch.setattr(LinuxKitNode, "copy_file_out", cut)
    # The in-process CLI sets up the k8slk_ops logger for itself: restored for later tests.
    logger = logging.getLogger("k8slk_ops")
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    k8slk = K8slk(tmp_path)
    out = tmp_path / "snaps"
    run = k8slk("etcd", "snapshot", lab.inventory_path, "-o", out, "--json")
    assert run.code == 1, run.why()
    assert "broke during" in run.nodes["cp-1"]["message"]
    assert _db_files(out) == []


def test_three_control_planes_and_a_lost_quorum(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=4, control_planes=3)
    inv = lab.inventory_path
    boot = cli("bootstrap", str(inv), "--json", "--metrics-file", str(tmp_path / "boot.prom"),
               log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    assert _sample(tmp_path / "boot.prom", "k8slk_ops_run_success") == 1

    status = cli("etcd", "status", str(inv), "--json", log_file=tmp_path / "status.log")
    assert status.code == 0, status.stderr
    rows = {n["name"]: n["details"]["etcd"] for n in json.loads(status.stdout)["nodes"]
            if n["details"]}
    assert set(rows) == {"cp-1", "cp-2", "cp-3"}
    assert sum(r["leader"] for r in rows.values()) == 1
    assert {m["name"] for m in rows["cp-1"]["members"]} == {"cp-1", "cp-2", "cp-3"}

    out = tmp_path / "snaps"
    prom = tmp_path / "snap.prom"
    run = _snapshot(inv, out, tmp_path / "snap.log", "--metrics-file", str(prom))
    assert run.code == 0, run.stderr
    snap = json.loads(run.stdout)["data"]["snapshot"]
    path = Path(snap["path"])
    checked = _etcdctl("snapshot", "status", str(path), "-w", "json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["revision"] == snap["revision"] > 0
    assert restored_nodes(path, tmp_path) == {"cp-1", "cp-2", "cp-3", "w-1"}
    assert _sample(prom, "k8slk_ops_etcd_snapshot_size_bytes") == path.stat().st_size
    assert _sample(prom, "k8slk_ops_etcd_snapshot_revision") == snap["revision"]
    assert _sample(prom, "k8slk_ops_run_success") == 1

    lab.fault("cp-2", "etcd-stop")
    lab.fault("cp-3", "etcd-stop")
    api = lab.kubelet_exec("cp-1", ["kubectl", "get", "nodes", "--request-timeout=20s"])
    assert api.returncode != 0 and "etcdserver: request timed out" in api.stderr, api.stderr
    broken = cli("etcd", "status", str(inv), "--json", "--metrics-file",
                 str(tmp_path / "broken.prom"), log_file=tmp_path / "broken.log")
    assert broken.code == 1
    assert _sample(tmp_path / "broken.prom", "k8slk_ops_run_result", result="failed") == 1
    report = json.loads(broken.stdout)
    why = {n["name"]: n["message"] for n in report["nodes"]}
    assert "quorum lost" in why["cp-1"]
    assert "no running etcd container on cp-2" in why["cp-2"]
    assert any("API does not answer" in m for m in report["messages"])

    st = cli("status", str(inv), "--json", "--metrics-file", str(tmp_path / "st.prom"),
             log_file=tmp_path / "st.log")
    assert st.code == 1
    assert any("API does not answer" in m and "quorum lost" in m
               for m in json.loads(st.stdout)["messages"])
    assert _sample(tmp_path / "st.prom", "k8slk_ops_run_exit_code") == 1

    failed = _snapshot(inv, out, tmp_path / "snap2.log", "--metrics-file", str(prom))
    assert failed.code == 1
    assert "not healthy" in json.loads(failed.stdout)["nodes"][0]["message"]
    assert _db_files(out) == [path.name]
    # The failed run says so, and the last snapshot's figures stay for the age alert.
    assert _sample(prom, "k8slk_ops_run_success") == 0
    assert _sample(prom, "k8slk_ops_run_exit_code") == 1
    assert _sample(prom, "k8slk_ops_etcd_snapshot_revision") == snap["revision"]
