"""``HeldLock``: one way to hold either cluster lock, with a lock that records what it is asked."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest

from k8slk_ops.base.errors import LockHeld
from k8slk_ops.cluster import lock
from k8slk_ops.cluster.lock import FileLocks, HeldLock, Holder, LeaseLock, LockLost, RunLock


class FakeLock:
    def __init__(self, *, renew_error: Exception | None = None, verify: str | None = None,
                 node: str = "cp-1") -> None:
        self.broken: list[str] = []
        self.calls: list[str] = []
        self.renew_error = renew_error
        self.verify_answer = verify
        self.node = node
        self.renewed = asyncio.Event()
        self.refuse = False

    async def acquire(self, break_lock: int = 0) -> None:
        self.calls.append(f"acquire {break_lock}")
        if self.refuse:
            raise LockHeld("held by another run")
        if break_lock:
            self.broken.append("broke it")

    async def verify(self) -> str | None:
        self.calls.append("verify")
        return self.verify_answer

    async def renew(self) -> None:
        self.calls.append("renew")
        self.renewed.set()
        if self.renew_error is not None:
            raise self.renew_error

    async def release(self) -> None:
        self.calls.append("release")

    def gone_with(self, reset: Collection[str]) -> bool:
        return self.node in reset


def test_both_cluster_locks_are_run_locks() -> None:
    holder = Holder.me("r", "bootstrap")
    locks: list[RunLock] = [FileLocks([], holder), LeaseLock("cp-1", _never, holder)]
    assert [x.gone_with({"cp-1"}) for x in locks] == [False, True]


async def _never(name: str) -> object:
    raise AssertionError("not connected")


async def test_taken_on_entry_released_on_exit_even_when_the_run_fails() -> None:
    fake = FakeLock()
    with pytest.raises(RuntimeError):
        async with HeldLock(fake, break_lock=1) as held:
            assert held.broken == ["broke it"]
            assert await held.check() is None
            raise RuntimeError("the run failed")
    assert fake.calls == ["acquire 1", "verify", "release"]


async def test_a_lock_not_taken_is_not_released() -> None:
    fake = FakeLock()
    fake.refuse = True
    with pytest.raises(LockHeld):
        async with HeldLock(fake):
            pass
    assert fake.calls == ["acquire 0"]


async def test_a_failed_renewal_makes_the_check_stop_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lock, "RENEW_SECONDS", 0.0)
    fake = FakeLock(renew_error=LockLost("the Lease is now held by run b"))
    async with HeldLock(fake) as held:
        await fake.renewed.wait()  # the renewal that failed has marked the lock lost by now
        assert await held.check() == "the Lease is now held by run b"
    assert "verify" not in fake.calls


async def test_a_renewal_hiccup_is_left_to_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "RENEW_SECONDS", 0.0)
    fake = FakeLock(renew_error=OSError("connection reset"), verify="the Lease was deleted")
    async with HeldLock(fake) as held:
        await fake.renewed.wait()
        assert held.lost == ""
        assert await held.check() == "the Lease was deleted"


async def test_a_lock_that_went_with_a_reset_node_is_neither_checked_nor_released() -> None:
    fake = FakeLock(verify="the Lease was deleted")
    reset: set[str] = set()
    async with HeldLock(fake, reset=lambda: reset) as held:
        reset.add("cp-1")  # the run reset the control plane the Lease lived on
        assert await held.check() is None
    assert fake.calls == ["acquire 0"]


async def test_a_check_that_cannot_read_the_lock_says_so() -> None:
    class Unreadable(FakeLock):
        async def verify(self) -> str | None:
            raise OSError("no route to host")

    async with HeldLock(Unreadable()) as held:
        assert await held.check() == "the lock could not be checked: no route to host"
