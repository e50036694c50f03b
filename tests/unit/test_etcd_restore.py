"""etcd restore's pure parts: the file's checks, the etcd manifest, the command lines, the
marker; and the command's refusals before anything connects."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from k8slk_ops.cluster import etcdctl, etcdrestore
from k8slk_ops.cluster.etcdrestore import EtcdManifest, RestoreRefused
from k8slk_ops.cluster.snapshot import IncomingSnapshot
from tests.unit.test_refusals import (  # noqa: F401 - the fixtures, shared
    Ran,
    assert_refused_in_metrics,
    inventory,
    invoke,
    ran,
)

DATA = b"etcd snapshot bytes" * 100


def _taken(tmp_path: Path) -> Path:
    """A snapshot kept the way `etcd snapshot` keeps one (with its SHA-256 beside it)."""
    incoming = IncomingSnapshot(tmp_path, "prod-20261207T000000Z.db")
    incoming.write(DATA)
    incoming.check(len(DATA), hashlib.sha256(DATA).hexdigest())
    return incoming.keep()


def test_a_snapshot_taken_by_the_tool_passes(tmp_path: Path) -> None:
    path = _taken(tmp_path)
    checked = etcdrestore.verify_file(path, skip_hash_check=False)
    assert checked.sha256 == hashlib.sha256(DATA).hexdigest()
    assert checked.recorded and checked.size == len(DATA) and checked.data == DATA


def test_a_truncated_snapshot_is_refused(tmp_path: Path) -> None:
    path = _taken(tmp_path)
    path.write_bytes(DATA[:100])
    with pytest.raises(RestoreRefused, match="truncated or replaced"):
        etcdrestore.verify_file(path, skip_hash_check=False)
    # --skip-hash-check does not excuse a file that contradicts its own record.
    with pytest.raises(RestoreRefused, match="truncated or replaced"):
        etcdrestore.verify_file(path, skip_hash_check=True)


def test_a_file_without_a_record_needs_skip_hash_check(tmp_path: Path) -> None:
    path = tmp_path / "copied.db"
    path.write_bytes(DATA)
    with pytest.raises(RestoreRefused, match="--skip-hash-check"):
        etcdrestore.verify_file(path, skip_hash_check=False)
    assert not etcdrestore.verify_file(path, skip_hash_check=True).recorded


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RestoreRefused, match="cannot read"):
        etcdrestore.verify_file(tmp_path / "nope.db", skip_hash_check=True)


def test_an_empty_snapshot_is_refused() -> None:
    with pytest.raises(RestoreRefused, match="empty"):
        etcdrestore.check_status(etcdctl.SnapshotStatus(1, 0, 0))


def _manifest(name: str, address: str, image: str = "registry.k8s.io/etcd:3.5.15-0") -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{
        "name": "etcd", "image": image,
        "command": ["etcd", f"--name={name}", "--data-dir=/var/lib/etcd",
                    f"--initial-advertise-peer-urls=https://{address}:2380",
                    f"--initial-cluster={name}=https://{address}:2380"]}]}})


def test_the_manifest_gives_name_peer_url_data_dir_and_image() -> None:
    m = etcdrestore.parse_manifest(_manifest("cp-1", "10.0.0.1"))
    assert m == EtcdManifest("cp-1", "https://10.0.0.1:2380", "/var/lib/etcd",
                             "registry.k8s.io/etcd:3.5.15-0")


def test_a_manifest_without_the_flags_is_refused() -> None:
    text = yaml.safe_dump({"spec": {"containers": [{"image": "x", "command": ["etcd"]}]}})
    with pytest.raises(RestoreRefused, match="--name"):
        etcdrestore.parse_manifest(text)
    with pytest.raises(RestoreRefused, match="static pod"):
        etcdrestore.parse_manifest("kind: Pod\n")


@pytest.mark.parametrize(("image", "tool"), [
    ("registry.k8s.io/etcd:3.5.15-0", "etcdutl"),
    ("registry.k8s.io/etcd:3.6.0-0", "etcdutl"),
    ("registry.k8s.io/etcd:3.4.23-0", "etcdctl"),
    ("k8s.gcr.io/etcd:3.3.10", "etcdctl"),
    ("my-registry:5000/etcd", "etcdctl"),  # the port is not a tag
])
def test_the_offline_tool_follows_the_images_etcd_version(image: str, tool: str) -> None:
    assert etcdrestore.offline_tool(image) == tool


def test_every_node_restores_with_one_initial_cluster_and_token() -> None:
    members = [etcdrestore.parse_manifest(_manifest(n, a)) for n, a in
               (("cp-2", "10.0.0.2"), ("cp-1", "10.0.0.1"))]
    sha = "ab" * 32
    image = "registry.k8s.io/etcd:3.4.23-0"
    argvs = [etcdrestore.restore_argv(image, m, members, sha, False) for m in members]
    cluster = "--initial-cluster=cp-1=https://10.0.0.1:2380,cp-2=https://10.0.0.2:2380"
    for argv, m in zip(argvs, members, strict=True):
        assert argv[:4] == ["etcdctl", "snapshot", "restore", "/restore/snapshot.db"]
        assert cluster in argv
        assert f"--name={m.name}" in argv
        assert f"--initial-advertise-peer-urls={m.peer_url}" in argv
        assert "--initial-cluster-token=k8slk-restore-abababababababab" in argv
        assert "--data-dir=/restore/staging" in argv
        assert "--skip-hash-check" not in argv
    assert "--skip-hash-check" in etcdrestore.restore_argv(image, members[0], members, sha, True)


def test_the_one_off_container_mounts_only_the_restore_directory() -> None:
    argv = etcdrestore.ctr_run_argv("registry.k8s.io/etcd:3.4.23-0", "k8slk-x", ["etcdctl"])
    assert argv == [
        "ctr", "--namespace", "k8s.io", "run", "--rm", "--mount",
        "type=bind,src=/var/node/var/lib/k8slk-ops-restore,dst=/restore,options=rbind:rw",
        "registry.k8s.io/etcd:3.4.23-0", "k8slk-x", "etcdctl",
    ]


def test_the_marker_round_trips() -> None:
    sha = "cd" * 32
    for stage in ("uploaded", "restored"):
        assert etcdrestore.parse_marker(etcdrestore.marker_text(sha, stage)) == (sha, stage)
    assert etcdrestore.parse_marker("") is None
    assert etcdrestore.parse_marker(f"{sha} started") is None


# -- the command's refusals: exit 2, nothing contacted, the metrics written ---------------------

REAL = Path(__file__).resolve().parents[1] / "fleet" / "data" / "etcd-snapshot.db"


def _kept_real(tmp_path: Path) -> Path:
    path = tmp_path / "lab-20261207T000000Z.db"
    path.write_bytes(REAL.read_bytes())
    etcdrestore.sidecar(path).write_text(
        etcdrestore.sidecar_text(hashlib.sha256(path.read_bytes()).hexdigest(), path.name))
    return path


def test_restore_refuses_a_truncated_snapshot_before_connecting(
    inventory: Path, tmp_path: Path, ran: Ran,  # noqa: F811 - the shared fixtures
) -> None:
    path = _kept_real(tmp_path)
    path.write_bytes(REAL.read_bytes()[:4096])
    prom = tmp_path / "m.prom"
    result = invoke("etcd", "restore", inventory, path, "--yes", "--metrics-file", prom)
    assert result.exit_code == 2, result.output
    assert "truncated or replaced" in result.stderr and "nothing was touched" in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, "etcd restore", "lab")


def test_restore_without_yes_and_without_a_terminal_is_refused(
    inventory: Path, tmp_path: Path, ran: Ran,  # noqa: F811 - the shared fixtures
) -> None:
    prom = tmp_path / "m.prom"
    result = invoke("etcd", "restore", inventory, _kept_real(tmp_path), "--metrics-file", prom)
    assert result.exit_code == 2, result.output
    assert ("etcd restore needs --yes when there is no terminal to confirm on; nothing was "
            "touched") in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, "etcd restore", "lab")


def test_restore_with_yes_runs_the_restore_playbook(
    inventory: Path, tmp_path: Path, ran: Ran,  # noqa: F811 - the shared fixtures
) -> None:
    result = invoke("etcd", "restore", inventory, _kept_real(tmp_path), "--yes")
    assert result.exit_code == 0, result.output
    assert ran.commands == ["etcd restore"]
