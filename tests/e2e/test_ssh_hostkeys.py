"""Host-key policies against a real sshd whose key changes like a rebooted LinuxKit node's."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from k8slk_ops.ssh import (
    ConnectionLost,
    HostKeyMismatch,
    HostKeyUnknown,
    RetryPolicy,
    SSHPool,
    SSHTarget,
)
from tests.sshd_server import SSHDServer, require_sshd, sshd_servers

FAST_RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.05, jitter=0.01)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[SSHDServer, SSHTarget]]:
    """A fresh server per test (tests change its key); known_hosts starts empty."""
    require_sshd()
    with sshd_servers(1, first_octet=10) as (_, client_key, (server,)):
        target = SSHTarget(
            name="cp-1",
            address=server.address,
            identity_file=client_key,
            known_hosts=tmp_path / "ssh" / "known_hosts",
        )
        yield server, target


def known_hosts(target: SSHTarget) -> Path:
    assert target.known_hosts is not None
    return target.known_hosts


def trust(server: SSHDServer, target: SSHTarget) -> None:
    path = known_hosts(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(server.known_hosts_line())


def assert_linuxkit_advice(message: str, server: SSHDServer, target: SSHTarget) -> None:
    assert "cp-1" in message
    assert server.address in message
    assert "new SSH host keys at every boot" in message
    assert "console" in message
    assert f"ssh-keygen -R {shlex.quote(server.host_pattern)} -f {known_hosts(target)}" in message
    assert "accept-new" in message
    assert f"hostKeyFingerprint: {server.fingerprint()}" in message


async def test_strict_accepts_the_key_in_known_hosts(node: tuple[SSHDServer, SSHTarget]) -> None:
    server, target = node
    trust(server, target)
    async with SSHPool(retry=FAST_RETRY) as pool:
        conn = await pool.connect(target)
        assert (await conn.run(["echo", "trusted"])).stdout == b"trusted\n"


async def test_changed_host_key_is_refused_with_linuxkit_advice_and_not_retried(
    node: tuple[SSHDServer, SSHTarget],
) -> None:
    server, target = node
    trust(server, target)
    old = server.fingerprint()
    async with SSHPool(retry=FAST_RETRY) as pool:
        conn = await pool.connect(target)
        assert (await conn.run(["true"])).ok
        server.restart(new_host_key=True)  # the node rebooted
        new = server.fingerprint()
        assert new != old
        with pytest.raises(HostKeyMismatch) as caught:
            for _ in range(2):  # the first call may still see the old, dying connection
                try:
                    await conn.run(["true"])
                except ConnectionLost:
                    continue
        err = caught.value
        assert old in str(err) and new in str(err)
        assert err.presented == new
        assert_linuxkit_advice(str(err), server, target)
        assert pool.stats.attempts == 2  # the first connect, then one refused re-dial

    for policy in ("strict", "accept-new"):
        async with SSHPool(retry=FAST_RETRY) as pool:
            with pytest.raises(HostKeyMismatch):
                await pool.connect(replace(target, host_key_policy=policy))
            assert pool.stats.attempts == 1
            assert pool.stats.connections == 0
    assert known_hosts(target).read_text() != server.known_hosts_line()


async def test_unknown_host_is_refused_under_strict(node: tuple[SSHDServer, SSHTarget]) -> None:
    server, target = node
    async with SSHPool(retry=FAST_RETRY) as pool:
        with pytest.raises(HostKeyUnknown) as caught:
            await pool.connect(target)
        assert pool.stats.attempts == 1
    assert "strict" in str(caught.value)
    assert_linuxkit_advice(str(caught.value), server, target)
    assert not known_hosts(target).exists()


async def test_accept_new_records_exactly_one_line_then_matches(
    node: tuple[SSHDServer, SSHTarget],
) -> None:
    server, target = node
    tofu = replace(target, host_key_policy="accept-new")
    # Several nodes entries for the same address, connecting at once, still make one line.
    twins = [replace(tofu, name=f"cp-1-{i}") for i in range(5)]
    async with SSHPool(retry=FAST_RETRY) as pool:
        conns = await asyncio.gather(*(pool.connect(t) for t in twins))
        assert all([(await c.run(["true"])).ok for c in conns])
    assert known_hosts(target).read_text() == server.known_hosts_line()

    async with SSHPool(retry=FAST_RETRY) as pool:
        await pool.connect(tofu)
        await pool.connect(target)  # and strict now trusts it
    assert known_hosts(target).read_text() == server.known_hosts_line()


async def test_accept_new_appends_to_an_existing_file(
    node: tuple[SSHDServer, SSHTarget],
) -> None:
    server, target = node
    path = known_hosts(target)
    path.parent.mkdir(parents=True)
    other = (
        "10.9.9.9 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    )
    path.write_text(f"# comment\n{other}")  # no trailing newline
    async with SSHPool(retry=FAST_RETRY) as pool:
        await pool.connect(replace(target, host_key_policy="accept-new"))
    assert path.read_text() == f"# comment\n{other}\n{server.known_hosts_line()}"


async def test_pinned_fingerprint(node: tuple[SSHDServer, SSHTarget]) -> None:
    server, target = node
    good = replace(target, host_key_policy="pinned", host_key_fingerprint=server.fingerprint())
    async with SSHPool(retry=FAST_RETRY) as pool:
        conn = await pool.connect(good)
        assert (await conn.run(["echo", "pinned"])).stdout == b"pinned\n"
    assert not known_hosts(target).exists()  # pinning never touches known_hosts

    wrong = "SHA256:" + "A" * 43
    bad = replace(good, host_key_fingerprint=wrong)
    async with SSHPool(retry=FAST_RETRY) as pool:
        with pytest.raises(HostKeyMismatch) as caught:
            await pool.connect(bad)
        assert pool.stats.attempts == 1
    message = str(caught.value)
    assert "pinned in the inventory" in message
    assert wrong in message
    assert_linuxkit_advice(message, server, target)


async def test_non_default_port_uses_bracketed_known_hosts_entries(tmp_path: Path) -> None:
    require_sshd()
    with sshd_servers(1, first_octet=11, port=2222) as (_, client_key, (server,)):
        path = tmp_path / "known_hosts"
        # An entry for port 22 of the same address must not vouch for port 2222.
        path.write_text(f"{server.address} {' '.join(server.known_hosts_line().split()[1:])}\n")
        target = SSHTarget(
            name="w-1",
            address=server.address,
            port=2222,
            identity_file=client_key,
            known_hosts=path,
        )
        async with SSHPool(retry=FAST_RETRY) as pool:
            with pytest.raises(HostKeyUnknown):
                await pool.connect(target)
        async with SSHPool(retry=FAST_RETRY) as pool:
            await pool.connect(replace(target, host_key_policy="accept-new"))
        lines = path.read_text().splitlines()
        assert lines[1] == server.known_hosts_line().strip()
        assert lines[1].startswith(f"[{server.address}]:2222 ")
        async with SSHPool(retry=FAST_RETRY) as pool:
            conn = await pool.connect(target)
            assert (await conn.run(["true"])).ok


async def test_accept_new_with_an_unwritable_known_hosts_fails_at_once_as_a_local_error(
    node: tuple[SSHDServer, SSHTarget], tmp_path: Path
) -> None:
    from k8slk_ops.ssh.hostkeys import KnownHostsError

    _, target = node
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    tofu = replace(target, host_key_policy="accept-new", known_hosts=blocker / "known_hosts")
    async with SSHPool(retry=FAST_RETRY) as pool:
        with pytest.raises(KnownHostsError, match="cannot record the host key"):
            await pool.connect(tofu)
        assert pool.stats.attempts == 1
