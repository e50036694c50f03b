"""--break-lock says whose lock it breaks, and a young lock of a live process of this host
needs the flag twice."""

from __future__ import annotations

import os
import socket
import time

import pytest

from k8slk_ops.errors import LockHeld
from k8slk_ops.lock import Holder, breaking


def holder(**kw: object) -> Holder:
    base: dict[str, object] = dict(run_id="r-1", user="ops", host=socket.gethostname(),
                                   pid=os.getpid(), command="remove-node", since=time.time() - 5)
    base.update(kw)
    return Holder(**base)  # type: ignore[arg-type]


def test_a_live_local_holder_needs_the_flag_twice() -> None:
    with pytest.raises(LockHeld, match=r"still running on this host.*twice"):
        breaking(holder(), "the lock", 1)
    said = breaking(holder(), "the lock", 2)
    assert said.startswith("breaking the lock, held by remove-node on ")
    assert f"pid {os.getpid()}" in said and "run r-1" in said and "5s old" in said


@pytest.mark.parametrize("other", [
    {"host": "elsewhere"},               # another machine: this host cannot tell
    {"pid": 2**22 + 12345},              # no such process here
    {"since": time.time() - 7200},       # old
])
def test_other_holders_are_broken_at_once_and_named(other: dict[str, object]) -> None:
    said = breaking(holder(**other), "the lock", 1)
    assert "held by remove-node" in said


def test_an_unreadable_holder_is_said_so() -> None:
    assert breaking(None, "the lock", 1) == "breaking the lock, held by an unreadable holder"
