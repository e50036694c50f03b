"""The cluster's members, read from ``kubectl get nodes -o json`` on a control plane.

``Member`` is built here and nowhere else: finding the primary, the Ready poller and any step
that needs the node list all read it through :func:`list_members`. ``MemberWatcher`` is the
one poller a run shares: a thousand nodes waiting for Ready cost one request per poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from k8slk_ops import kubeadm
from k8slk_ops.errors import NodeError
from k8slk_ops.node import LinuxKitNode
from k8slk_ops.ssh import CommandTimeout


@dataclass(frozen=True)
class Member:
    """A node as the cluster's API lists it."""

    name: str
    ready: bool
    control_plane: bool
    unschedulable: bool = False
    kubelet_version: str = ""


class MembershipUnavailable(Exception):
    """The control plane's API did not answer ``kubectl get nodes``; carries kubectl's words."""


def members_of(nodes_json: str) -> dict[str, Member]:
    """Every member in ``kubectl get nodes -o json`` output, by name."""
    return {
        n.name: Member(n.name, n.ready, n.control_plane, n.unschedulable, n.kubelet_version)
        for n in kubeadm.parse_nodes_json(nodes_json)
    }


async def list_members(control_plane: LinuxKitNode) -> dict[str, Member]:
    """The cluster's node list as ``control_plane`` sees it; MembershipUnavailable if not."""
    try:
        result = await control_plane.kubectl("get", "nodes", "-o", "json", timeout=30)
    except CommandTimeout:  # an API server whose etcd is gone answers nothing, or late
        raise MembershipUnavailable(
            f"kubectl get nodes on {control_plane.name} did not answer within 30 s"
        ) from None
    if result.exit_status != 0:
        raise MembershipUnavailable(kubeadm.failure_summary(result.stderr))
    return members_of(result.stdout.decode())


class MemberWatcher:
    """Polls the node list while anyone waits; shared by all waiters of a run."""

    def __init__(self, primary: Callable[[], Awaitable[LinuxKitNode]]) -> None:
        self.primary = primary
        self.members: dict[str, Member] = {}
        self.changed = asyncio.Condition()
        self.waiters = 0
        self.task: asyncio.Task[None] | None = None
        self.error = ""

    async def poll_once(self) -> None:
        try:
            self.members = await list_members(await self.primary())
        except MembershipUnavailable as exc:
            self.error = str(exc)
            return
        self.error = ""

    async def _run(self) -> None:
        delay = 0.25
        while self.waiters:
            try:
                await self.poll_once()
            except Exception as exc:  # a lost connection is retried at the next poll
                self.error = str(exc)
            async with self.changed:
                self.changed.notify_all()
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 3.0)

    async def wait_ready(self, name: str, timeout: float) -> Member:
        self.waiters += 1
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        deadline = time.monotonic() + timeout
        try:
            async with self.changed:
                while True:
                    member = self.members.get(name)
                    if member is not None and member.ready:
                        return member
                    left = deadline - time.monotonic()
                    if left <= 0:
                        state = "not registered" if member is None else "NotReady"
                        extra = f" ({self.error})" if self.error else ""
                        raise NodeError(
                            f"still {state} after {timeout:.0f}s{extra}", phase="ready"
                        )
                    try:
                        await asyncio.wait_for(self.changed.wait(), left)
                    except TimeoutError:
                        continue
        finally:
            self.waiters -= 1
