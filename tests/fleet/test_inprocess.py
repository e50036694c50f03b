"""The in-process fleet itself: it serves from its own thread, its knobs act on the listeners,
and it always goes away (stopped, or failed to start) leaving no thread and no listener."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from tests.fleet import layout
from tests.fleet.inprocess import InProcessFleet


def fleet_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fleet" and t.is_alive()]


def answers(address: str, port: int) -> bool:
    """An SSH server accepts the connection and says who it is."""
    try:
        with socket.create_connection((address, port), timeout=5) as sock:
            return sock.recv(64).startswith(b"SSH-2.0-")
    except ConnectionRefusedError:
        return False


def test_it_serves_every_node_on_its_address_and_stops_completely(tmp_path: Path) -> None:
    fleet = InProcessFleet(tmp_path, 3, 1).start()
    port = fleet.config.port
    try:
        assert all(answers(fleet.address(n), port) for n in fleet.names)
        assert (tmp_path / layout.INVENTORY).exists() and (tmp_path / layout.KNOWN_HOSTS).exists()
        assert len((tmp_path / layout.KNOWN_HOSTS).read_text().splitlines()) == 3
        assert fleet_threads()
    finally:
        fleet.stop()
    assert not fleet_threads()
    assert not any(answers(fleet.address(n), port) for n in fleet.names)


def test_a_node_made_unreachable_refuses_then_answers_again(tmp_path: Path) -> None:
    with InProcessFleet(tmp_path, 2, 1) as fleet:
        address, port = fleet.address("w-1"), fleet.config.port
        fleet.unreachable("w-1")
        assert not answers(address, port)
        assert answers(fleet.address("cp-1"), port)
        fleet.reachable("w-1")
        assert answers(address, port)


def test_a_fleet_that_cannot_listen_fails_to_start_and_leaves_no_thread(tmp_path: Path) -> None:
    fleet = InProcessFleet(tmp_path, 2, 1)
    with socket.socket() as taken:
        taken.bind((fleet.address("w-1"), fleet.config.port))
        taken.listen()
        with pytest.raises(OSError):
            fleet.start()
    assert not fleet_threads()
    assert not answers(fleet.address("cp-1"), fleet.config.port)


def test_an_inventory_of_some_nodes_keeps_the_endpoint(tmp_path: Path) -> None:
    with InProcessFleet(tmp_path, 3, 1) as fleet:
        path = fleet.inventory_of(["cp-1", "w-2"])
        text = path.read_text()
        assert f"controlPlaneEndpoint: {fleet.config.endpoint}" in text
        assert "name: w-2" in text and "name: w-1" not in text


def test_a_node_sends_no_ignore_packets_as_sshd_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncssh's server would send SSH_MSG_IGNORE before each packet; the fleet's nodes, like
    OpenSSH's sshd, send none (tests/fleet/lean.py)."""
    import asyncio

    import asyncssh
    from asyncssh.connection import SSHConnection
    from asyncssh.constants import MSG_IGNORE

    ignored = 0
    handlers = SSHConnection._packet_handlers  # type: ignore[attr-defined]
    original = handlers[MSG_IGNORE]

    def counting(self: SSHConnection, *args: object) -> None:
        nonlocal ignored
        ignored += self.is_client()  # what the node sent
        original(self, *args)

    monkeypatch.setitem(handlers, MSG_IGNORE, counting)

    async def run_one(address: str, port: int) -> str:
        async with asyncssh.connect(
            address, port, username="root", client_keys=[str(tmp_path / layout.CLIENT_KEY)],
            known_hosts=str(tmp_path / layout.KNOWN_HOSTS), config=None,
        ) as conn:
            result = await conn.run("hostname", check=True)
            return str(result.stdout)

    with InProcessFleet(tmp_path, 1, 1) as fleet:
        out = asyncio.run(run_one(fleet.address("cp-1"), fleet.config.port))
    assert out == "cp-1\n"
    assert ignored == 0
