"""What a node prints is kept up to a cap: its start and its end, with the cut said.

Checked against asyncssh's own server in this process: the node's command prints more than the
cap on stdout and a little on stderr, and ``Connection.run`` must keep the cap's worth, count
what it dropped, and say so in the text it keeps and in the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import pytest

from k8slk_ops.ssh import connection
from k8slk_ops.ssh.connection import Connection, KeptOutput
from k8slk_ops.ssh.options import KEY_ONLY
from k8slk_ops.ssh.target import SSHTarget

CHUNK = b"0123456789abcdef" * 4096  # 64 KiB
CHUNKS = 48  # 3 MiB in all


def _printing(process: asyncssh.SSHServerProcess[Any]) -> None:
    """A command that prints 3 MiB and a last line on stdout, a short line on stderr."""

    async def run() -> None:
        for _ in range(CHUNKS):
            process.stdout.write(CHUNK)
            await process.stdout.drain()
        process.stdout.write(b"THE-LAST-LINE\n")
        process.stderr.write(b"a warning\n")
        process.exit(3)

    process.channel.get_connection().create_task(run())


class _Open(asyncssh.SSHServer):
    """Takes any key: this server only prints."""

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return True


@pytest.fixture
async def node() -> AsyncIterator[Connection]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    acceptor = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[host_key], process_factory=_printing,
        server_factory=_Open,
        encoding=None, allow_pty=False,
    )
    port = acceptor.get_port()
    client_key = asyncssh.generate_private_key("ssh-ed25519")

    async def dial(target: SSHTarget) -> asyncssh.SSHClientConnection:
        return await asyncssh.connect(
            "127.0.0.1", port, username="root", known_hosts=None, agent_path=None,
            client_keys=[client_key], config=None, **KEY_ONLY,
        )

    conn = Connection(SSHTarget("n-1", "127.0.0.1", port), dial)
    try:
        yield conn
    finally:
        await conn.close()
        acceptor.close()
        await acceptor.wait_closed()


async def test_output_past_the_cap_is_cut_counted_and_said(
    node: Connection, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cap = 1 << 20
    monkeypatch.setattr(connection, "MAX_KEPT", cap)
    monkeypatch.setattr(connection.KeptOutput.__init__, "__defaults__", (cap, 64 << 10))
    printed = len(CHUNK) * CHUNKS + len(b"THE-LAST-LINE\n")
    with caplog.at_level(logging.WARNING, logger="k8slk_ops.ssh"):
        result = await node.run(["print-a-lot"])
    assert result.exit_status == 3
    assert result.stdout_cut == printed - cap
    assert result.stdout.startswith(CHUNK[:1000])
    assert result.stdout.endswith(b"THE-LAST-LINE\n")
    assert f"{printed - cap} bytes of this output were cut here".encode() in result.stdout
    assert len(result.stdout) < cap + 200
    assert (result.stderr, result.stderr_cut) == (b"a warning\n", 0)
    assert any(f"{printed - cap} bytes of stdout" in r.getMessage() for r in caplog.records)


def test_kept_output_keeps_the_start_and_the_end() -> None:
    kept = KeptOutput(limit=10, tail=4)
    for piece in (b"abcd", b"efgh", b"ijkl", b"mnop"):
        kept.add(piece)
    assert (kept.cut, bytes(kept.head), bytes(kept.tail)) == (6, b"abcdef", b"mnop")
    assert kept.data().startswith(b"abcdef\n[k8slk-ops: 6 bytes") and kept.data().endswith(b"mnop")
    small = KeptOutput(limit=10, tail=4)
    small.add(b"short")
    assert (small.data(), small.cut) == (b"short", 0)
