"""``etcd snapshot`` and ``etcd status`` in-process against the fleet, whose control planes run
an etcd static pod reached through ``crictl`` (tests/fleet/etcd.py) and whose snapshot is a real
etcd 3.4 snapshot file."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from k8slk_ops.cluster import snapshot
from tests.fleet.etcd import HOST_DATA_DIR, SNAPSHOT, SNAPSHOT_STATUS
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory


@pytest.fixture
def node_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No local etcdctl: the snapshot is verified by etcdctl in the etcd pod."""
    monkeypatch.setattr(snapshot, "local_etcdctl", lambda: None)


def _bootstrapped(fleet_factory: FleetFactory, k8slk: K8slk, cps: int) -> InProcessFleet:
    fleet = fleet_factory(cps + 1, cps)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    return fleet


def _snapshots(directory: Path) -> list[str]:
    """The files in ``directory`` but the SHA-256 records beside the snapshots."""
    return sorted(p.name for p in directory.iterdir()
                  if not p.name.endswith(".sha256")) if directory.exists() else []


@pytest.mark.parametrize("cps", [1, 3])
def test_snapshot_writes_a_checked_db_and_removes_the_nodes_copy(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path, cps: int, node_verifies: None
) -> None:
    fleet = _bootstrapped(fleet_factory, k8slk, cps)
    out = tmp_path / "snaps"
    run = k8slk("etcd", "snapshot", fleet.inventory, "-o", out, "--json")
    assert run.code == 0, run.why()
    snap = run.report["data"]["snapshot"]
    path = Path(snap["path"])
    assert path.parent == out and path.name.startswith("fleet-") and path.suffix == ".db"
    assert path.read_bytes() == SNAPSHOT
    assert snap["sizeBytes"] == len(SNAPSHOT)
    assert snap["sha256"] == hashlib.sha256(SNAPSHOT).hexdigest()
    assert snap["revision"] == SNAPSHOT_STATUS["revision"]
    assert snap["keys"] == SNAPSHOT_STATUS["totalKey"]
    assert isinstance(snap["timestampSeconds"], float)
    assert snap["verifiedBy"] == "etcdctl on cp-1"
    assert path.stat().st_mode & 0o777 == 0o600
    assert _snapshots(out) == [path.name]  # no .part left
    record = path.with_name(path.name + ".sha256").read_text()
    assert record == f"{snap['sha256']}  {path.name}\n"  # sha256sum's format, for etcd restore
    assert fleet.files_under("cp-1", HOST_DATA_DIR) == []


