"""Packets written in one turn of the event loop leave in one ``send``; the bytes do not change.

asyncssh writes every SSH packet to its transport as soon as it is made, and asyncio sends each
write at once with its own ``send`` system call: a connection that logs in and runs one command
makes 19 of them, when 8 of those packets were written in the same turn of the loop as another
(NEWKEYS and the service request, a channel's requests, ...). On loopback a ``send`` also does
the receiving side's TCP work. Here the packets written during one turn are joined and sent
once at the end of it (``call_soon``), in the order written; nothing waits longer than the loop
takes to come round, and closing or aborting the transport sends what is pending first, so the
peer gets the same bytes in fewer TCP segments.

Replaces ``SSHClientConnection.connection_made`` (asyncssh's client only; the fleet's and the
lab's servers are untouched): it relies on asyncssh keeping the transport it is handed and
calling nothing on it that ``CoalescingTransport`` does not pass through.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh

from k8slk_ops.ssh.patches.base import Patch, Replacement

# asyncssh releases this was checked against (tests/unit/test_ssh_speedups.py passed on each).
CHECKED = frozenset({"2.24.1"})


class CoalescingTransport:
    """A stand-in for an asyncio transport that joins the writes of one loop turn."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self._pending)) + int(self._transport.get_write_buffer_size())

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        # What was written before the abort was meant to go, as when each write went at once.
        self._flush()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _make() -> list[Replacement]:
    conn_cls: Any = asyncssh.SSHClientConnection
    original_made = conn_cls.connection_made

    def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
        original_made(self, CoalescingTransport(transport, asyncio.get_running_loop()))

    return [Replacement(conn_cls, "connection_made", connection_made)]


PATCH = Patch(
    name="coalesced-writes",
    purpose="the packets of one loop turn leave in one send",
    checked=CHECKED,
    make=_make,
)
