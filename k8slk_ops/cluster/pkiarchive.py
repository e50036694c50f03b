"""The cluster's keys beside an etcd snapshot: ``<cluster>-<UTC time>.pki.tar``.

A snapshot alone cannot rebuild a cluster onto blank machines: without the cluster's CAs the
workers' kubelets no longer trust the new API server, and without the service-account key pair
every ServiceAccount token in the snapshot is rejected. So ``etcd snapshot --pki`` reads exactly
the files kubeadm would need to make everything else again, from the primary control plane's
``/etc/kubernetes/pki`` (``paths.PKI_DIR`` from the SSH shell), and nothing more: no leaf
certificate and no kubeconfig, which ``kubeadm init`` makes afresh from these.

The layout (docs/snapshots.md) is what a restore relies on: a POSIX ustar archive whose members
are the paths relative to ``/etc/kubernetes/pki``, in the order of :data:`MEMBERS`, owned by
root (uid/gid 0), keys 0600 and certificates/public key 0644, dated when the snapshot was taken.
The file is 0600 (it holds private keys) and is written through ``localfile.replace``; only its
name, SHA-256 and member names ever reach the report or a log.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from k8slk_ops.base import localfile
from k8slk_ops.node import paths
from k8slk_ops.node.linuxkit import LinuxKitNode

SUFFIX = ".pki.tar"
# Relative to /etc/kubernetes/pki, in archive order: the three CAs and the service-account keys.
MEMBERS = (
    "ca.crt", "ca.key",
    "sa.key", "sa.pub",
    "front-proxy-ca.crt", "front-proxy-ca.key",
    "etcd/ca.crt", "etcd/ca.key",
)
# The largest file read; a CA key or certificate is a few kilobytes.
_MAX_BYTES = 64 * 1024


class PkiError(Exception):
    """A file of the archive could not be read; the message says which and what to do."""


@dataclass(frozen=True)
class PkiArchive:
    """The archive written beside a snapshot: where, its SHA-256 and what it holds (names)."""

    path: Path
    size: int
    sha256: str
    members: tuple[str, ...]

    def to_report(self) -> dict[str, Any]:
        return {"path": str(self.path), "sizeBytes": self.size, "sha256": self.sha256,
                "members": list(self.members)}


def archive_path(snapshot: Path) -> Path:
    """``DIR/<cluster>-<UTC time>.pki.tar`` beside ``DIR/<cluster>-<UTC time>.db``."""
    return snapshot.with_name(snapshot.name.removesuffix(".db") + SUFFIX)


def _mode(member: str) -> int:
    return 0o600 if member.endswith(".key") else 0o644


def build(files: dict[str, bytes], taken: datetime) -> bytes:
    """The archive's bytes: ``files`` (member -> content) in :data:`MEMBERS` order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member in MEMBERS:
            data = files[member]
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = _mode(member)
            info.mtime = int(taken.timestamp())
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def read_from(node: LinuxKitNode) -> dict[str, bytes]:
    """The :data:`MEMBERS` as the node's SSH shell reads them (their bytes never logged)."""
    files: dict[str, bytes] = {}
    for member in MEMBERS:
        path = f"{paths.PKI_DIR}/{member}"
        data = await node.read_file(path)
        if data is None:
            raise PkiError(
                f"{path} is missing on {node.name}: this control plane does not hold the "
                "cluster's keys (was it set up by kubeadm?); take the archive from another "
                "control plane, or run without --pki"
            )
        if not data or len(data) > _MAX_BYTES:
            raise PkiError(f"{path} on {node.name} is {len(data)} bytes: not a key or "
                           "certificate kubeadm wrote; check the file, or run without --pki")
        files[member] = data
    return files


def write(snapshot: Path, files: dict[str, bytes], taken: datetime) -> PkiArchive:
    """Write the archive beside ``snapshot`` (0600, the one safe writer)."""
    data = build(files, taken)
    target = localfile.replace(archive_path(snapshot), data, 0o600, what="PKI archive")
    return PkiArchive(target, len(data), hashlib.sha256(data).hexdigest(), MEMBERS)


@dataclass(frozen=True)
class PkiFiles:
    """An archive read back for a restore onto blank machines: where it is, its SHA-256, and
    the files (member -> bytes; kept out of ``repr`` so that no log or traceback shows a key)."""

    path: Path
    sha256: str
    files: dict[str, bytes] = field(repr=False)

    def mode(self, member: str) -> int:
        return _mode(member)


def load(path: Path) -> PkiFiles:
    """The archive ``etcd snapshot --pki`` wrote, checked: exactly the :data:`MEMBERS`, each a
    regular file of a sane size, nothing else (no link, no path outside). PkiError says what
    is wrong and what to do."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror or exc}") from None
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar.getmembers():
                if info.name not in MEMBERS or not info.isfile() or info.name in files:
                    raise PkiError(
                        f"{path} holds {info.name!r}, which is not one of the files `etcd "
                        "snapshot --pki` writes: give the .pki.tar written beside the snapshot")
                if not 0 < info.size <= _MAX_BYTES:
                    raise PkiError(f"{path}: {info.name} is {info.size} bytes, not a key or "
                                   "certificate kubeadm wrote")
                handle = tar.extractfile(info)
                if handle is None:
                    raise PkiError(f"{path}: {info.name} cannot be read")
                files[info.name] = handle.read()
    except tarfile.TarError as exc:
        raise PkiError(f"{path} is not a tar archive ({exc}): give the .pki.tar written "
                       "beside the snapshot by `etcd snapshot --pki`") from None
    missing = [m for m in MEMBERS if m not in files]
    if missing:
        raise PkiError(f"{path} lacks {', '.join(missing)}: give the .pki.tar written beside "
                       "the snapshot by `etcd snapshot --pki`")
    return PkiFiles(path, hashlib.sha256(data).hexdigest(), files)