@pytest.mark.skipif(shutil.which("etcdctl") is None, reason="Debian's etcd-client not installed")
def test_snapshot_is_verified_by_the_local_etcdctl_when_there_is_one(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = _bootstrapped(fleet_factory, k8slk, 1)
    run = k8slk("etcd", "snapshot", fleet.inventory, "-o", tmp_path / "s", "--json")
    assert run.code == 0, run.why()
    assert run.report["data"]["snapshot"]["verifiedBy"] == "local etcdctl"
    assert run.report["data"]["snapshot"]["revision"] == SNAPSHOT_STATUS["revision"]


def test_keep_2_after_three_snapshots_leaves_the_newest_two(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path, node_verifies: None
) -> None:
    fleet = _bootstrapped(fleet_factory, k8slk, 1)
    out = tmp_path / "snaps"
    out.mkdir()
    # Older snapshots of this cluster (and files that are not ours, which stay).
    for stamp in ("20200101T000000Z", "20210101T000000Z"):
        (out / f"fleet-{stamp}.db").write_bytes(b"old")
    (out / "other-20200101T000000Z.db").write_bytes(b"another cluster")
    (out / "notes.txt").write_text("mine")
    run = k8slk("etcd", "snapshot", fleet.inventory, "-o", out, "--keep", "2", "--json")
    assert run.code == 0, run.why()
    new = Path(run.report["data"]["snapshot"]["path"]).name
    assert _snapshots(out) == sorted(
        ["fleet-20210101T000000Z.db", new, "other-20200101T000000Z.db", "notes.txt"]
    )
    assert run.report["data"]["snapshot"]["pruned"] == [str(out / "fleet-20200101T000000Z.db")]


def test_keep_1_never_deletes_the_snapshot_just_taken(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path, node_verifies: None
) -> None:
    fleet = _bootstrapped(fleet_factory, k8slk, 1)
    out = tmp_path / "snaps"
    out.mkdir()
    future = out / "fleet-20991231T000000Z.db"
    future.write_bytes(b"dated later")
    run = k8slk("etcd", "snapshot", fleet.inventory, "-o", out, "--keep", "1", "--json")
    assert run.code == 0, run.why()
    snap = run.report["data"]["snapshot"]
    assert Path(snap["path"]).is_file()
    assert _snapshots(out) == [Path(snap["path"]).name]
    assert snap["pruned"] == [str(future)]
    assert f"deleted snapshot {future} (--keep)" in run.report["messages"]


def test_a_transfer_cut_short_leaves_no_db_and_exits_1(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path, node_verifies: None
) -> None:
    fleet = _bootstrapped(fleet_factory, k8slk, 1)
    fleet.cut_snapshots()
    out = tmp_path / "snaps"
    run = k8slk("etcd", "snapshot", fleet.inventory, "-o", out, "--json")
    assert run.code == 1
    assert "transfer cut short" in run.nodes["cp-1"]["message"]
    assert "snapshot" not in run.report["data"]
    assert _snapshots(out) == []


def test_status_shows_members_leader_and_health(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = _bootstrapped(fleet_factory, k8slk, 3)
    run = k8slk("etcd", "status", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    rows = {name: node["details"]["etcd"] for name, node in run.nodes.items()
            if node["details"]}
    assert set(rows) == {"cp-1", "cp-2", "cp-3"}
    assert sum(r["leader"] for r in rows.values()) == 1
    assert all(r["healthy"] and r["dbSizeBytes"] == 20480 for r in rows.values())
    assert {m["name"] for m in rows["cp-2"]["members"]} == {"cp-1", "cp-2", "cp-3"}
    text = k8slk("etcd", "status", fleet.inventory)
    assert text.code == 0
    assert "3 members: cp-1, cp-2, cp-3" in text.stderr + text.stdout


def test_with_two_of_three_members_stopped_status_and_snapshot_say_why(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path, node_verifies: None
) -> None:
    fleet = _bootstrapped(fleet_factory, k8slk, 3)
    fleet.stop_etcd("cp-2", "cp-3")
    run = k8slk("etcd", "status", fleet.inventory, "--json")
    assert run.code == 1
    assert "quorum lost" in run.nodes["cp-1"]["message"]
    assert "no running etcd container on cp-2" in run.nodes["cp-2"]["message"]
    snap = k8slk("etcd", "snapshot", fleet.inventory, "-o", tmp_path / "s", "--json")
    assert snap.code == 1
    assert "not healthy" in snap.nodes["cp-1"]["message"]
    assert _snapshots(tmp_path / "s") == []


def test_snapshot_of_a_cluster_never_made_cannot_start(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    run = k8slk("etcd", "snapshot", fleet.inventory, "-o", tmp_path / "s", "--json")
    assert run.code == 3
    assert "needs a running cluster" in run.stderr + " ".join(run.report["messages"])
    assert _snapshots(tmp_path / "s") == []


def test_with_quorum_lost_status_says_the_api_does_not_answer_and_exits_1(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = _bootstrapped(fleet_factory, k8slk, 3)
    fleet.stop_etcd("cp-2", "cp-3")
    run = k8slk("status", fleet.inventory, "--json")
    assert run.code == 1
    assert any("API does not answer" in m and "etcdserver: request timed out" in m
               and "quorum lost" in m for m in run.report["messages"])
