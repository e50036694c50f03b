"""The pure parts of etcd snapshots: etcdctl's answers (texts from etcd 3.4.23), the received
file's checks, keeping the newest N."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from k8slk_ops.cluster import etcdctl, snapshot
from tests.fleet.etcd import SNAPSHOT, SNAPSHOT_STATUS

ENDPOINT_STATUS = (
    '[{"Endpoint":"https://127.0.0.1:2379","Status":{"header":{"cluster_id":14841639068965178418,'
    '"member_id":10276657743932975437,"revision":2,"raft_term":2},"version":"3.4.23",'
    '"dbSize":20480,"leader":10276657743932975437,"raftIndex":5,"raftTerm":2,'
    '"raftAppliedIndex":5,"dbSizeInUse":20480}}]\n'
)
MEMBER_LIST = (
    '{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"raft_term":2},'
    '"members":[{"ID":10276657743932975437,"name":"cp-1","peerURLs":["https://10.0.0.1:2380"],'
    '"clientURLs":["https://10.0.0.1:2379"]},{"ID":42,"peerURLs":["https://10.0.0.2:2380"]}]}'
)


def test_endpoint_status_member_and_leader() -> None:
    status = etcdctl.parse_endpoint_status(ENDPOINT_STATUS)
    assert status.is_leader and status.db_size == 20480 and status.version == "3.4.23"


def test_member_list_keeps_a_member_not_started_yet() -> None:
    members = etcdctl.parse_member_list(MEMBER_LIST)
    assert [(m.name, m.member_id) for m in members] == [("cp-1", 10276657743932975437), ("", 42)]


def test_snapshot_status_and_a_deprecation_line_before_it() -> None:
    text = 'Deprecated: Use `etcdutl snapshot status` instead.\n\n{"hash":1,"revision":6,' \
           '"totalKey":9,"totalSize":20480}\n'
    assert etcdctl.parse_snapshot_status(text) == etcdctl.SnapshotStatus(1, 6, 9)


@pytest.mark.parametrize("text", ["", "Error: unhealthy cluster", '{"revision": 3}', "[1]"])
def test_answers_that_are_not_etcdctls_are_refused(text: str) -> None:
    with pytest.raises(etcdctl.EtcdctlError):
        etcdctl.parse_snapshot_status(text)


def test_failure_reason_names_a_lost_quorum() -> None:
    why = etcdctl.failure_reason(
        '{"level":"warn","error":"rpc error: code = DeadlineExceeded desc = context deadline '
        'exceeded"}\nhttps://127.0.0.1:2379 is unhealthy: failed to commit proposal: context '
        "deadline exceeded\nError: unhealthy cluster\n"
    )
    assert "quorum lost" in why and why.endswith("Error: unhealthy cluster")


def test_the_client_uses_kubeadms_healthcheck_certificate() -> None:
    argv = etcdctl.snapshot_save_argv("/var/lib/etcd/x.db")
    assert "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt" in argv
    assert argv[-3:] == ["snapshot", "save", "/var/lib/etcd/x.db"]


def test_names_sort_by_time_and_prune_keeps_only_this_clusters_newest(tmp_path: Path) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert snapshot.snapshot_name("prod", when) == "prod-20260102T030405Z.db"
    names = ["prod-20240101T000000Z.db", "prod-20250101T000000Z.db", "prod-20260101T000000Z.db",
             "prod-eu-20200101T000000Z.db", "prod-20230101T000000Z.db.part", "prod.txt"]
    for name in names:
        (tmp_path / name).write_text("x")
    pruned = snapshot.prune(tmp_path, "prod", 2, tmp_path / "prod-20260101T000000Z.db")
    deleted = pruned.deleted
    assert [p.name for p in deleted] == ["prod-20240101T000000Z.db"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(names) - {deleted[0].name})
    assert pruned.dated_later == ()


def test_the_snapshot_just_taken_is_never_pruned_by_a_name_dated_later(tmp_path: Path) -> None:
    """``prod-20991231T000000Z.db`` sorts after any snapshot taken today: with ``--keep 1`` it
    used to push out the file just written, which the report and the metrics then named."""
    new = tmp_path / "prod-20261207T030000Z.db"
    names = ["prod-20991231T000000Z.db", "prod-20250101T000000Z.db", new.name,
             "prod-20261399T000000Z.db"]  # not a time: not a name this tool wrote
    for name in names:
        (tmp_path / name).write_text("x")
    pruned = snapshot.prune(tmp_path, "prod", 1, new)
    assert new.exists()
    assert sorted(p.name for p in pruned.deleted) == [
        "prod-20250101T000000Z.db", "prod-20991231T000000Z.db"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [new.name, "prod-20261399T000000Z.db"]

    for name in names[:2]:
        (tmp_path / name).write_text("x")
    pruned = snapshot.prune(tmp_path, "prod", 2, new)
    assert new.exists()
    assert [p.name for p in pruned.deleted] == ["prod-20250101T000000Z.db"]
    assert [p.name for p in pruned.dated_later] == ["prod-20991231T000000Z.db"]


def test_a_short_or_different_file_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    for size, digest, why in [
        (len(SNAPSHOT) + 1, hashlib.sha256(SNAPSHOT).hexdigest(), "cut short"),
        (len(SNAPSHOT), "0" * 64, "SHA-256"),
    ]:
        incoming = snapshot.IncomingSnapshot(tmp_path, "c-20260101T000000Z.db")
        incoming.write(SNAPSHOT)
        with pytest.raises(snapshot.SnapshotError, match=why):
            incoming.check(size, digest)
        incoming.discard()
        assert list(tmp_path.iterdir()) == []


def test_a_checked_file_is_renamed_and_private(tmp_path: Path) -> None:
    incoming = snapshot.IncomingSnapshot(tmp_path / "new", "c-20260101T000000Z.db")
    incoming.write(SNAPSHOT[:100])
    incoming.write(SNAPSHOT[100:])
    incoming.check(len(SNAPSHOT), hashlib.sha256(SNAPSHOT).hexdigest())
    final = incoming.keep()
    assert final.read_bytes() == SNAPSHOT and final.stat().st_mode & 0o777 == 0o600
    with pytest.raises(snapshot.SnapshotError, match="already exists"):
        snapshot.IncomingSnapshot(tmp_path / "new", "c-20260101T000000Z.db")


@pytest.mark.skipif(shutil.which("etcdctl") is None, reason="Debian's etcd-client not installed")
def test_debians_etcdctl_reads_the_fleets_snapshot_and_refuses_garbage(tmp_path: Path) -> None:
    binary = shutil.which("etcdctl")
    assert binary is not None
    good = tmp_path / "good.db"
    good.write_bytes(SNAPSHOT)
    status = asyncio.run(snapshot.verify_local(binary, good))
    assert status.revision == SNAPSHOT_STATUS["revision"]
    assert status.total_keys == SNAPSHOT_STATUS["totalKey"]
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\0" * 4096)
    with pytest.raises(snapshot.SnapshotError):
        asyncio.run(snapshot.verify_local(binary, bad))


def test_a_part_file_or_link_already_there_is_refused_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "c-20260101T000000Z.db.part").symlink_to(victim)
    with pytest.raises(snapshot.SnapshotError, match=r"already exists .* remove it and run again"):
        snapshot.IncomingSnapshot(tmp_path, "c-20260101T000000Z.db")
    assert victim.read_text() == "keep me"
