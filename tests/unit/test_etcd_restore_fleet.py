"""``etcd restore`` in-process against the fleet: its control planes hold kubeadm's etcd
manifest, their containerd the etcd 3.4 image (``ctr run`` of it restores, tests/fleet/etcd.py),
and the snapshot is a real etcd 3.4 snapshot file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from k8slk_ops.cluster import etcdrestore, snapshot
from tests.fleet.etcd import HOST_DATA_DIR, SNAPSHOT, SNAPSHOT_STATUS
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory

CPS = ("cp-1", "cp-2", "cp-3")


@pytest.fixture(autouse=True)
def no_local_etcdctl(monkeypatch: pytest.MonkeyPatch) -> None:
    """The nodes read the snapshot with their etcd image; the operator has no etcdctl here."""
    monkeypatch.setattr(snapshot, "local_etcdctl", lambda: None)


def _fleet(fleet_factory: FleetFactory, k8slk: K8slk) -> InProcessFleet:
    fleet = fleet_factory(4, 3)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    return fleet


def _kept(tmp_path: Path, data: bytes = SNAPSHOT) -> Path:
    path = tmp_path / "fleet-20261207T000000Z.db"
    path.write_bytes(data)
    etcdrestore.sidecar(path).write_text(
        etcdrestore.sidecar_text(hashlib.sha256(data).hexdigest(), path.name))
    return path


def test_every_control_plane_is_restored_with_one_cluster(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = _fleet(fleet_factory, k8slk)
    fleet.write_file("cp-2", f"{HOST_DATA_DIR}/member/snap/db", b"the old data", 0o600)
    run = k8slk("etcd", "restore", fleet.inventory, _kept(tmp_path), "--yes", "--json")
    assert run.code == 0, run.why()
    restored = run.report["data"]["etcdRestore"]
    assert restored["revision"] == SNAPSHOT_STATUS["revision"]
    assert restored["keys"] == SNAPSHOT_STATUS["totalKey"]
    restores = fleet.call(lambda: list(fleet.fleet.cluster.restores))
    assert sorted(n for n, _ in restores) == list(CPS)
    clusters = {f["initial-cluster"] for _, f in restores}
    tokens = {f["initial-cluster-token"] for _, f in restores}
    assert len(clusters) == 1 and len(tokens) == 1
    assert clusters.pop() == ",".join(f"{n}=https://{fleet.address(n)}:2380" for n in CPS)
    for name, flags in restores:
        assert flags["name"] == name
        assert flags["initial-advertise-peer-urls"] == f"https://{fleet.address(name)}:2380"
    for name in CPS:
        assert fleet.file(name, f"{HOST_DATA_DIR}/member/snap/db") == SNAPSHOT
        assert fleet.file(name, etcdrestore.MARKER) is None  # cleaned up once healthy
        assert fleet.file(name, etcdrestore.SNAPSHOT) is None
    kept = [k for k in restored["kept"] if k.startswith("cp-2: ")]
    assert len(kept) == 1 and len(restored["kept"]) == 1
    old = kept[0].removeprefix("cp-2: ")
    assert fleet.file("cp-2", f"{old}/member/snap/db") == b"the old data"
    assert any("etcd restored from" in m for m in run.report["messages"])


def test_a_run_cut_short_resumes_without_restoring_twice(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = _fleet(fleet_factory, k8slk)
    fleet.call(lambda: fleet.fleet.cluster.restore_fails.add("cp-3"))
    path = _kept(tmp_path)
    first = k8slk("etcd", "restore", fleet.inventory, path, "--yes", "--json")
    assert first.code == 1
    failed = {n["name"]: n["message"] for n in first.report["nodes"] if n["outcome"] == "failed"}
    assert set(failed) == {"cp-3"} and "no space left on device" in failed["cp-3"]
    sha = hashlib.sha256(SNAPSHOT).hexdigest()
    for name in ("cp-1", "cp-2"):
        assert fleet.file(name, etcdrestore.MARKER) == f"{sha} restored\n".encode()
    assert fleet.file("cp-3", etcdrestore.MARKER) == f"{sha} uploaded\n".encode()
    # The copy on cp-3 lost meanwhile: uploaded again.
    fleet.call(lambda: fleet._node("cp-3").remove(etcdrestore.SNAPSHOT))

    again = k8slk("etcd", "restore", fleet.inventory, path, "--yes", "--json")
    assert again.code == 0, again.why()
    restores = fleet.call(lambda: [n for n, _ in fleet.fleet.cluster.restores])
    assert sorted(restores) == list(CPS)  # cp-1 and cp-2 were not restored a second time


def test_a_restore_of_another_snapshot_in_progress_is_refused(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = _fleet(fleet_factory, k8slk)
    other = "ef" * 32
    fleet.write_file("cp-2", etcdrestore.MARKER, f"{other} uploaded\n".encode(), 0o600)
    run = k8slk("etcd", "restore", fleet.inventory, _kept(tmp_path), "--yes", "--json")
    assert run.code == 1
    failed = {n["name"]: n["message"] for n in run.report["nodes"] if n["outcome"] == "failed"}
    assert "another snapshot" in failed["cp-2"] and other in failed["cp-2"]
    assert fleet.call(lambda: list(fleet.fleet.cluster.restores)) == []  # nothing restored


def test_a_file_the_nodes_etcd_cannot_read_stops_before_anything_stops(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = _fleet(fleet_factory, k8slk)
    run = k8slk("etcd", "restore", fleet.inventory, _kept(tmp_path, b"not a snapshot" * 64),
                "--yes", "--json")
    assert run.code == 1
    assert any("snapshot status" in n["message"] for n in run.report["nodes"])
    assert fleet.call(lambda: list(fleet.fleet.cluster.restores)) == []
    status = k8slk("etcd", "status", fleet.inventory, "--json")
    assert status.code == 0, status.why()  # etcd was never stopped


def test_a_dry_run_shows_the_stages_and_touches_nothing(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = _fleet(fleet_factory, k8slk)
    run = k8slk("etcd", "restore", fleet.inventory, _kept(tmp_path), "--dry-run")
    assert run.code == 0, run.why()
    for said in ("upload fleet-20261207T000000Z.db", "park the static pod manifests",
                 "restore the snapshot into", "move the static pod manifests back",
                 "every etcd member is healthy"):
        assert said in run.stdout, run.stdout
    assert fleet.call(lambda: list(fleet.fleet.cluster.restores)) == []
    assert all(fleet.file(n, etcdrestore.MARKER) is None for n in CPS)
