"""The cluster lock's Lease read through an API whose etcd is between leaders: removing a
control plane removes its etcd member, and when that member led, etcd elects another for about a
second, during which the API answers ``etcdserver: request timed out``. That is not a lost lock;
a lost quorum, which does not come back, still is."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8slk_ops.cluster import lock
from k8slk_ops.cluster.lock import Holder, LeaseLock
from k8slk_ops.ssh.target import CommandResult

ETCD_TIMEOUT = CommandResult(1, b"", b"Error from server: etcdserver: request timed out\n")


class FakeNode:
    """A control plane whose kubectl answers from a script: the first ``silent`` gets of the
    Lease fail as an API without etcd does, then the Lease is there."""

    def __init__(self, identity: str, silent: int) -> None:
        self.identity = identity
        self.silent = silent
        self.calls: list[list[str]] = []

    async def kubelet_exec(self, argv: list[str], input: bytes | None = None,
                           timeout: float | None = None) -> CommandResult:
        self.calls.append(argv)
        if self.silent:
            self.silent -= 1
            return ETCD_TIMEOUT
        lease = {"metadata": {"resourceVersion": "7"},
                 "spec": {"holderIdentity": self.identity, "renewTime": None}}
        return CommandResult(0, json.dumps(lease).encode(), b"")


def _lock(node: FakeNode) -> LeaseLock:
    async def connect(name: str) -> Any:
        return node

    holder = Holder("r1", "op", "host", 1, "remove-node", 0.0)
    return LeaseLock("cp-2", connect, holder)


async def test_a_moments_election_is_not_a_lost_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock.asyncio, "sleep", _no_wait)
    held_node = FakeNode(_lock(FakeNode("", 0)).identity, silent=2)
    held = _lock(held_node)
    assert await held.verify() is None
    assert len(held_node.calls) == 3
    assert all("--request-timeout=10s" in argv for argv in held_node.calls)


async def test_an_etcd_that_stays_silent_is_a_lost_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr(lock.asyncio, "sleep", sleep)
    monkeypatch.setattr(lock.time, "monotonic", lambda: clock[0])
    node = FakeNode("", silent=10_000)
    why = await _lock(node).verify()
    assert why is not None and "etcdserver: request timed out" in why
    assert clock[0] <= lock.ETCD_SETTLE


async def _no_wait(seconds: float) -> None:
    return None


class RebootingNode(FakeNode):
    """The Lease reads fine, then the API goes (its control plane reboots) before the replace."""

    async def kubelet_exec(self, argv: list[str], input: bytes | None = None,
                           timeout: float | None = None) -> CommandResult:
        if "replace" in argv:
            self.calls.append(argv)
            return CommandResult(1, b"", (
                b'error: error validating "STDIN": error validating data: failed to download '
                b'openapi: Get "https://10.0.0.11:6443/openapi/v2?timeout=10s": dial tcp '
                b"10.0.0.11:6443: connect: connection refused\n"))
        return await super().kubelet_exec(argv, input, timeout)


async def test_an_api_gone_between_the_read_and_the_replace_is_not_a_lost_lock() -> None:
    node = RebootingNode(_lock(FakeNode("", 0)).identity, silent=0)
    held = _lock(node)
    await held.renew()  # no LockLost: the next renewal, or the check before a stage, decides
    assert any("replace" in argv for argv in node.calls)
