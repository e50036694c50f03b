"""Reaching nodes: retries for the unreachable, none for refused keys, jump host, config, agent."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from k8slk_ops.ssh import (
    AuthenticationFailed,
    RetryPolicy,
    SSHPool,
    SSHTarget,
    Unreachable,
)
from tests.sshd_server import SSHDServer, keygen, require_sshd, sshd_servers

RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.05, jitter=0.01)
NOBODY = "127.0.240.250"  # nothing listens there


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Path, Path, list[SSHDServer]]]:
    """Two servers: .20 serves as jump host, .21 as a node; one known_hosts for both."""
    require_sshd()
    # DEBUG1 makes the jump host log each forwarded (direct-tcpip) connection.
    with sshd_servers(2, first_octet=20, log_level="DEBUG1") as (workdir, client_key, servers):
        known = workdir / "known_hosts"
        known.write_text("".join(s.known_hosts_line() for s in servers))
        yield known, client_key, servers


def target_for(lab: tuple[Path, Path, list[SSHDServer]], index: int = 1) -> SSHTarget:
    known, key, servers = lab
    return SSHTarget(
        name=f"n{index}",
        address=servers[index].address,
        identity_file=key,
        known_hosts=known,
    )


async def test_unreachable_after_the_configured_attempts(
    lab: tuple[Path, Path, list[SSHDServer]],
) -> None:
    target = replace(target_for(lab), name="ghost", address=NOBODY)
    async with SSHPool(retry=RETRY) as pool:
        with pytest.raises(Unreachable) as caught:
            await pool.connect(target)
        assert pool.stats.attempts == 3
    err = caught.value
    assert err.attempts == 3
    assert isinstance(err.cause, ConnectionRefusedError)
    assert "ghost" in str(err) and NOBODY in str(err) and "3 attempts" in str(err)


class _RetrySeen(logging.Handler):
    """Sets an event when the pool logs that a connect attempt failed and will be retried."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.event.set()


async def test_a_node_that_comes_up_during_retries_is_reached(tmp_path: Path) -> None:
    require_sshd()
    with sshd_servers(1, first_octet=22) as (_, key, (server,)):
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())
        target = SSHTarget(
            name="late", address=server.address, identity_file=key, known_hosts=known
        )
        server.stop()
        seen = _RetrySeen()
        logger = logging.getLogger("k8slk_ops.ssh")
        logger.addHandler(seen)
        old_level = logger.level
        logger.setLevel(logging.INFO)
        try:
            retry = RetryPolicy(attempts=50, initial=0.02, maximum=0.1, jitter=0.01)
            async with SSHPool(retry=retry) as pool:
                connecting = asyncio.create_task(pool.connect(target))
                await seen.event.wait()  # refused at least once while the node is down
                await asyncio.to_thread(server.start)
                conn = await connecting
                assert (await conn.run(["echo", "up"])).stdout == b"up\n"
                assert pool.stats.attempts >= 2
                assert pool.stats.connections == 1
        finally:
            logger.removeHandler(seen)
            logger.setLevel(old_level)


async def test_wrong_client_key_fails_without_retries(
    lab: tuple[Path, Path, list[SSHDServer]], tmp_path: Path
) -> None:
    stranger = keygen(tmp_path / "id_stranger")
    target = replace(target_for(lab), identity_file=stranger)
    async with SSHPool(retry=RETRY) as pool:
        with pytest.raises(AuthenticationFailed) as caught:
            await pool.connect(target)
        assert pool.stats.attempts == 1
    assert "n1" in str(caught.value) and str(stranger) in str(caught.value)


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
async def test_openssh_takes_a_login_in_one_signed_request(
    lab: tuple[Path, Path, list[SSHDServer]], tmp_path: Path, kind: str
) -> None:
    """sshd (as on a node) accepts the signed request sent at once: no "none", no query;
    an RSA key (an image's .ssh/id_rsa.pub) signs with SHA-2 as sshd asks."""
    server = lab[2][1]
    key = keygen(tmp_path / f"id_{kind}", kind)
    server.authorize(key)
    before = len(server.log_lines())
    async with SSHPool(retry=RETRY) as pool:
        conn = await pool.connect(replace(target_for(lab), identity_file=key))
        assert (await conn.run(["true"])).exit_status == 0
    server.wait_for_log(r"Accepted (key|publickey)", count=1 + _accepted(server.log_lines()[:before]))
    asked = [line for line in server.log_lines()[before:] if "userauth-request for user" in line]
    assert len(asked) == 1 and asked[0].split(" method ")[1].startswith("publickey"), asked
    assert not [line for line in server.log_lines()[before:] if "publickey test pkalg" in line]


def _accepted(lines: list[str]) -> int:
    return sum(1 for line in lines if re.search(r"Accepted (key|publickey)", line))


