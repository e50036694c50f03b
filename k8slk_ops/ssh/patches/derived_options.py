"""Per-connection options derived in the event loop when no file is read.

``asyncssh.connect`` layers the per-connection values (host, port, client keys, host-key
algorithms) over the shared options by building a new options object, and builds it in the
default thread pool because that may read ssh_config and key files. Ours read nothing (keys are loaded once, known_hosts is ours,
no ssh_config unless the inventory names one). For options marked by ``mark_file_free`` the
object is built once per combination of the values nodes share (tunnel, keys, host-key
algorithms) and each connection gets a copy with its own host, port and client object, its lists
copied too (a connection consumes its list of keys as it tries them): 3 microseconds instead of
the ~0.13 ms a build costs, no hop to a thread and back, and no thread holding the GIL the event
loop needs. Every other options object (an ssh_config file to read) is still built in the pool
as asyncssh does. That with no file to read only these values differ between nodes is what
asyncssh does today; tests/unit/test_ssh_speedups.py compares a copy with a full build, field by
field, so a release that changes it fails there.

Replaces the classmethod ``SSHClientConnectionOptions.construct`` (the client's options only):
it relies on ``asyncssh.connect`` building the options through it with these keyword arguments,
and on a built options object being plain attributes that a copy reproduces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import asyncssh

from k8slk_ops.ssh.patches.base import Patch, Replacement

# asyncssh releases this was checked against (tests/unit/test_ssh_speedups.py passed on each,
# its field-by-field comparison of a derived copy with a full build among them).
CHECKED = frozenset({"2.24.1"})

_FILE_FREE = "_k8slk_file_free"


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


def _make() -> list[Replacement]:
    opts_cls: Any = asyncssh.SSHClientConnectionOptions
    original_construct = opts_cls.construct.__func__

    async def construct(cls: Any, /, options: Any = None, **kwargs: Any) -> Any:
        if _file_free(options, kwargs):
            return derive(cls, options, asyncio.get_running_loop(), kwargs)
        return await original_construct(cls, options, **kwargs)

    return [Replacement(opts_cls, "construct", classmethod(construct))]


PATCH = Patch(
    name="derived-options",
    purpose="per-connection options derived in the loop when no file is read",
    checked=CHECKED,
    make=_make,
)
