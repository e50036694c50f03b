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

**Per-connection options derived in the loop when no file is read.** ``asyncssh.connect``
layers the per-connection values (host, port, client keys, host-key algorithms) over the shared
options by building a new options object, and builds it in the default thread pool because that
may read ssh_config and key files. Ours read nothing (keys are loaded once, known_hosts is ours,
no ssh_config unless the inventory names one). For options marked by ``mark_file_free`` the
object is built once per combination of the values nodes share (tunnel, keys, host-key
algorithms) and each connection gets a copy with its own host, port and client object, its lists
copied too (a connection consumes its list of keys as it tries them): 3 microseconds instead of
the ~0.13 ms a build costs, no hop to a thread and back, and no thread holding the GIL the event
loop needs. Every other options object (an ssh_config file to read) is still built in the pool
as asyncssh does. That with no file to read only these values differ between nodes is what
asyncssh does today; tests/unit/test_ssh_speedups.py compares a copy with a full build, field by
field, so a release that changes it fails there.

``install()`` applies both to asyncssh *client* connections made afterwards; the fleet's and the
lab's servers are untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
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


# What differs from node to node among connections sharing a template, and where asyncssh keeps
# it once built (``client_factory`` becomes ``protocol_factory``; ``host`` is also ``orig_host``).
_PER_CONNECTION = {"host": ("host", "orig_host"), "port": ("port",),
                   "client_factory": ("protocol_factory",)}
# The other values a derived connection may be given, with what makes two of them the same.
_SHARED: dict[str, Any] = {
    "tunnel": id,
    "client_keys": lambda keys: tuple(map(id, keys)) if keys is not None else None,
    "server_host_key_algs": lambda algs: tuple(algs) if isinstance(algs, list) else algs,
    "config": lambda config: tuple(config),
}
_TEMPLATES = "_k8slk_templates"
_MAX_TEMPLATES = 64


def _template_key(kwargs: dict[str, Any]) -> Hashable | None:
    """What the template for these per-connection values is found by; None when a value is one
    this derivation does not know (the options are then built in full)."""
    if not set(_PER_CONNECTION) <= kwargs.keys() or kwargs["client_factory"] is None:
        return None
    if not isinstance(kwargs["host"], str) or not isinstance(kwargs["port"], int):
        return None
    key = []
    for name, value in kwargs.items():
        if name in _PER_CONNECTION:
            continue
        same = _SHARED.get(name)
        if same is None:
            return None
        key.append((name, same(value)))
    return tuple(sorted(key, key=lambda item: item[0]))


def derive(cls: Any, options: Any, loop: asyncio.AbstractEventLoop, kwargs: dict[str, Any]) -> Any:
    """``cls(options, loop=loop, **kwargs)`` for file-free ``options``, from a template built
    once per shared values: a copy whose containers are copies, with the node's own values."""
    key = _template_key(kwargs)
    if key is None:
        return cls(options, loop=loop, **kwargs)
    templates: dict[Hashable, Any] = options.__dict__.setdefault(_TEMPLATES, {})
    template = templates.get(key)
    if template is None:
        if len(templates) >= _MAX_TEMPLATES:
            templates.clear()
        template = templates[key] = cls(options, loop=loop, **kwargs)
    derived = cls.__new__(cls)
    derived.__dict__.update(
        (name, value.copy() if isinstance(value, list | dict | set) else value)
        for name, value in template.__dict__.items()
    )
    for name, fields in _PER_CONNECTION.items():
        for field in fields:
            setattr(derived, field, kwargs[name])
    return derived


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
            return derive(cls, options, asyncio.get_running_loop(), kwargs)
        return await original_construct(cls, options, **kwargs)

    connection_made._k8slk_speedup = True  # type: ignore[attr-defined]
    conn_cls.connection_made = connection_made
    opts_cls.construct = classmethod(construct)
