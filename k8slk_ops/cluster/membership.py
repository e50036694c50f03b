"""The cluster's members, read from ``kubectl get nodes -o json`` on a control plane.

``Member`` is built here and nowhere else: finding the primary, the Ready poller and any step
that needs the node list all read it through :func:`list_members`. ``MemberWatcher`` is the
one poller a run shares: a thousand nodes waiting for Ready cost one request per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster.nodemeta import OwnedKeys, owned_keys
from k8slk_ops.kubeadm.kubectl import Taint
from k8slk_ops.node.linuxkit import LinuxKitNode, NodeCommandError, certain_read
from k8slk_ops.node.rebootrecord import ANNOTATION as REBOOT_ANNOTATION
from k8slk_ops.node.rebootrecord import RebootRecord, parse_record
from k8slk_ops.ssh import CommandTimeout

log = logging.getLogger("k8slk_ops.cluster.membership")

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
    return {n.name: member_of(n) for n in kubeadm.parse_nodes_json(nodes_json)}


def member_of(n: kubeadm.NodeStatus) -> Member:
    """The member a Node of the API's (a list's item, a watch event's object) stands for."""
    return Member(
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


# The node list is polled this often while it changes or a waited-for node is not listed yet
# (still joining), backing off to POLL_MAX once nothing moves (a thousand-node list is large).
POLL_MIN = 0.5
POLL_MAX = 3.0
# The watch: ``kubectl get nodes --watch`` lists the nodes, then prints each change as it
# happens, one JSON event per line.
WATCH_ARGS = ("get", "nodes", "--watch", "--output-watch-events", "-o", "json")
# A watch that ends this soon after it started, twice in a row, is not working here (an old
# kubectl, an API that refuses it): the watcher polls instead for the rest of the run.
WATCH_SHORT = 2.0
# How long the watch outlives its last waiter (see MemberWatcher._stop_if_idle).
IDLE_GRACE = 2.0


@dataclass
class _Waiter:
    future: asyncio.Future[Member]
    on_reason: Callable[[str], None] | None
    told: str = ""


class MemberWatcher:
    """Follows the node list while anyone waits; shared by all waiters of a run.

    It watches the primary's node list (``kubectl get nodes --watch``, streamed over the
    node's SSH session): a node turning Ready is seen as the API says so, not at the next poll.
    A watch that breaks is started again; one that cannot work here (it ends at once, twice,
    or prints what is not an event) gives way to polling ``kubectl get nodes -o json``, every
    POLL_MIN seconds while the list changes or a waited-for node is not in it yet.

    Each waiter is woken only by news of its own node: a thousand waiting nodes cost one
    dictionary look-up per event, not a thousand checks. ``on_poll`` hears each node list read
    and each node an event brings: the run's membership is kept current there, not by each
    waiter (a copy of the whole list per waiting node would grow with the square of the
    fleet)."""

    def __init__(
        self,
        primary: Callable[[], Awaitable[LinuxKitNode]],
        on_poll: Callable[[dict[str, Member]], None] | None = None,
        watch: bool = True,
    ) -> None:
        self.primary = primary
        self.on_poll = on_poll
        self.watching = watch
        self.members: dict[str, Member] = {}
        self.waiting: dict[str, list[_Waiter]] = {}
        self.waiters = 0
        self.primed_until = 0.0  # monotonic time until which it follows with nobody waiting
        self.task: asyncio.Task[None] | None = None
        self.error = ""

    # -- news ---------------------------------------------------------------------------------

    def _heard(self, members: dict[str, Member]) -> None:
        """Members read (a whole list, or one node of an event): tell their waiters."""
        self.members.update(members)
        if self.on_poll is not None:
            self.on_poll(members)
        for name, member in members.items():
            for waiter in self.waiting.get(name, ()):
                if waiter.future.done():
                    continue
                if member.ready:
                    waiter.future.set_result(member)
                    continue
                why = member.not_ready_text
                if why and why != waiter.told and waiter.on_reason is not None:
                    waiter.told = why
                    waiter.on_reason(why)

    async def poll_once(self) -> bool:
        """Read the node list once; whether it differs from what was known."""
        try:
            members = await list_members(await self.primary())
        except MembershipUnavailable as exc:
            self.error = str(exc)
            return False
        self.error = ""
        changed = members != {n: self.members.get(n) for n in members}
        self._heard(members)
        return changed

    # -- following ----------------------------------------------------------------------------

    async def _run(self) -> None:
        short = 0
        while self.wanted() and self.watching:
            started = time.monotonic()
            try:
                events = await self._watch()
            except (kubeadm.ParseError, UnicodeDecodeError) as exc:
                self.error = str(exc)
                self.watching = False
                break
            except Exception as exc:  # a lost connection: the watch is started again
                self.error = str(exc)
                events = 0
            short = short + 1 if time.monotonic() - started < WATCH_SHORT or not events else 0
            if short >= 2:
                self.watching = False
        if self.wanted():
            log.info("node list: the watch does not work here (%s); polling instead",
                     self.error or "kubectl ended at once, twice")
        delay = POLL_MIN
        while self.wanted():
            try:
                changed = await self.poll_once()
            except Exception as exc:  # a lost connection is retried at the next poll
                self.error = str(exc)
                changed = False
            joining = any(n not in self.members for n in self.waiting)
            delay = POLL_MIN if changed or joining else min(delay * 1.5, POLL_MAX)
            await asyncio.sleep(delay)

    async def _watch(self) -> int:
        """One ``kubectl get nodes --watch`` until it ends; the number of events it brought."""
        primary = await self.primary()
        count = 0
        log.info("node list: watching it on %s (kubectl %s)", primary.name, " ".join(WATCH_ARGS))
        lines = primary.kubectl_lines(*WATCH_ARGS)
        async with contextlib.aclosing(lines):
            async for line in lines:
                if not line.strip():
                    continue
                event = kubeadm.parse_node_event(line)
                count += 1
                if event.type == "ERROR":
                    self.error = event.message
                    break  # a fresh list and watch
                if event.node is None:
                    continue  # a bookmark
                member = member_of(event.node)
                if event.type == "DELETED":
                    self.members.pop(member.name, None)
                    continue
                self.error = ""
                self._heard({member.name: member})
        return count

    def wanted(self) -> bool:
        """Someone waits, or will soon (``prime``)."""
        return bool(self.waiters) or time.monotonic() < self.primed_until

    def prime(self, seconds: float) -> None:
        """Start following now, for at most ``seconds`` with nobody waiting: the joins prime it
        as they trigger, so that the watch has listed the nodes (and kubectl has started) by
        the time the first node waits for Ready, rather than then."""
        self.primed_until = max(self.primed_until, time.monotonic() + seconds)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        asyncio.get_running_loop().call_later(seconds, self._stop_if_idle)

    def stop(self) -> None:
        """The run is over: the watch (or poll) ends now, before its connection is closed."""
        self.primed_until = 0.0
        if self.task is not None:
            self.task.cancel()
            self.task = None

    # -- waiting ------------------------------------------------------------------------------

    async def wait_ready(
        self, name: str, timeout: float, on_reason: Callable[[str], None] | None = None
    ) -> Member:
        """The member once Ready; NodeError with its Ready condition's words at ``timeout``.
        ``on_reason`` hears each new explanation kubelet gives while the node is NotReady."""
        known = self.members.get(name)
        if known is not None and known.ready and self.task is not None and not self.task.done():
            return known
        waiter = _Waiter(asyncio.get_running_loop().create_future(), on_reason)
        if known is not None and not known.ready and known.not_ready_text and on_reason:
            # Already heard NotReady (the joins primed the watch): its reason may not change
            # again, so the waiter is told now rather than only at the next event.
            waiter.told = known.not_ready_text
            on_reason(waiter.told)
        self.waiting.setdefault(name, []).append(waiter)
        self.waiters += 1
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            member = self.members.get(name)
            why = member.not_ready_text if member is not None else ""
            state = "not registered" if member is None else "NotReady"
            extra = f" ({why or self.error})" if why or self.error else ""
            raise NodeError(f"still {state} after {timeout:.0f}s{extra}", phase="ready") from None
        finally:
            self.waiters -= 1
            mine = self.waiting.get(name, [])
            if waiter in mine:
                mine.remove(waiter)
            if not mine:
                self.waiting.pop(name, None)
            waiter.future.cancel()
            if not self.waiters:
                asyncio.get_running_loop().call_later(IDLE_GRACE, self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        """Nobody waits (still): the watch (or poll) ends. Not at once when the last waiter
        leaves: the next batch of nodes (``--concurrency``) comes a moment later, and a watch
        started again would list every node again."""
        if not self.wanted() and self.task is not None:
            self.task.cancel()
            self.task = None
