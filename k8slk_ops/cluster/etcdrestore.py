"""Restoring etcd from a snapshot: the file's checks, the members, the command lines.

Pure but for :func:`verify_file` (reads the operator's file): argv in, parsed values out.
See docs/etcd-restore.md for why every control plane is restored from the same file with one
``--initial-cluster`` rather than one restored and the others joined again.

On the node, everything of a restore lives in ``RESTORE_DIR`` (the node's persistent disk, 0700):
the uploaded ``snapshot.db``, the ``marker`` (``<sha256> uploaded|restored``) that makes a run
cut short resumable, and ``staging/`` where the restore writes before it is renamed into place.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml

from k8slk_ops.cluster import etcdctl

# Seen from the SSH shell: the node's persistent /var/lib (kubeadm's /var/lib/etcd is in it).
RESTORE_DIR = "/var/node/var/lib/k8slk-ops-restore"
SNAPSHOT = f"{RESTORE_DIR}/snapshot.db"
MARKER = f"{RESTORE_DIR}/marker"
STAGING = f"{RESTORE_DIR}/staging"
# Where the one-off container sees RESTORE_DIR.
CONTAINER_DIR = "/restore"
# The restore's static pod manifests, parked apart from `certs renew`'s: a later `certs renew`
# must never start an etcd whose data is half restored.
PARKED = "/var/node/etc/kubernetes/manifests.k8slk-ops-etcd-restore"
# kubeadm's data directory for the stacked etcd; the only one this tool knows the host path of.
KUBEADM_DATA_DIR = "/var/lib/etcd"
CTR_NAMESPACE = "k8s.io"  # where the kubelet's images (the etcd image among them) are
_STAMP = "%Y%m%dT%H%M%SZ"

Stage = Literal["uploaded", "restored"]


class RestoreRefused(Exception):
    """The snapshot or a node is not fit for a restore; nothing was touched. Says what to do."""


def sidecar(path: Path) -> Path:
    """Where ``etcd snapshot`` records the SHA-256 of a snapshot (``sha256sum`` format)."""
    return path.with_name(path.name + ".sha256")


def sidecar_text(sha256: str, name: str) -> str:
    return f"{sha256}  {name}\n"


@dataclass(frozen=True)
class SnapshotFile:
    """A snapshot on the operator's side that passed the checks."""

    path: Path
    size: int
    sha256: str
    recorded: bool  # its SHA-256 matched the one `etcd snapshot` wrote beside it
    data: bytes  # read once, hashed and uploaded from the same bytes


def verify_file(path: Path, skip_hash_check: bool) -> SnapshotFile:
    """The file, hashed and compared with the SHA-256 recorded beside it. A file without a
    record (copied out of a data directory, say) is refused unless ``skip_hash_check``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RestoreRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    sha256 = hashlib.sha256(data).hexdigest()
    record = sidecar(path)
    try:
        recorded = record.read_text().split()
    except FileNotFoundError:
        if not skip_hash_check:
            raise RestoreRefused(
                f"{path} has no recorded SHA-256 ({record} is missing), so it cannot be told "
                "from a truncated or foreign file; restore a snapshot taken by `k8slk-ops etcd "
                "snapshot`, or pass --skip-hash-check if you trust this file"
            ) from None
        return SnapshotFile(path, len(data), sha256, False, data)
    except OSError as exc:
        raise RestoreRefused(f"cannot read {record}: {exc.strerror or exc}") from None
    if not recorded or recorded[0].lower() != sha256:
        want = recorded[0] if recorded else "(empty)"
        raise RestoreRefused(
            f"{path} is not the snapshot that was taken: its SHA-256 is {sha256}, {record} "
            f"says {want} (truncated or replaced); restore another snapshot"
        )
    return SnapshotFile(path, len(data), sha256, True, data)


def check_status(status: etcdctl.SnapshotStatus) -> etcdctl.SnapshotStatus:
    """A snapshot worth restoring has a revision and keys."""
    if status.revision <= 0 or status.total_keys <= 0:
        raise RestoreRefused(
            f"the snapshot is empty (revision {status.revision}, {status.total_keys} keys); "
            "restore another snapshot"
        )
    return status


@dataclass(frozen=True)
class EtcdManifest:
    """What the restore needs from a control plane's etcd static pod manifest."""

    name: str  # --name: the member's name, which the restored data must carry
    peer_url: str  # --initial-advertise-peer-urls
    data_dir: str  # --data-dir, as the container sees it
    image: str  # the etcd image the kubelet runs, with its binaries


