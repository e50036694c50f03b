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
