"""The cluster's members, read from ``kubectl get nodes -o json`` on a control plane.

``Member`` is built here and nowhere else: finding the primary, the Ready poller and any step
that needs the node list all read it through :func:`list_members`. ``MemberWatcher`` is the
one poller a run shares: a thousand nodes waiting for Ready cost one request per poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from k8slk_ops import kubeadm
from k8slk_ops.errors import NodeError
from k8slk_ops.kubeadm.kubectl import Taint
from k8slk_ops.node import LinuxKitNode, NodeCommandError, certain_read
from k8slk_ops.nodemeta import OwnedKeys, owned_keys
from k8slk_ops.rebootrecord import ANNOTATION as REBOOT_ANNOTATION
from k8slk_ops.rebootrecord import RebootRecord, parse_record
from k8slk_ops.ssh import CommandTimeout

# kubelet's reason when the container runtime reports no CNI configuration.
NETWORK_NOT_READY = "NetworkPluginNotReady"
# How long kubectl waits for the API's answer to one request (its --request-timeout). An API
# server whose etcd has lost quorum accepts the request and answers late or never; without a
# bound each look at the node list would last as long as the server's own 60 s.
API_REQUEST_TIMEOUT = 10.0
# The exec's own bound: the request's, plus the time kubectl takes to start and discover.
NODE_LIST_TIMEOUT = API_REQUEST_TIMEOUT + 10.0


@dataclass(frozen=True)
class Member:
    """A node as the cluster's API lists it."""

    name: str
    ready: bool
    control_plane: bool
    unschedulable: bool = False
    kubelet_version: str = ""
    not_ready_reason: str = ""  # the Ready condition's reason while it is not True
    not_ready_message: str = ""
    # A run rebooted this node and has not finished it yet (rebootrecord.py).
    reboot: RebootRecord | None = None
    # What ``apply`` compares with the inventory (nodemeta.py): the Node's labels, its taints,
    # and the annotations that record which of them the tool set.
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    owned: OwnedKeys = field(default_factory=lambda: OwnedKeys())

    @property
    def not_ready_text(self) -> str:
        """``reason: message`` of a node that is not Ready; empty when Ready or unexplained."""
        return ": ".join(p for p in (self.not_ready_reason, self.not_ready_message) if p)

    @property
    def network_missing(self) -> bool:
        """kubelet says no pod network (CNI) is installed on the node."""
        return NETWORK_NOT_READY in self.not_ready_message or (
            self.not_ready_reason == NETWORK_NOT_READY
        )


def etcd_did_not_answer(said: str) -> bool:
    """The API server's words say its etcd did not answer (``etcdserver: request timed out``,
    ``leader changed``, ``no leader``): true of a lost quorum, and of a moment's election."""
    return "etcdserver:" in said


def request_timeout(seconds: float = API_REQUEST_TIMEOUT) -> str:
    """kubectl's flag bounding how long it waits for the API server's answer."""
    return f"--request-timeout={kubeadm.format_duration(seconds)}"


class MembershipUnavailable(Exception):
    """The control plane's API did not answer ``kubectl get nodes``; carries kubectl's words."""


def members_of(nodes_json: str) -> dict[str, Member]:
    """Every member in ``kubectl get nodes -o json`` output, by name."""
    return {
        n.name: Member(
            n.name,
            n.ready,
            n.control_plane,
            n.unschedulable,
            n.kubelet_version,
            n.not_ready_reason,
            n.not_ready_message,
            parse_record(n.annotations.get(REBOOT_ANNOTATION, "")),
            n.labels,
            n.taints,
            owned_keys(n.annotations),
        )
        for n in kubeadm.parse_nodes_json(nodes_json)
    }


async def list_members(control_plane: LinuxKitNode) -> dict[str, Member]:
    """The cluster's node list as ``control_plane`` sees it; MembershipUnavailable if not."""
    try:  # an empty success (the exec's output lost) is read again
        result = await certain_read(
            lambda: control_plane.kubectl(
                "get", "nodes", "-o", "json", request_timeout(), timeout=NODE_LIST_TIMEOUT
            ),
            what=f"kubectl get nodes on {control_plane.name}",
        )
    except NodeCommandError as exc:
        raise MembershipUnavailable(str(exc)) from exc
    except CommandTimeout:  # an API server whose etcd is gone answers nothing, or late
        raise MembershipUnavailable(
            f"kubectl get nodes on {control_plane.name} did not answer within "
            f"{NODE_LIST_TIMEOUT:.0f} s"
        ) from None
    if result.exit_status != 0:
        raise MembershipUnavailable(kubeadm.failure_summary(result.stderr))
    try:
        return members_of(result.stdout.decode())
    except UnicodeDecodeError:
        raise MembershipUnavailable(
            f"kubectl get nodes -o json on {control_plane.name} printed bytes that are not UTF-8"
        ) from None
    except kubeadm.ParseError as exc:
        raise MembershipUnavailable(f"{exc} (on {control_plane.name})") from None


class MemberWatcher:
    """Polls the node list while anyone waits; shared by all waiters of a run.

    ``on_poll`` hears each node list read, once per poll: the run's membership is kept current
    there, not by each waiter (a copy of the whole list per waiting node would grow with the
    square of the fleet)."""

    def __init__(
        self,
        primary: Callable[[], Awaitable[LinuxKitNode]],
        on_poll: Callable[[dict[str, Member]], None] | None = None,
    ) -> None:
        self.primary = primary
        self.on_poll = on_poll
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
        if self.on_poll is not None:
            self.on_poll(self.members)

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

    async def wait_ready(
        self, name: str, timeout: float, on_reason: Callable[[str], None] | None = None
    ) -> Member:
        """The member once Ready; NodeError with its Ready condition's words at ``timeout``.
        ``on_reason`` hears each new explanation kubelet gives while the node is NotReady."""
        self.waiters += 1
        told = ""
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        deadline = time.monotonic() + timeout
        try:
            async with self.changed:
                while True:
                    member = self.members.get(name)
                    if member is not None and member.ready:
                        return member
                    why = member.not_ready_text if member is not None else ""
                    if why and why != told and on_reason is not None:
                        told = why
                        on_reason(why)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        state = "not registered" if member is None else "NotReady"
                        extra = f" ({why or self.error})" if why or self.error else ""
                        raise NodeError(
                            f"still {state} after {timeout:.0f}s{extra}", phase="ready"
                        )
                    try:
                        await asyncio.wait_for(self.changed.wait(), left)
                    except TimeoutError:
                        continue
        finally:
            self.waiters -= 1
