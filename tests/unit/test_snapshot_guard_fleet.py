"""A verified etcd snapshot before every disruption (``upgrade``, ``certs renew``) and the PKI
archive beside a snapshot (``etcd snapshot --pki``), in-process against the fleet, whose
control planes answer etcdctl in their etcd pod (tests/fleet/etcd.py) and hold kubeadm's CAs
and service-account keys under /etc/kubernetes/pki (tests/fleet/certs.py)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from k8slk_ops.cluster import pkiarchive, snapshot
from tests.fleet.etcd import SNAPSHOT
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import CliRun, K8slk
from tests.unit.test_certs_expired_fleet import EVERY_CERT
from tests.unit.test_upgrade_fleet import OLD, bumped, versions

PKI = "/var/node/etc/kubernetes/pki"


@pytest.fixture(autouse=True)
def node_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No local etcdctl: every snapshot is verified by etcdctl in the etcd pod."""
    monkeypatch.setattr(snapshot, "local_etcdctl", lambda: None)


@pytest.fixture
def cluster(fleet_factory: object, k8slk: K8slk) -> InProcessFleet:
    fleet = fleet_factory(2, 1)  # type: ignore[operator]
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    return fleet


def _default_dir(fleet: InProcessFleet) -> Path:
    return Path(fleet.inventory).parent / "snapshots"


def _files(directory: Path) -> list[str]:
    """The snapshots and archives in ``directory``; each snapshot's ``.sha256`` record (which
    ``etcd restore`` checks) is asserted beside it, then left out of the list."""
    if not directory.exists():
        return []
    names = sorted(p.name for p in directory.iterdir())
    for name in names:
        if name.endswith(".db"):
            assert f"{name}.sha256" in names, f"no SHA-256 record beside {name}"
    return [n for n in names if not n.endswith(".sha256")]


def _verified(run: CliRun, directory: Path) -> Path:
    """The run's snapshot: in ``directory``, named in the report, checked, 0600."""
    snap = run.report["data"]["snapshot"]
    path = Path(snap["path"])
    assert path.parent == directory and path.suffix == ".db"
    assert path.read_bytes() == SNAPSHOT
    assert snap["sha256"] == hashlib.sha256(SNAPSHOT).hexdigest()
    assert snap["verifiedBy"] == "etcdctl on cp-1" and snap["revision"] > 0
    assert path.stat().st_mode & 0o777 == 0o600
    assert any(m.startswith(f"snapshot written: {path} ") for m in run.report["messages"])
    assert _files(directory) == [path.name]  # no .part left
    return path


# -- certs renew -------------------------------------------------------------------------------


