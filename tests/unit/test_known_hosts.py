"""known_hosts matching without a network: plain, bracketed, wildcard, hashed and negated names."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from k8slk_ops.ssh.hostkeys import (
    KnownHostsIndex,
    lookup,
    parse_known_hosts,
    record_host_key,
)


def _hashed(name: str, salt: bytes = b"0123456789abcdefghij") -> str:
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


TEXT = f"""# comment
10.0.0.1 ssh-ed25519 AAAAplain1
[10.0.0.1]:2222 ssh-ed25519 AAAAport
node-a,10.0.0.2 ssh-ed25519 AAAAboth
10.0.0.* ssh-rsa AAAAwild
{_hashed("10.0.0.9")} ssh-ed25519 AAAAhashed
10.0.*,!10.0.0.7 ecdsa-sha2-nistp256 AAAAneg
@revoked 10.0.0.1 ssh-ed25519 AAAArevoked
@cert-authority *.lab ssh-ed25519 AAAAca
"""


def _blobs(index: KnownHostsIndex, name: str) -> list[str]:
    return [e.blob for e in index.matching(name)]


def test_plain_names_and_file_order_with_wildcards() -> None:
    index = KnownHostsIndex(parse_known_hosts(TEXT))
    assert _blobs(index, "10.0.0.1") == ["AAAAplain1", "AAAAwild", "AAAAneg", "AAAArevoked"]


def test_bracketed_port_form_is_its_own_name() -> None:
    index = KnownHostsIndex(parse_known_hosts(TEXT))
    assert _blobs(index, "[10.0.0.1]:2222") == ["AAAAport"]


def test_any_name_of_a_multi_name_entry_and_case_insensitive() -> None:
    index = KnownHostsIndex(parse_known_hosts(TEXT))
    assert _blobs(index, "NODE-A") == ["AAAAboth"]
    assert "AAAAboth" in _blobs(index, "10.0.0.2")


def test_hashed_entries_match_only_their_name() -> None:
    index = KnownHostsIndex(parse_known_hosts(TEXT))
    assert "AAAAhashed" in _blobs(index, "10.0.0.9")
    assert "AAAAhashed" not in _blobs(index, "10.0.0.8")


def test_negation_wins_over_a_positive_pattern() -> None:
    index = KnownHostsIndex(parse_known_hosts(TEXT))
    assert "AAAAneg" in _blobs(index, "10.0.0.6")
    assert "AAAAneg" not in _blobs(index, "10.0.0.7")


def test_lookup_leaves_out_certificate_authorities(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(TEXT)
    assert [e.blob for e in lookup(path, "x.lab", 22)] == []
    assert [e.blob for e in lookup(path, "10.0.0.1", 2222)] == ["AAAAport"]


def test_record_is_idempotent_and_seen_by_the_next_lookup(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    assert lookup(path, "10.0.0.5", 22) == []
    assert record_host_key(path, "10.0.0.5", 22, "ssh-ed25519", "AAAAnew") is True
    assert record_host_key(path, "10.0.0.5", 22, "ssh-ed25519", "AAAAnew") is False
    assert [e.blob for e in lookup(path, "10.0.0.5", 22)] == ["AAAAnew"]
    assert path.read_text().count("AAAAnew") == 1


def test_a_thousand_plain_entries_index_by_name() -> None:
    text = "".join(f"10.1.{i // 250}.{i % 250} ssh-ed25519 AAAA{i}\n" for i in range(1000))
    index = KnownHostsIndex(parse_known_hosts(text))
    assert _blobs(index, "10.1.3.7") == ["AAAA757"]
    assert index.matching("10.9.9.9") == []


# -- accept-new under races and local failures -------------------------------------------------

import os  # noqa: E402
import stat  # noqa: E402

import pytest  # noqa: E402

from k8slk_ops.ssh.errors import HostKeyMismatch, SSHError  # noqa: E402
from k8slk_ops.ssh.hostkeys import HostKeyCheck, KnownHostsError  # noqa: E402
from k8slk_ops.ssh.pool import is_transient  # noqa: E402

ED_BLOB = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"k" * 36).decode()


def test_a_key_recorded_by_another_run_meanwhile_makes_a_second_one_a_mismatch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "known_hosts"
    check = HostKeyCheck("w-1", "10.0.0.5", 22, "accept-new", known_hosts=path)
    check.prepare()
    assert check.verify("ssh-ed25519", base64.b64decode(ED_BLOB)) is True  # nothing known yet
    # another run recorded a different key for the same name between our lookup and our write
    record_host_key(path, "10.0.0.5", 22, "ssh-ed25519", "AAAAother")
    with pytest.raises(HostKeyMismatch) as info:
        check.record()
    assert "10.0.0.5" in str(info.value)
    assert path.read_text().count("10.0.0.5") == 1


def test_a_revoked_key_is_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"@revoked 10.0.0.5 ssh-ed25519 {ED_BLOB}\n")
    with pytest.raises(HostKeyMismatch):
        record_host_key(path, "10.0.0.5", 22, "ssh-ed25519", ED_BLOB)


def test_a_known_hosts_that_cannot_be_written_is_a_local_error_not_retried(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    path = blocker / "known_hosts"
    with pytest.raises(KnownHostsError) as info:
        record_host_key(path, "10.0.0.5", 22, "ssh-ed25519", ED_BLOB)
    assert str(path) in str(info.value)
    assert isinstance(info.value, SSHError)
    assert not is_transient(info.value)


def test_a_linked_known_hosts_is_written_through_to_its_target(tmp_path: Path) -> None:
    real_dir = tmp_path / "dotfiles"
    real_dir.mkdir()
    real = real_dir / "known_hosts"
    real.write_text("10.0.0.1 ssh-ed25519 AAAAplain1\n")
    os.chmod(real, 0o600)
    link = tmp_path / "known_hosts"
    link.symlink_to(real)
    assert record_host_key(link, "10.0.0.5", 22, "ssh-ed25519", ED_BLOB) is True
    assert link.is_symlink()
    assert "10.0.0.5" in real.read_text() and "10.0.0.1" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_a_known_hosts_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "known_hosts"
    link.symlink_to("/dev/null")
    with pytest.raises(KnownHostsError, match="not a regular file"):
        record_host_key(link, "10.0.0.5", 22, "ssh-ed25519", ED_BLOB)
