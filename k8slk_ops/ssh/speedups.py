"""Two changes to how asyncssh's client spends CPU per connection; the bytes on the wire do not change.

**Packets written in one turn of the event loop leave in one ``send``.** asyncssh writes every
SSH packet to its transport as soon as it is made, and asyncio sends each write at once with its
own ``send`` system call: a connection that logs in and runs one command makes 19 of them, when
8 of those packets were written in the same turn of the loop as another (NEWKEYS and the service
request, a channel's requests, ...). On loopback a ``send`` also does the receiving side's TCP
work. Here the packets written during one turn are joined and sent once at the end of it
(``call_soon``), in the order written; nothing waits longer than the loop takes to come round,
and closing or aborting the transport sends what is pending first, so the peer gets the same
bytes in fewer TCP segments.

**Per-connection options built in the loop when no file is read.** ``asyncssh.connect`` layers
the per-connection values (host, port, client keys, host-key algorithms) over the shared options
by building a new options object, and builds it in the default thread pool because that may read
ssh_config and key files. Ours read nothing (keys are loaded once, known_hosts is ours, no
ssh_config unless the inventory names one): the object then costs about a tenth of a
millisecond to build, less than the hop to a thread and back, and a thread busy with it holds
the GIL the event loop needs. Options marked by ``mark_file_free`` are built inline, every
other (an ssh_config file to read) still in the pool as asyncssh does.

``install()`` applies both to asyncssh *client* connections made afterwards; the fleet's and the
lab's servers are untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh

_FILE_FREE = "_k8slk_file_free"


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


def mark_file_free(options: asyncssh.SSHClientConnectionOptions) -> None:
    """Say that ``options`` read no file when rebuilt (no ssh_config, keys in memory)."""
    setattr(options, _FILE_FREE, True)


def _file_free(options: object, kwargs: dict[str, Any]) -> bool:
    return bool(getattr(options, _FILE_FREE, False)) and kwargs.get("config") == []


def install() -> None:
    """Apply both changes to asyncssh's client (idempotent)."""
    conn_cls: Any = asyncssh.SSHClientConnection
    if getattr(conn_cls.connection_made, "_k8slk_speedup", False):
        return
    original_made = conn_cls.connection_made

    def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
        original_made(self, CoalescingTransport(transport, asyncio.get_running_loop()))

    opts_cls: Any = asyncssh.SSHClientConnectionOptions
    original_construct = opts_cls.construct.__func__

    async def construct(cls: Any, /, options: Any = None, **kwargs: Any) -> Any:
        if _file_free(options, kwargs):
            return cls(options, loop=asyncio.get_running_loop(), **kwargs)
        return await original_construct(cls, options, **kwargs)

    connection_made._k8slk_speedup = True  # type: ignore[attr-defined]
    conn_cls.connection_made = connection_made
    opts_cls.construct = classmethod(construct)
