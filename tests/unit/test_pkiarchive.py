"""The PKI archive's name and layout (docs/snapshots.md), which a restore relies on."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from k8slk_ops.base import localfile
from k8slk_ops.cluster import pkiarchive

TAKEN = datetime(2026, 12, 7, 3, 40, 5, tzinfo=UTC)
FILES = {m: f"-----BEGIN {m}-----\n".encode() for m in pkiarchive.MEMBERS}


def test_the_archive_sits_beside_its_snapshot() -> None:
    db = Path("/s/prod-20261207T034005Z.db")
    assert pkiarchive.archive_path(db) == Path("/s/prod-20261207T034005Z.pki.tar")


def test_layout_members_in_order_root_owned_keys_0600() -> None:
    with tarfile.open(fileobj=io.BytesIO(pkiarchive.build(FILES, TAKEN))) as tar:
        assert tar.getnames() == list(pkiarchive.MEMBERS)
        for m in tar.getmembers():
            assert m.isreg() and (m.uid, m.gid, m.uname, m.gname) == (0, 0, "root", "root")
            assert m.mode == (0o600 if m.name.endswith(".key") else 0o644)
            assert m.mtime == int(TAKEN.timestamp())
            extracted = tar.extractfile(m)
            assert extracted is not None and extracted.read() == FILES[m.name]


def test_write_is_0600_and_never_through_a_link(tmp_path: Path) -> None:
    db = tmp_path / "prod-20261207T034005Z.db"
    archive = pkiarchive.write(db, FILES, TAKEN)
    assert archive.path == tmp_path / "prod-20261207T034005Z.pki.tar"
    assert archive.path.stat().st_mode & 0o777 == 0o600
    assert archive.size == archive.path.stat().st_size
    assert "BEGIN" not in str(archive.to_report())  # names and a hash only
    other = tmp_path / "victim"
    other.write_text("keep")
    archive.path.unlink()
    archive.path.symlink_to(other)
    with pytest.raises(localfile.UnsafeTarget):
        pkiarchive.write(db, FILES, TAKEN)
    assert other.read_text() == "keep"