async def test_unreadable_identity_file_is_an_authentication_error(
    lab: tuple[Path, Path, list[SSHDServer]], tmp_path: Path
) -> None:
    target = replace(target_for(lab), identity_file=tmp_path / "missing_key")
    async with SSHPool(retry=RETRY) as pool:
        with pytest.raises(AuthenticationFailed, match="missing_key"):
            await pool.connect(target)
        assert pool.stats.attempts == 0


async def test_jump_host_tunnels_every_target_over_one_connection(
    lab: tuple[Path, Path, list[SSHDServer]],
) -> None:
    _, _, (jump, node) = lab
    via = f"root@{jump.address}:{jump.port}"
    first = replace(target_for(lab), name="behind-1", jump_host=via)
    second = replace(target_for(lab), name="behind-2", jump_host=via)
    pattern = rf"server_request_direct_tcpip: .* target {node.address} port 22$"
    forwarded_before = len([line for line in jump.log_lines() if re.search(pattern, line)])
    async with SSHPool(retry=RETRY) as pool:
        conns = await asyncio.gather(pool.connect(first), pool.connect(second))
        results = await asyncio.gather(*(c.run(["echo", c.name]) for c in conns))
        assert [r.stdout for r in results] == [b"behind-1\n", b"behind-2\n"]
        assert pool.stats.jump_connections == 1
        assert pool.stats.connections == 3  # the jump host and two nodes
    # The jump host's sshd forwarded both node connections (direct-tcpip channels).
    forwarded = jump.wait_for_log(pattern, forwarded_before + 2)
    assert len(forwarded) == forwarded_before + 2


async def test_unreachable_node_behind_a_jump_host(
    lab: tuple[Path, Path, list[SSHDServer]],
) -> None:
    _, _, (jump, _) = lab
    ghost = replace(target_for(lab), name="ghost", address=NOBODY, jump_host=jump.address)
    async with SSHPool(retry=RETRY) as pool:
        with pytest.raises(Unreachable) as caught:
            await pool.connect(ghost)
        assert pool.stats.jump_connections == 1
    assert caught.value.attempts == 3


async def test_config_file_is_honoured(
    lab: tuple[Path, Path, list[SSHDServer]], tmp_path: Path
) -> None:
    _, key, (_, node) = lab
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {node.address}\n    IdentityFile {key}\n")
    target = replace(target_for(lab), identity_file=None, config_file=config)
    async with SSHPool(retry=RETRY) as pool:
        conn = await pool.connect(target)
        assert (await conn.run(["echo", "via config"])).stdout == b"via config\n"


@pytest.fixture
def agent(lab: tuple[Path, Path, list[SSHDServer]], tmp_path: Path) -> Iterator[str]:
    """A private ssh-agent holding the client key; yields its socket path."""
    _, key, _ = lab
    sock = str(tmp_path / "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("SSH_AUTH_SOCK=")  # printed once bound
        subprocess.run(
            ["ssh-add", "-q", str(key)], env={**os.environ, "SSH_AUTH_SOCK": sock}, check=True
        )
        yield sock
    finally:
        proc.terminate()
        proc.wait()


async def test_ssh_agent_is_used_without_identity_file(
    lab: tuple[Path, Path, list[SSHDServer]],
    agent: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", agent)
    monkeypatch.setenv("HOME", str(tmp_path))  # no default keys to fall back on
    target = replace(target_for(lab), identity_file=None)
    async with SSHPool(retry=RETRY) as pool:
        conn = await pool.connect(target)
        assert (await conn.run(["echo", "agent"])).stdout == b"agent\n"
    # Without the agent, the same target has no key to offer.
    monkeypatch.delenv("SSH_AUTH_SOCK")
    async with SSHPool(retry=RETRY) as pool:
        with pytest.raises(AuthenticationFailed):
            await pool.connect(target)


class _SilentListener:
    """A TCP listener that accepts and never speaks SSH: a hung node."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            await reader.read()  # until the client gives up and closes
        finally:
            writer.close()


async def test_handshake_timeouts_are_retried_and_handshakes_are_bounded(
    lab: tuple[Path, Path, list[SSHDServer]],
) -> None:
    listener = _SilentListener()
    server = await asyncio.start_server(listener.handle, "127.0.240.251", 2222)
    try:
        base = replace(target_for(lab), address="127.0.240.251", port=2222, connect_timeout=0.2)
        targets = [replace(base, name=f"hung-{i}") for i in range(5)]
        retry = RetryPolicy(attempts=2, initial=0.01, maximum=0.02, jitter=0.01)
        async with SSHPool(max_handshakes=2, retry=retry) as pool:
            results = await asyncio.gather(
                *(pool.connect(t) for t in targets), return_exceptions=True
            )
        assert all(isinstance(r, Unreachable) for r in results), results
        assert all(isinstance(r.cause, TimeoutError) for r in results if isinstance(r, Unreachable))
        assert "timed out" in str(results[0])
        assert listener.accepted == 10  # 5 nodes x 2 attempts
        assert pool.stats.peak_handshakes == 2  # never more than max_handshakes at once
    finally:
        server.close()
        await server.wait_closed()
