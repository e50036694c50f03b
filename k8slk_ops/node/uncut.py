"""Sections of a node's work that a stop request must not cut in the middle.

A first Ctrl-C or SIGTERM ends every wait at once (``engine/executor.py``), since a wait holds
nothing that needs finishing: kubelet keeps going whether or not we watch it become Ready. A
few commands must not be cut half-way, because what they leave behind would be worse than
letting them end: a file written on a node (its temp file and rename), the kubeadm
configuration with its trigger, a ``kubeadm`` run that changes the cluster (a token created but
not yet recorded, an upgrade, a reset). Such a command runs inside :func:`uncut`; a stop that
arrives meanwhile is held back and delivered, as a cancellation, the moment the section ends.

The marks are kept per asyncio task, so concurrent runs in one process (the tests) never see
each other's sections.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

_depth: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = weakref.WeakKeyDictionary()
_held: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


@contextlib.contextmanager
def uncut() -> Iterator[None]:
    """Run the body to its end even if a stop arrives; the stop then takes effect after it."""
    task = asyncio.current_task()
    if task is None:
        yield
        return
    _depth[task] = _depth.get(task, 0) + 1
    try:
        yield
    finally:
        depth = _depth[task] - 1
        if depth:
            _depth[task] = depth
        else:
            del _depth[task]
            if task in _held:
                _held.discard(task)
                task.cancel()  # the held stop: the task's next await raises CancelledError


def cut(task: asyncio.Task[Any], *, force: bool = False) -> None:
    """Cancel ``task`` now, or, while it is inside an :func:`uncut` section, as it leaves it.
    ``force`` (a second stop request: the operator insists) cuts the section too."""
    if force:
        _held.discard(task)
        task.cancel()
    elif _depth.get(task):
        _held.add(task)
    else:
        task.cancel()
