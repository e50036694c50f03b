"""The SSH layer's pure parts: known_hosts matching, fingerprints, jump host specs, quoting.

No server is needed except where OpenSSH's own tools serve as the reference (ssh-keygen).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import resource
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8slk_ops.ssh import JumpHost, SSHTarget, fingerprint, raise_nofile_limit
from k8slk_ops.ssh.connection import follow_command, remote_timeout_command
from k8slk_ops.ssh.hostkeys import (
    HostKeyCheck,
    host_entry_name,
    lookup,
    normalise_fingerprint,
    parse_known_hosts,
    record_host_key,
)
from k8slk_ops.ssh.options import ClientSettings, OptionsCache
from k8slk_ops.ssh.target import command_line
from tests.sshd_server import SSH_KEYGEN, keygen, public_key_fields

BLOB_A = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"A" * 36).decode()
BLOB_B = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"B" * 36).decode()

octet = st.integers(min_value=0, max_value=255)
addresses = st.builds(lambda a, b, c, d: f"{a}.{b}.{c}.{d}", octet, octet, octet, octet)
ports = st.integers(min_value=1, max_value=65535)


def hashed(name: str, salt: bytes) -> str:
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"


@given(addresses, ports)
def test_entry_name_brackets_non_default_ports(address: str, port: int) -> None:
    name = host_entry_name(address, port)
    assert name == (address if port == 22 else f"[{address}]:{port}")


@given(addresses, ports, st.binary(min_size=1, max_size=20))
def test_plain_and_hashed_entries_match_only_their_host(
    address: str, port: int, salt: bytes
) -> None:
    name = host_entry_name(address, port)
    entries = parse_known_hosts(
        f"{name} ssh-ed25519 {BLOB_A}\n{hashed(name, salt)} ssh-ed25519 {BLOB_B}\n"
    )
    assert [e.matches(name) for e in entries] == [True, True]
    other = host_entry_name(address, port + 1 if port < 65535 else 1)
    assert [e.matches(other) for e in entries] == [False, False]


def test_patterns_wildcards_and_negation() -> None:
    (entry,) = parse_known_hosts(f"10.0.0.*,!10.0.0.13 ssh-ed25519 {BLOB_A}\n")
    assert entry.matches("10.0.0.12")
    assert not entry.matches("10.0.0.13")
    assert not entry.matches("10.0.1.12")
    (bracketed,) = parse_known_hosts(f"[10.0.0.?]:2222 ssh-ed25519 {BLOB_A}\n")
    assert bracketed.matches("[10.0.0.5]:2222")
    assert not bracketed.matches("10.0.0.5")


def test_comments_markers_and_malformed_lines() -> None:
    text = (
        "# a comment\n\n"
        f"@revoked 10.0.0.1 ssh-ed25519 {BLOB_B}\n"
        f"@cert-authority *.example ssh-ed25519 {BLOB_B}\n"
        "10.0.0.1 ssh-ed25519\n"  # no key: skipped
        f"10.0.0.1 ssh-ed25519 {BLOB_A} trailing comment\n"
    )
    entries = parse_known_hosts(text)
    assert [(e.marker, e.line) for e in entries] == [
        ("@revoked", 3),
        ("@cert-authority", 4),
        ("", 6),
    ]


def test_hashed_entries_from_ssh_keygen_are_found(tmp_path: Path) -> None:
    if not os.access(SSH_KEYGEN, os.X_OK):
        pytest.skip("ssh-keygen missing")
    known = tmp_path / "known_hosts"
    known.write_text(f"10.1.2.3 ssh-ed25519 {BLOB_A}\n[10.1.2.3]:2222 ssh-ed25519 {BLOB_B}\n")
    subprocess.run([SSH_KEYGEN, "-q", "-H", "-f", str(known)], check=True, capture_output=True)
    assert "10.1.2.3" not in known.read_text()
    assert [e.blob for e in lookup(known, "10.1.2.3", 22)] == [BLOB_A]
    assert [e.blob for e in lookup(known, "10.1.2.3", 2222)] == [BLOB_B]
    assert lookup(known, "10.1.2.4", 22) == []


def test_fingerprint_agrees_with_ssh_keygen(tmp_path: Path) -> None:
    if not os.access(SSH_KEYGEN, os.X_OK):
        pytest.skip("ssh-keygen missing")
    for kind in ("ed25519", "ecdsa", "rsa"):
        key = keygen(tmp_path / f"id_{kind}", kind)
        out = subprocess.run(
            [SSH_KEYGEN, "-l", "-E", "sha256", "-f", f"{key}.pub"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        _, blob = public_key_fields(key)
        assert fingerprint(base64.b64decode(blob)) == out.split()[1]


@pytest.mark.parametrize(
    "given_text", ["SHA256:abc+/9", "sha256:abc+/9", "abc+/9", "SHA256:abc+/9=", " SHA256:abc+/9 "]
)
def test_fingerprints_are_normalised(given_text: str) -> None:
    assert normalise_fingerprint(given_text) == "SHA256:abc+/9"


def test_known_algorithms_are_offered_first(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"10.0.0.1 ssh-rsa {BLOB_A}\n")
    check = HostKeyCheck(node="n", address="10.0.0.1", port=22, policy="strict", known_hosts=known)
    check.prepare()
    algs = check.host_key_algs()
    assert algs[:2] == ["rsa-sha2-512", "rsa-sha2-256"]
    assert "ssh-ed25519" in algs
    fresh = HostKeyCheck(node="n", address="10.0.0.9", port=22, policy="strict", known_hosts=known)
    fresh.prepare()
    assert fresh.host_key_algs()[0] == "ssh-ed25519"


def test_record_is_idempotent_and_keeps_mode(tmp_path: Path) -> None:
    known = tmp_path / "sub" / "known_hosts"
    assert record_host_key(known, "10.0.0.1", 22, "ssh-ed25519", BLOB_A)
    assert not record_host_key(known, "10.0.0.1", 22, "ssh-ed25519", BLOB_A)
    assert record_host_key(known, "10.0.0.1", 2222, "ssh-ed25519", BLOB_A)
    assert known.read_text() == (
        f"10.0.0.1 ssh-ed25519 {BLOB_A}\n[10.0.0.1]:2222 ssh-ed25519 {BLOB_A}\n"
    )
    assert known.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in known.parent.iterdir()] == ["known_hosts"]  # no temp files left


def test_concurrent_recorders_write_one_line(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    code = (
        "import sys; from pathlib import Path;"
        "from k8slk_ops.ssh.hostkeys import record_host_key;"
        f"record_host_key(Path({str(known)!r}), '10.0.0.%s' % sys.argv[1], 22, 'ssh-ed25519',"
        f" {BLOB_A!r})"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(i % 3)], cwd=Path(__file__).parents[2])
        for i in range(9)
    ]
    assert [p.wait() for p in procs] == [0] * 9
    lines = sorted(known.read_text().splitlines())
    assert lines == [f"10.0.0.{i} ssh-ed25519 {BLOB_A}" for i in range(3)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("bastion", JumpHost("bastion", 22, None)),
        ("ops@bastion", JumpHost("bastion", 22, "ops")),
        ("ops@10.0.0.5:2222", JumpHost("10.0.0.5", 2222, "ops")),
        ("[fd00::1]:2200", JumpHost("fd00::1", 2200, None)),
        ("fd00::1", JumpHost("fd00::1", 22, None)),
    ],
)
def test_jump_host_specs(spec: str, expected: JumpHost) -> None:
    assert JumpHost.parse(spec) == expected


@pytest.mark.parametrize("spec", ["", "@host", "host:0", "host:99999", "host:x", "[::1", "a b"])
def test_bad_jump_host_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="jump host"):
        JumpHost.parse(spec)


@given(st.lists(st.text(), min_size=1))
def test_argv_round_trips_through_the_remote_shell(argv: list[str]) -> None:
    assert shlex.split(command_line(argv)) == argv
    follow = shlex.split(follow_command(argv))
    assert follow[:2] == ["sh", "-c"] and follow[4:] == argv
    limited = shlex.split(remote_timeout_command(argv, 2.5))
    assert limited == ["timeout", "-s", "KILL", "5", *argv]


def test_a_string_command_is_kept_whole() -> None:
    assert command_line("echo a | wc -l") == "echo a | wc -l"
    assert shlex.split(remote_timeout_command("echo a | wc -l", 1))[-3:] == [
        "sh",
        "-c",
        "echo a | wc -l",
    ]
    with pytest.raises(ValueError):
        command_line([])


async def test_options_carry_keepalive_and_are_built_once(tmp_path: Path) -> None:
    if not os.access(SSH_KEYGEN, os.X_OK):
        pytest.skip("ssh-keygen missing")
    key = keygen(tmp_path / "id_ed25519")
    cache = OptionsCache()
    a = SSHTarget(name="a", address="10.0.0.1", identity_file=key, keepalive_interval=7.5)
    b = replace(a, name="b", address="10.0.0.2")
    first = await cache.options(ClientSettings.of(a))
    second = await cache.options(ClientSettings.of(b))
    assert first is second
    assert first.keepalive_interval == 7.5
    assert first.keepalive_count_max == 3
    assert first.connect_timeout == a.connect_timeout
    assert first.username == "root"
    assert (cache.keys_loaded, cache.options_built) == (1, 1)
    other = await cache.options(ClientSettings.of(replace(a, connect_timeout=3)))
    assert other is not first and cache.options_built == 2 and cache.keys_loaded == 1


def test_raise_nofile_limit_lifts_the_soft_limit_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = raise_nofile_limit()
    after_soft, after_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert after_hard == hard
    assert after_soft == new >= soft
    if hard != resource.RLIM_INFINITY:
        assert after_soft == hard