def test_certs_renew_takes_a_verified_snapshot_first_and_names_it(
    cluster: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    cluster.expire_certs("cp-1", ("apiserver",))
    prom = tmp_path / "renew.prom"
    run = k8slk("certs", "renew", cluster.inventory, "--yes", "--json", "--metrics-file", prom)
    assert run.code == 0, run.why()
    directory = _default_dir(cluster)
    path = _verified(run, directory)
    assert directory.stat().st_mode & 0o777 == 0o700  # made by the run, for our eyes only
    assert cluster.certificates("cp-1").renewals == ["apiserver"]
    # The snapshot phase ran before the first renewal.
    phases = [ln.split()[2] for ln in run.stderr.splitlines()
              if ln.split()[1:2] == ["cp-1"] and len(ln.split()) > 2]
    assert "snapshot" in phases and "renew" in phases
    assert phases.index("snapshot") < phases.index("renew")
    metrics = prom.read_text()
    assert "k8slk_ops_etcd_snapshot_size_bytes{" in metrics
    assert str(len(SNAPSHOT)) in metrics
    assert path.name.startswith("fleet-")


def test_certs_renew_snapshot_dir_and_no_snapshot(
    cluster: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    out = tmp_path / "elsewhere"
    run = k8slk("certs", "renew", cluster.inventory, "--yes", "--json", "--snapshot-dir", out)
    assert run.code == 0, run.why()
    _verified(run, out)
    skipped = k8slk("certs", "renew", cluster.inventory, "--yes", "--json", "--no-snapshot",
                    "--snapshot-dir", tmp_path / "none")
    assert skipped.code == 0, skipped.why()
    assert "snapshot" not in skipped.report["data"]
    assert not (tmp_path / "none").exists() and not _default_dir(cluster).exists()
    plan = k8slk("plan", "certs-renew", cluster.inventory, "--json")
    assert plan.code == 0, plan.why()
    assert "etcd-snapshot" in plan.planned_steps()


def test_a_failing_snapshot_stops_certs_renew_before_any_renewal(
    cluster: InProcessFleet, k8slk: K8slk
) -> None:
    cluster.expire_certs("cp-1", ("apiserver",))
    cluster.cut_snapshots()  # every transfer ends early
    run = k8slk("certs", "renew", cluster.inventory, "--yes", "--json")
    assert run.code == 1
    message = run.nodes["cp-1"]["message"]
    assert "no snapshot before the change: transfer cut short" in message
    assert "Nothing was changed" in message and "--no-snapshot" in message
    assert cluster.certificates("cp-1").renewals == []
    assert "snapshot" not in run.report["data"] and _files(_default_dir(cluster)) == []


def test_with_every_certificate_expired_renew_goes_on_without_a_snapshot_and_says_so(
    cluster: InProcessFleet, k8slk: K8slk
) -> None:
    """etcd refuses its expired healthcheck-client certificate and no API answers: the renewal
    is the fix, so it goes on without a snapshot, says why and what to take after; etcd
    answers again once it is done. With --no-snapshot nothing is tried."""
    cluster.expire_certs_now("cp-1", EVERY_CERT)
    run = k8slk("certs", "renew", cluster.inventory, "--yes", "--json")
    assert run.code == 0, run.why()
    assert "etcd refused the TLS handshake" in run.log
    assert "Take `k8slk-ops etcd snapshot` once it is done" in run.log
    assert sorted(cluster.certificates("cp-1").renewals) == sorted(EVERY_CERT)
    assert "snapshot" not in run.report["data"] and _files(_default_dir(cluster)) == []
    after = k8slk("etcd", "snapshot", cluster.inventory, "--json")  # etcd answers again
    assert after.code == 0, after.why()


def test_a_refused_snapshot_with_the_api_answering_still_stops_the_renewal(
    cluster: InProcessFleet, k8slk: K8slk
) -> None:
    """Only the outage itself (no API) goes on without a snapshot: etcd's client certificate
    expired alone while the API answers is refused as any failed snapshot is."""
    cluster.expire_certs_now("cp-1", ["etcd-healthcheck-client"])
    run = k8slk("certs", "renew", cluster.inventory, "--yes", "--json")
    assert run.code == 1
    message = run.nodes["cp-1"]["message"]
    assert "etcd refused the TLS handshake" in message
    assert "`certs renew --no-snapshot`, then `etcd snapshot`" in message
    assert cluster.certificates("cp-1").renewals == []


# -- upgrade -----------------------------------------------------------------------------------


def test_upgrade_takes_a_verified_snapshot_before_the_first_node_step(
    fleet_factory: object, k8slk: K8slk
) -> None:
    """The fleet does not roll a whole upgrade (the lab does): cp-1 without its persistent disk
    fails the first node step, after the snapshot; the snapshot is kept and named."""
    fleet = fleet_factory(2, 1, kubernetes_version=OLD)  # type: ignore[operator]
    inventory = bumped(fleet, k8slk)
    fleet.without_disk("cp-1")
    run = k8slk("upgrade", inventory, "--yes", "--json")
    assert run.code == 1
    assert run.nodes["cp-1"]["phase"] != "snapshot"  # it failed later, on the node
    _verified(run, inventory.parent / "snapshots")
    lines = [ln.split()[1:3] for ln in run.stderr.splitlines() if len(ln.split()) > 2]
    first_node_step = min(i for i, words in enumerate(lines)
                          if words[0] == "cp-1" and words[1] not in ("connect", "check",
                                                                     "snapshot"))
    assert lines.index(["cp-1", "snapshot"]) < first_node_step
    assert fleet.boots("cp-1") == 1 and versions(fleet)["cp-1"] == (OLD, False)


def test_upgrade_with_nothing_due_takes_no_snapshot(fleet_factory: object, k8slk: K8slk) -> None:
    fleet = fleet_factory(2, 1, kubernetes_version=OLD)  # type: ignore[operator]
    assert k8slk("bootstrap", fleet.inventory, "--json").code == 0
    run = k8slk("upgrade", fleet.inventory, "--yes", "--json")
    assert run.code == 0, run.why()
    assert "snapshot" not in run.report["data"] and not _default_dir(fleet).exists()


def test_a_failing_snapshot_stops_upgrade_before_any_node_changes(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(2, 1, kubernetes_version=OLD)  # type: ignore[operator]
    inventory = bumped(fleet, k8slk)
    fleet.cut_snapshots()
    run = k8slk("upgrade", inventory, "--yes", "--json")
    assert run.code == 1
    message = run.nodes["cp-1"]["message"]
    assert run.nodes["cp-1"]["phase"] == "snapshot"
    assert "transfer cut short" in message and "--no-snapshot" in message
    assert fleet.boots("cp-1") == 1 and fleet.boots("w-1") == 1
    assert versions(fleet) == {"cp-1": (OLD, False), "w-1": (OLD, False)}
    assert run.outcomes["w-1"] != "ok"  # never reached
    assert _files(inventory.parent / "snapshots") == []


def test_upgrade_no_snapshot_goes_on_without_one(fleet_factory: object, k8slk: K8slk) -> None:
    fleet = fleet_factory(2, 1, kubernetes_version=OLD)  # type: ignore[operator]
    inventory = bumped(fleet, k8slk)
    plan = k8slk("upgrade", inventory, "--dry-run", "--no-snapshot", "--json")
    assert plan.code == 0, plan.why()
    assert "etcd-snapshot" not in plan.planned_steps()
    assert "kubeadm-upgrade" in plan.planned_steps()
    fleet.without_disk("cp-1")  # the first node step fails: the roll went past the snapshot
    run = k8slk("upgrade", inventory, "--yes", "--no-snapshot", "--json")
    assert run.code == 1
    assert run.nodes["cp-1"]["phase"] != "snapshot"
    assert "snapshot" not in run.report["data"]
    assert not (inventory.parent / "snapshots").exists()


# -- etcd snapshot --pki -----------------------------------------------------------------------


def test_pki_writes_a_0600_tar_of_exactly_the_cas_and_sa_keys_and_no_secret_elsewhere(
    cluster: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    out = tmp_path / "snaps"
    run = k8slk("etcd", "snapshot", cluster.inventory, "-o", out, "--pki", "--json", "-v")
    assert run.code == 0, run.why()
    snap = run.report["data"]["snapshot"]
    db = Path(snap["path"])
    tar_path = out / db.name.replace(".db", ".pki.tar")
    assert _files(out) == sorted([db.name, tar_path.name])
    assert tar_path.stat().st_mode & 0o777 == 0o600
    data = tar_path.read_bytes()
    pki = snap["pki"]
    assert pki == {"path": str(tar_path), "sizeBytes": len(data),
                   "sha256": hashlib.sha256(data).hexdigest(),
                   "members": list(pkiarchive.MEMBERS)}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [
            "ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key",
            "etcd/ca.crt", "etcd/ca.key"]
        for m in members:
            assert m.isfile() and m.uid == 0 and m.gid == 0
            assert m.mode == (0o600 if m.name.endswith(".key") else 0o644)
            extracted = tar.extractfile(m)
            assert extracted is not None
            assert extracted.read() == cluster.file("cp-1", f"{PKI}/{m.name}")
    # The node holds leaf certificates and keys too; none is in the archive.
    assert cluster.file("cp-1", f"{PKI}/apiserver.key") is not None
    # No secret reaches the report, the terminal or the log: names and hashes only.
    said = json.dumps(run.report) + run.stdout + run.stderr + run.log
    assert run.log  # the log was written (at debug level)
    for name in ("ca.key", "sa.key", "front-proxy-ca.key", "etcd/ca.key"):
        key = cluster.file("cp-1", f"{PKI}/{name}")
        assert key is not None
        body = key.decode().splitlines()[1]  # a line of the key's base64
        assert body not in said
    assert f"PKI archive written: {tar_path} (sha256 {pki['sha256']};" in run.stderr


def test_keep_deletes_an_old_snapshots_archive_with_it(
    cluster: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    out = tmp_path / "snaps"
    out.mkdir()
    (out / "fleet-20200101T000000Z.db").write_bytes(b"old")
    (out / "fleet-20200101T000000Z.pki.tar").write_bytes(b"old keys")
    run = k8slk("etcd", "snapshot", cluster.inventory, "-o", out, "--pki", "--keep", "1",
                "--json")
    assert run.code == 0, run.why()
    db = Path(run.report["data"]["snapshot"]["path"])
    assert _files(out) == sorted([db.name, db.name.replace(".db", ".pki.tar")])


def test_pki_with_a_missing_key_keeps_the_snapshot_and_says_why(
    cluster: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    cluster.write_file("cp-1", f"{PKI}/sa.key", b"", 0o600)  # emptied: not a key kubeadm wrote
    out = tmp_path / "snaps"
    run = k8slk("etcd", "snapshot", cluster.inventory, "-o", out, "--pki", "--json")
    assert run.code == 1
    db = Path(run.report["data"]["snapshot"]["path"])
    assert _files(out) == [db.name]  # the snapshot stays, named; no archive
    message = run.nodes["cp-1"]["message"]
    assert f"snapshot {db} kept, but no PKI archive written" in message
    assert f"{PKI}/sa.key on cp-1 is 0 bytes" in message and "without --pki" in message
