"""An etcd snapshot on the operator's side: the file being received, its checks, the old ones.

A snapshot arrives in ``DIR/<cluster>-<UTC time>.db.part`` (created exclusively, 0600: it holds
every secret of the cluster), hashed as it is written. It becomes ``.db`` only once its size and
SHA-256 match the node's copy and etcdctl has read it; anything else deletes the part file, so
a directory never holds a ``.db`` that was cut short or failed a check. Keeping the newest N
looks only at the names this tool writes for the cluster (``<cluster>-YYYYmmddTHHMMSSZ.db``, a
real time), never at other files, orders them by that time, and never deletes the one just taken.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from k8slk_ops.cluster import etcdctl
from k8slk_ops.cluster.pkiarchive import PkiArchive

PART_SUFFIX = ".part"
_STAMP = "%Y%m%dT%H%M%SZ"


class SnapshotError(Exception):
    """A snapshot failed a check; the part file is gone when this is raised."""


def snapshot_name(cluster: str, when: datetime) -> str:
    return f"{cluster}-{when.astimezone(UTC).strftime(_STAMP)}.db"


def _own_pattern(cluster: str) -> re.Pattern[str]:
    return re.compile(rf"\A{re.escape(cluster)}-(?P<stamp>\d{{8}}T\d{{6}}Z)\.db\Z")


def _taken_at(pattern: re.Pattern[str], name: str) -> datetime | None:
    """The time in a name this tool wrote for the cluster, None for any other name."""
    m = pattern.fullmatch(name)
    if m is None:
        return None
    try:
        return datetime.strptime(m["stamp"], _STAMP).replace(tzinfo=UTC)
    except ValueError:  # 20261399T...: the shape of ours, not a name we wrote
        return None


def cluster_snapshots(directory: Path, cluster: str) -> list[Path]:
    """This cluster's snapshots in ``directory`` (names this tool wrote), oldest first by the
    time in the name."""
    pattern = _own_pattern(cluster)
    if not directory.is_dir():
        return []
    dated = [(when, p) for p in directory.iterdir()
             if (when := _taken_at(pattern, p.name)) is not None and p.is_file()]
    return [p for _, p in sorted(dated)]


@dataclass(frozen=True)
class Pruned:
    """What keeping the newest N did: the files deleted, and the files kept that are dated
    after the snapshot just taken (a clock that was ahead, or names someone else wrote)."""

    deleted: tuple[Path, ...] = ()
    dated_later: tuple[Path, ...] = ()


def prune(directory: Path, cluster: str, keep: int, taken: Path) -> Pruned:
    """Keep ``taken`` (the snapshot just written) and the newest ``keep - 1`` others of this
    cluster; delete the rest.

    ``taken`` is never deleted, whatever the other names say: a file dated in the future
    (``prod-20991231T000000Z.db``) would otherwise sort after it and push it out, leaving the
    report and the metrics pointing at a file that is gone."""
    others = [p for p in cluster_snapshots(directory, cluster) if p.name != taken.name]
    doomed = others[: max(0, len(others) - max(0, keep - 1))]
    for path in doomed:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)
    pattern = _own_pattern(cluster)
    new = _taken_at(pattern, taken.name)
    later = tuple(p for p in others if p not in doomed and new is not None
                  and (when := _taken_at(pattern, p.name)) is not None and when > new)
    return Pruned(tuple(doomed), later)


@dataclass(frozen=True)
class SnapshotResult:
    """A snapshot written, checked and kept."""

    path: Path
    node: str
    size: int
    sha256: str
    status: etcdctl.SnapshotStatus
    taken: datetime
    verified_by: str  # "local etcdctl" or "etcdctl on NODE"
    pruned: tuple[Path, ...] = ()
    dated_later: tuple[Path, ...] = ()  # kept, though their names say after this one
    pki: PkiArchive | None = None  # etcd snapshot --pki: the CAs and SA keys beside it

    def to_report(self) -> dict[str, Any]:
        pki = {} if self.pki is None else {"pki": self.pki.to_report()}
        return {
            "path": str(self.path),
            "node": self.node,
            "sizeBytes": self.size,
            "sha256": self.sha256,
            "revision": self.status.revision,
            "keys": self.status.total_keys,
            "hash": self.status.hash,
            "timestampSeconds": self.taken.timestamp(),
            "verifiedBy": self.verified_by,
            "pruned": [str(p) for p in self.pruned],
            "datedLater": [str(p) for p in self.dated_later],
            **pki,
        }


class IncomingSnapshot:
    """The ``.part`` file a snapshot streams into; hashed while written."""

    def __init__(self, directory: Path, name: str) -> None:
        self.final = directory / name
        self.part = directory / (name + PART_SUFFIX)
        self.size = 0
        self._hash = hashlib.sha256()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # new: for our eyes only
        if self.final.exists():
            raise SnapshotError(f"{self.final} already exists")
        try:  # exclusive: never through a link planted at the name, never someone's file
            fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise SnapshotError(
                f"{self.part} already exists (a run cut short, or not this tool's): remove it "
                "and run again"
            ) from None
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def check(self, size: int, sha256: str) -> None:
        """The file must be the node's copy, byte for byte."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self.size != size:
            raise SnapshotError(
                f"transfer cut short: received {self.size} of {size} bytes"
            )
        if self.sha256 != sha256:
            raise SnapshotError(f"SHA-256 differs from the node's copy ({self.sha256} != {sha256})")

    def keep(self) -> Path:
        """Rename the checked part file to its final name, its SHA-256 recorded beside it
        (``NAME.db.sha256``, sha256sum's format) for ``etcd restore`` to check it against."""
        record = self.final.with_name(self.final.name + ".sha256")
        record.write_text(f"{self.sha256}  {self.final.name}\n")
        os.replace(self.part, self.final)
        return self.final

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.part.unlink(missing_ok=True)


def local_etcdctl() -> str | None:
    """The operator's own etcdctl (Debian's etcd-client), if installed."""
    return shutil.which("etcdctl")


async def verify_local(binary: str, path: Path) -> etcdctl.SnapshotStatus:
    """``etcdctl snapshot status`` run here on the received file."""
    env = dict(os.environ, ETCDCTL_API="3")
    proc = await asyncio.create_subprocess_exec(
        binary, *etcdctl.snapshot_status_argv(str(path))[1:],
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise SnapshotError(
            "etcdctl snapshot status refused the file: "
            + etcdctl.failure_reason(err.decode(errors="replace"))
        )
    return check_status(etcdctl.parse_snapshot_status(out.decode(errors="replace")))


def check_status(status: etcdctl.SnapshotStatus) -> etcdctl.SnapshotStatus:
    """A snapshot of a live cluster has a revision and keys."""
    if status.revision <= 0 or status.total_keys <= 0:
        raise SnapshotError(
            f"the snapshot is empty (revision {status.revision}, {status.total_keys} keys)"
        )
    return status
