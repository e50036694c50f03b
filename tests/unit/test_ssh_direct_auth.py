"""A login sends one signed public-key request per key tried: no ``none`` request, no query,
unless the key is one whose use costs more than CPU; refused keys are followed by the next.
Without the patch (``K8SLK_OPS_STOCK_ASYNCSSH=1``) the same logins succeed and fail the same
way, with asyncssh's ``none`` request and a query per key first.

Checked against asyncssh's own server in this process (it answers ``none``, queries and signed
requests as RFC 4252 says) and against the fleet through the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import pytest

from k8slk_ops.engine.probe import targets_of
from k8slk_ops.inventory import load_inventory
from k8slk_ops.ssh.options import KEY_ONLY
from k8slk_ops.ssh.patches import direct_auth
from k8slk_ops.ssh.pool import SSHPool
from tests.conftest import AsyncsshMode
from tests.fleet.inprocess import InProcessFleet

NONE, QUERY, SIGNED = ("none", ""), ("publickey", "query"), ("publickey", "signed")


class _Server(asyncssh.SSHServer):
    """Takes the public keys it is given; counts what it was asked to validate."""

    def __init__(self, allowed: list[asyncssh.SSHKey], asked: list[bytes]) -> None:
        self._allowed = {key.public_data for key in allowed}
        self._asked = asked

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self._asked.append(key.public_data)
        return key.public_data in self._allowed


@pytest.fixture
def direct(asyncssh_mode: AsyncsshMode) -> bool:
    """Whether logins are direct in this run of the test (else asyncssh's own, three steps)."""
    return "direct-auth" in asyncssh_mode.applied


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch, direct: bool) -> list[tuple[str, str]]:
    """Every user-auth request the client sends: (method, "signed" | "query" | ""), with the
    patch and without it."""
    sent: list[tuple[str, str]] = []
    original = asyncssh.SSHClientConnection.send_userauth_request

    async def recording(self: Any, method: bytes, *args: bytes, **kwargs: Any) -> None:
        kind = ""
        if method == b"publickey":
            kind = "signed" if args[0] == b"\x01" else "query"
        sent.append((method.decode(), kind))
        await original(self, method, *args, **kwargs)

    monkeypatch.setattr(asyncssh.SSHClientConnection, "send_userauth_request", recording)
    return sent


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[asyncssh.SSHKey], list[bytes]]]:
    """A server on a free port taking the first of two keys; the keys, what it was asked."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    keys = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(2)]
    asked: list[bytes] = []
    acceptor = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[host_key],
        server_factory=lambda: _Server([keys[0]], asked),
        process_factory=lambda process: process.exit(0),
    )
    try:
        yield acceptor.get_port(), keys, asked
    finally:
        acceptor.close()
        await acceptor.wait_closed()


async def _login(port: int, client_keys: list[Any]) -> None:
    async with asyncssh.connect(
        "127.0.0.1", port, username="root", known_hosts=None, client_keys=client_keys,
        agent_path=None, config=None, **KEY_ONLY,
    ) as conn:
        assert (await conn.run("true")).exit_status == 0


async def test_a_key_in_memory_logs_in_with_one_signed_request(
    requests: list[tuple[str, str]], server: tuple[int, list[asyncssh.SSHKey], list[bytes]], direct: bool
) -> None:
    port, keys, asked = server
    await _login(port, [keys[0]])
    assert requests == ([SIGNED] if direct else [NONE, QUERY, SIGNED])
    assert asked == [keys[0].public_data] * (1 if direct else 2)  # queried, then signed


async def test_a_refused_key_is_followed_by_the_next(
    requests: list[tuple[str, str]], server: tuple[int, list[asyncssh.SSHKey], list[bytes]], direct: bool
) -> None:
    port, keys, asked = server
    await _login(port, [keys[1], keys[0]])
    assert requests == ([SIGNED, SIGNED] if direct else [NONE, QUERY, QUERY, SIGNED])
    assert asked == [keys[1].public_data] + [keys[0].public_data] * (1 if direct else 2)


async def test_no_key_taken_is_permission_denied_as_before(
    requests: list[tuple[str, str]], server: tuple[int, list[asyncssh.SSHKey], list[bytes]], direct: bool
) -> None:
    port, keys, _ = server
    with pytest.raises(asyncssh.PermissionDenied, match="Permission denied"):
        await _login(port, [keys[1]])
    assert requests == ([SIGNED] if direct else [NONE, QUERY])


async def test_a_key_whose_use_costs_more_than_cpu_is_queried_first(
    requests: list[tuple[str, str]], server: tuple[int, list[asyncssh.SSHKey], list[bytes]], direct: bool
) -> None:
    port, keys, _ = server
    pairs = asyncssh.load_keypairs([keys[1], keys[0]])
    for pair in pairs:  # as a security key or a key decrypted on first use is
        pair.use_executor = True
    await _login(port, pairs)
    assert requests == ([] if direct else [NONE]) + [QUERY, QUERY, SIGNED]


def test_only_software_keys_in_memory_sign_inline() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    [pair] = asyncssh.load_keypairs([key])
    assert direct_auth.signs_inline(pair)
    pair.use_executor = True
    assert not direct_auth.signs_inline(pair)
    agent_pair = asyncssh.SSHAgentKeyPair.__new__(asyncssh.SSHAgentKeyPair)
    assert not direct_auth.signs_inline(agent_pair)


async def test_the_pool_logs_in_to_a_node_with_one_request(
    requests: list[tuple[str, str]], fleet: InProcessFleet, direct: bool
) -> None:
    target = targets_of(load_inventory(fleet.inventory))["w-1"]
    async with SSHPool() as pool:
        conn = await pool.connect(target)
        assert (await conn.run(["true"])).exit_status == 0
    assert requests == ([SIGNED] if direct else [NONE, QUERY, SIGNED])
