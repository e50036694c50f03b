"""--break-lock says whose lock it breaks, and a young lock of a live process of this host
needs the flag twice."""

from __future__ import annotations

import os
import socket
import time

import pytest

from k8slk_ops.base.errors import LockHeld
from k8slk_ops.cluster.lock import Holder, UnreadableHolder, breaking


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


GOOD = holder(since=1.5).encode()


@pytest.mark.parametrize(("text", "why"), [
    (GOOD.replace("1.5", '"x"'), "since: Input should be a valid number"),
    (GOOD.replace(f'"pid": {os.getpid()}', '"pid": "12"'), "pid: Input should be a valid integer"),
    (GOOD.replace(f'"pid": {os.getpid()}', '"pid": true'), "pid: Input should be a valid integer"),
    (GOOD.replace("1.5", "NaN"), "since: Input should be a finite number"),
    (GOOD.replace(', "user": "ops"', ""), "user: Field required"),
    ("[1, 2]", "Input should be an object"),
    ('{"run_id": ', "Invalid JSON"),
    ("", "empty"),
], ids=["since-text", "pid-text", "pid-bool", "since-nan", "no-user", "a-list", "cut-json",
        "empty"])  # the records hold this process's pid: no ids from them (xdist compares ids)
def test_a_broken_holder_record_is_named_never_trusted(text: str, why: str) -> None:
    other = Holder.read(text)
    assert isinstance(other, UnreadableHolder)
    assert why in other.why
    assert breaking(other, "the lock", 1).startswith("breaking the lock, held by ")
    assert Holder.decode(text) is None


def test_a_good_holder_record_reads_back_and_a_later_field_is_ignored() -> None:
    assert Holder.read(GOOD) == holder(since=1.5)
    assert Holder.read(GOOD[:-1] + ', "extra": 1}') == holder(since=1.5)


def test_another_hosts_start_is_its_own_clocks_time_not_an_age() -> None:
    said = holder(host="elsewhere", since=0.0).describe()
    assert said.endswith("started at 1970-01-01T00:00:00.000000Z by its own clock")
    assert "started 5s ago" in holder().describe()