def parse_manifest(text: str) -> EtcdManifest:
    """The etcd pod's container: its image and flags (``--flag=value``, as kubeadm writes)."""
    try:
        doc = yaml.safe_load(text) or {}
        container = doc["spec"]["containers"][0]
        command = [str(a) for a in (container.get("command") or [])]
        image = str(container["image"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError, AttributeError):
        raise RestoreRefused("the etcd manifest is not a static pod with a container") from None
    flags = dict(a[2:].split("=", 1) for a in command if a.startswith("--") and "=" in a)
    missing = [f for f in ("name", "initial-advertise-peer-urls", "data-dir") if f not in flags]
    if missing:
        raise RestoreRefused(f"the etcd manifest has no {', '.join('--' + m for m in missing)}")
    peer = flags["initial-advertise-peer-urls"].split(",")[0]
    return EtcdManifest(flags["name"], peer, flags["data-dir"], image)


def image_version(image: str) -> tuple[int, int] | None:
    """etcd's minor version from the image tag (``registry.k8s.io/etcd:3.5.15-0``)."""
    m = re.search(r":v?(\d+)\.(\d+)[^/]*\Z", image)
    return (int(m[1]), int(m[2])) if m else None


def offline_tool(image: str) -> str:
    """The binary that reads and restores snapshots: ``etcdutl`` from etcd 3.5 (``etcdctl
    snapshot restore`` is deprecated there and gone in 3.6), ``etcdctl`` before (3.4 has no
    etcdutl). An image whose tag says no version is taken for an older one."""
    version = image_version(image)
    return "etcdutl" if version is not None and version >= (3, 5) else "etcdctl"


def initial_cluster(members: list[EtcdManifest]) -> str:
    """``name=peerURL,...``, in name order: the same string on every node."""
    return ",".join(f"{m.name}={m.peer_url}" for m in sorted(members, key=lambda m: m.name))


def cluster_token(sha256: str) -> str:
    """A new cluster token, the same for every node and every run of this snapshot, so that a
    run that resumes restores members of the same cluster as the nodes restored before."""
    return f"k8slk-restore-{sha256[:16]}"


def restore_argv(
    image: str, member: EtcdManifest, members: list[EtcdManifest], sha256: str,
    skip_hash_check: bool,
) -> list[str]:
    """The restore as the one-off container runs it, into the staging directory."""
    argv = [
        offline_tool(image), "snapshot", "restore", f"{CONTAINER_DIR}/snapshot.db",
        f"--name={member.name}", f"--initial-cluster={initial_cluster(members)}",
        f"--initial-cluster-token={cluster_token(sha256)}",
        f"--initial-advertise-peer-urls={member.peer_url}",
        f"--data-dir={CONTAINER_DIR}/staging",
    ]
    if skip_hash_check:
        argv.append("--skip-hash-check")
    return argv


def status_argv(image: str) -> list[str]:
    return [offline_tool(image), "snapshot", "status", f"{CONTAINER_DIR}/snapshot.db", "-w", "json"]


def ctr_run_argv(image: str, container_id: str, argv: list[str], *, mount: str = RESTORE_DIR,
                 log_file: str | None = None) -> list[str]:
    """A one-off container of the etcd image with the restore directory (or ``mount``)
    bind-mounted at ``CONTAINER_DIR``: the only place the node has etcd's binaries while the
    etcd pod is stopped. With ``log_file`` it runs detached, its output to that file (ctr
    refuses ``--rm`` with ``-d``: the caller deletes it)."""
    how = ["--rm"] if log_file is None else ["-d", "--log-uri", f"file://{log_file}"]
    return [
        "ctr", "--namespace", CTR_NAMESPACE, "run", *how,
        "--mount", f"type=bind,src={mount},dst={CONTAINER_DIR},options=rbind:rw",
        image, container_id, *argv,
    ]


def parse_marker(text: str) -> tuple[str, Stage] | None:
    words = text.split()
    if len(words) == 2 and words[1] in ("uploaded", "restored"):
        return words[0], "uploaded" if words[1] == "uploaded" else "restored"
    return None


def marker_text(sha256: str, stage: Stage) -> str:
    return f"{sha256} {stage}\n"


def kept_name(data_dir: str, when: datetime) -> str:
    """Where the data directory the restore replaced is kept."""
    return f"{data_dir}.before-restore-{when.strftime(_STAMP)}"


@dataclass
class RestoreRun:
    """What the restore's stages hand each other: each control plane's etcd manifest (read
    before anything stops), the old data directories kept, the snapshot's status."""

    manifests: dict[str, EtcdManifest] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    status: etcdctl.SnapshotStatus | None = None
    result: RestoreResult | None = None


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did, for the report."""

    snapshot: str
    sha256: str
    revision: int
    keys: int
    members: tuple[str, ...]
    kept: tuple[str, ...]  # node: old data directory

    def to_report(self) -> dict[str, object]:
        return {"snapshot": self.snapshot, "sha256": self.sha256, "revision": self.revision,
                "keys": self.keys, "members": list(self.members), "kept": list(self.kept)}
