"""Probing the cluster: one connection per node, its facts, the primary and the membership.

``Cluster`` is the run's probe (``context.NodeProbe`` is what steps may ask of it): a cache of
connections, the facts read through them, the primary and its node list, each node's IP. It owns a run's SSH connections. It connects to the nodes a run needs (at most
``concurrency`` at once), reads their facts in one round trip each, and finds the primary: the
first control plane, in inventory order, that is initialised and whose API answers. A rolling
change that reboots nodes calls ``refresh`` to read facts again, for one node or a batch, and
``redial`` to drop a node's connection and dial it again with the host-key decision that
applies at that moment (a LinuxKit node has new host keys after every boot).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from k8slk_ops.base.errors import CannotStart, UsageError
from k8slk_ops.base.nextstep import NextStep
from k8slk_ops.cluster import addonrecord
from k8slk_ops.cluster.membership import Member, MembershipUnavailable, list_members
from k8slk_ops.engine.context import ClusterFacts
from k8slk_ops.inventory import Inventory, checks
from k8slk_ops.node.facts import NodeFacts
from k8slk_ops.node.linuxkit import LinuxKitNode, NodeCommandError
from k8slk_ops.output.events import Event, EventKind, EventSink
from k8slk_ops.ssh import (
    HostKeyMismatch,
    HostKeyPolicy,
    HostKeyUnknown,
    SSHError,
    SSHPool,
    SSHTarget,
)
from k8slk_ops.ssh import next_step as ssh_next_step
from k8slk_ops.ssh.errors import host_entry_name
from k8slk_ops.ssh.hostkeys import replace_host_key
from k8slk_ops.ssh.options import config_proxy_jump

Opener = Callable[[SSHTarget], Awaitable[LinuxKitNode]]


class ApiState(enum.Enum):
    NOT_INITIALISED = "not initialised"  # or not reachable: nothing to ask
    ANSWERS = "answers"
    SILENT = "silent"  # initialised, and its API did not answer


@dataclass(frozen=True)
class ControlPlaneLook:
    """What one control plane says of the cluster when asked for the primary: its node list
    when its API answers, why not when it is initialised and its API is silent."""

    state: ApiState
    members: dict[str, Member] = field(default_factory=dict)
    why: str = ""  # why the API is silent

    @classmethod
    def answered(cls, members: dict[str, Member]) -> ControlPlaneLook:
        return cls(ApiState.ANSWERS, members=members)

    @classmethod
    def silent(cls, why: str) -> ControlPlaneLook:
        return cls(ApiState.SILENT, why=why)


def targets_of(inventory: Inventory) -> dict[str, SSHTarget]:
    """The SSH target of every node, built once per run."""
    out = {}
    for node in inventory.nodes:
        s = inventory.ssh_for(node)
        # ~/.ssh/config is honoured when it exists; a missing default is no error.
        config = s.config_file if s.config_file and s.config_file.exists() else None
        jump = s.jump_host
        if jump is None and config is not None:
            jump = _config_jump(config, s.user, node.address, s.port)
        out[node.name] = SSHTarget(
            name=node.name,
            address=node.address,
            port=s.port,
            user=s.user,
            identity_file=s.identity_file,
            known_hosts=s.known_hosts,
            host_key_policy=s.host_key_policy,
            host_key_fingerprint=s.host_key_fingerprint,
            jump_host=jump,
            connect_timeout=s.connect_timeout,
            keepalive_interval=s.keepalive_interval,
            config_file=config,
        )
    return out


def _config_jump(config: Path, user: str, address: str, port: int) -> str | None:
    """A ProxyJump of the ssh config for ``address``, dialled by the pool under the
    inventory's host-key rules (ssh.options.config_proxy_jump)."""
    try:
        jump = config_proxy_jump(config, user, address, port)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{config}: {exc}") from None
    if jump is not None and "," in jump:
        raise UsageError(
            f"{config}: ProxyJump {jump} for {address} has several hops; k8slk-ops goes through "
            "one jump host: set ssh.jumpHost in the inventory"
        )
    return jump


def _retrieved(future: asyncio.Future[list[None]]) -> None:
    """Mark a background future's end as seen: cancelled at the run's end, it is no error."""
    if not future.cancelled():
        future.exception()


class RebootedKeyRefused(HostKeyMismatch):
    """A new host key from a node a run rebooted, not accepted: why, and how to accept it."""


class NoApiAnswers(CannotStart):
    """A control plane holds admin.conf but no control plane's API answers: a broken cluster,
    or one whose init is under way (kubeadm writes admin.conf before the API is up)."""


class Cluster:
    """The nodes of one inventory as one run reaches them."""

    def __init__(
        self,
        inventory: Inventory,
        sink: EventSink,
        *,
        concurrency: int,
        refuse_host_key_errors: bool,
        opener: Opener | None = None,
    ) -> None:
        self.inventory = inventory
        self.sink = sink
        self.concurrency = max(1, concurrency)
        # A run that changes things stops before anything is written when a host key fails;
        # a read-only run shows the node as a row instead.
        self.refuse_host_key_errors = refuse_host_key_errors
        self.pool = SSHPool()
        self.targets = targets_of(inventory)
        self._opener = opener or self._open
        self._nodes: dict[str, asyncio.Task[LinuxKitNode]] = {}
        self.facts: dict[str, NodeFacts] = {}
        self.unreachable: dict[str, str] = {}  # node -> why
        self.host_key_errors: list[str] = []
        self.host_key_state: dict[str, str] = {}  # node -> "mismatch" | "unknown"
        self.connect_errors: dict[str, SSHError] = {}  # node -> why it is unreachable
        self.peer_addresses: dict[str, str] = {}  # node -> the IP its connection reached
        self.members: dict[str, Member] = {}  # the primary's node list, once it is found
        self._want_addon_record = False  # find_primary's addon_record
        self._warming: asyncio.Future[list[None]] | None = None

    # -- connections ----------------------------------------------------------------------------

    async def connect(self, name: str) -> LinuxKitNode:
        """The node's one connection for the run, opened on first use."""
        task = self._nodes.get(name)
        if task is None:
            task = asyncio.ensure_future(self._opener(self.targets[name]))
            self._nodes[name] = task
        return await asyncio.shield(task)

    def warm(self, names: Sequence[str]) -> None:
        """Dial ``names`` in the background: their handshakes overlap what the run does first
        (the primary's reading, the lock). Nothing runs on them: their facts are read when the
        run asks, as before, and a dial that failed fails then, once. Only as many as one wave
        of ``concurrency``: a larger run reads in waves anyway, and dialling it all up front
        would double the handshakes in flight."""
        if len(names) > self.concurrency or self._warming is not None:
            return

        async def one(name: str) -> None:
            with contextlib.suppress(Exception):  # met again, and reported, when it is read
                await self.connect(name)

        self._warming = asyncio.gather(*(one(n) for n in names))
        self._warming.add_done_callback(_retrieved)

    async def _open(self, target: SSHTarget) -> LinuxKitNode:
        conn = await self.pool.connect(target)
        if conn.peer_address:
            self.peer_addresses[target.name] = conn.peer_address
        return LinuxKitNode(target.name, target.address, conn)

    def node_ips(self) -> dict[str, str]:
        """Each node's IP for kubeadm: ``nodeIP``, else its address when that is an IP, else
        the IP its SSH connection reached (the name as resolved here)."""
        out = {}
        for node in self.inventory.nodes:
            if node.node_ip is not None:
                out[node.name] = node.node_ip
            elif checks.is_ip(node.address):
                out[node.name] = node.address
            elif checks.is_ip(self.peer_addresses.get(node.name, "")):
                out[node.name] = self.peer_addresses[node.name]
        return out

    async def redial(
        self,
        name: str,
        *,
        host_key_policy: HostKeyPolicy | None = None,
        host_key_fingerprint: str | None = None,
    ) -> LinuxKitNode:
        """Drop ``name``'s connection and dial it again, with the host-key policy (and pinned
        fingerprint) given now, if any; they apply to this node's later dials too."""
        target = self.targets[name]
        if host_key_policy is not None:
            target = dataclasses.replace(target, host_key_policy=host_key_policy)
        if host_key_fingerprint is not None:
            target = dataclasses.replace(target, host_key_fingerprint=host_key_fingerprint)
        self.targets[name] = target
        old = self._nodes.pop(name, None)
        if old is not None and not old.done():
            old.cancel()
        await self.pool.drop(name)
        self.unreachable.pop(name, None)
        self.connect_errors.pop(name, None)
        self.host_key_state.pop(name, None)
        return await self.connect(name)

    def next_step(self, name: str, rerun: str) -> NextStep | None:
        """What to do about ``name`` when it could not be reached (None when it was)."""
        exc = self.connect_errors.get(name)
        return None if exc is None else self.next_step_for(name, exc, rerun)

    def next_step_for(self, name: str, exc: SSHError, rerun: str) -> NextStep:
        """What to do about ``name``, which failed with ``exc`` (``rerun`` runs the tool again)."""
        return ssh_next_step(exc, login=self.targets[name].login_command(), rerun=rerun)

    async def release(self, name: str) -> None:
        """Close ``name``'s connection now, not at the end of the run: an idle connection still
        costs keepalives on both sides, and thousands closed at once make the run's end wait.
        A later ``connect`` dials it again."""
        task = self._nodes.pop(name, None)
        if task is not None and not task.done():
            task.cancel()
        await self.pool.drop(name)

    async def close(self) -> None:
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
        await self.pool.close()

    # -- facts ----------------------------------------------------------------------------------

    async def gather(self, names: Iterable[str]) -> None:
        """Connect to ``names`` and read their facts, all at once, bounded; nodes already read
        (or found unreachable) are not read again."""
        todo = [n for n in names if n not in self.facts and n not in self.unreachable]
        await self._read(todo)

    async def refresh(self, names: Sequence[str]) -> dict[str, NodeFacts]:
        """Read the facts of ``names`` again (after a reboot, a change made mid-run): the new
        facts replace the old; a node that cannot be reached now is recorded unreachable."""
        for name in names:
            self.facts.pop(name, None)
            self.unreachable.pop(name, None)
            self.connect_errors.pop(name, None)
        await self._read(list(names))
        return {n: self.facts[n] for n in names if n in self.facts}

    async def _read(self, names: list[str]) -> None:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(name: str) -> None:
            async with gate:
                await self._read_one(name)

        await asyncio.gather(*(one(n) for n in names))
        if self.host_key_errors and self.refuse_host_key_errors:
            raise CannotStart(
                "refusing to run: host key check failed; nothing was changed on any node.\n"
                + "\n".join(self.host_key_errors)
            )

    async def _read_one(self, name: str) -> None:
        self._emit(name, "connect", EventKind.START)
        try:
            try:
                lk = await self.connect(name)
            except HostKeyMismatch as exc:
                lk = await self._after_our_reboot(name, exc)
            self.facts[name] = await lk.facts()
        except (HostKeyMismatch, HostKeyUnknown) as exc:
            self.host_key_errors.append(str(exc))
            kind = "mismatch" if isinstance(exc, HostKeyMismatch) else "unknown"
            self.host_key_state[name] = kind
            self.unreachable[name] = f"host key {kind}"
            self.connect_errors[name] = exc
            self._emit(name, "connect", EventKind.FAIL, str(exc))
        except SSHError as exc:
            self.unreachable[name] = str(exc)
            self.connect_errors[name] = exc
            self._emit(name, "connect", EventKind.FAIL, str(exc))
        else:
            version = self.facts[name].kubeadm_version
            self._emit(name, "connect", EventKind.OK, f"kubeadm {version or '?'}")

    async def _after_our_reboot(self, name: str, exc: HostKeyMismatch) -> LinuxKitNode:
        """A node with a new host key whose Node carries a run's reboot record (a roll that
        stopped while the node was down; rebootrecord.py). Under ``hostKeyAfterReboot: accept``
        the key is trusted once the node, asked over a connection pinned to that key, reports
        a boot ID other than the recorded one: its own known_hosts lines are replaced and the
        run goes on to finish the node. Otherwise the mismatch is raised again, saying which
        run rebooted the node, its new key and the command that accepts it. Only a run that
        changes things does this (a read-only run shows the node as a row)."""
        member = self.members.get(name)
        record = member.reboot if member is not None else None
        if record is None or not self.refuse_host_key_errors:
            raise exc
        settings = self.inventory.ssh_for(name)
        original = self.targets[name]
        try:  # the handshake only: nothing runs on the node unless the key may be accepted
            lk = await self.redial(name, host_key_policy="pinned",
                                   host_key_fingerprint=exc.presented)
            kind, blob = await lk.conn.server_host_key()
        except SSHError:
            raise exc from None
        finally:
            self.targets[name] = original  # later dials check known_hosts again
        entry = host_entry_name(original.address, original.port)
        kh = settings.known_hosts
        if settings.host_key_after_reboot != "accept":
            await self.release(name)
            raise RebootedKeyRefused(
                f"{name} ({entry}) was rebooted by run {record.run} and made new host keys "
                f"at its boot; ssh.hostKeyAfterReboot is refuse.\n  new key: {exc.presented} "
                f"({kind})\nCheck it on the node's console "
                "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then accept it:\n"
                f"  ssh-keygen -R '{entry}' -f {kh} && echo '{entry} {kind} {blob}' >> {kh}\n"
                "(or set ssh.hostKeyAfterReboot: accept) and run upgrade again: it finishes "
                f"{name} and goes on",
                node=name, address=original.address, port=original.port,
                presented=exc.presented, expected=exc.expected, known_hosts=kh,
            )
        try:
            now = await lk.boot_id()
        except NodeCommandError as read:
            await self.release(name)
            raise RebootedKeyRefused(
                f"{exc}\n{name} carries the reboot record of run {record.run}, but its boot ID "
                f"could not be read ({read}): the new key is not accepted",
                node=name, address=original.address, port=original.port,
                presented=exc.presented, expected=exc.expected, known_hosts=kh,
            ) from None
        if now == record.boot_id:
            await self.release(name)
            raise RebootedKeyRefused(
                f"{exc}\n{name} carries the reboot record of run {record.run}, but it has not "
                f"booted since (boot ID {now} as recorded): a new key without a reboot is not "
                "accepted. Someone may be intercepting the connection",
                node=name, address=original.address, port=original.port,
                presented=exc.presented, expected=exc.expected, known_hosts=kh,
            )
        old = await asyncio.to_thread(
            replace_host_key, kh, original.address, original.port, kind, blob
        )
        self._emit(
            name, "connect", EventKind.WARN,
            f"rebooted by run {record.run} (boot ID {record.boot_id} -> {now}): new host key "
            f"accepted (hostKeyAfterReboot: accept): {', '.join(old) or 'none'} -> "
            f"{exc.presented}; known_hosts updated",
        )
        return lk

    # -- the primary ----------------------------------------------------------------------------

    async def find_primary(
        self, order: Sequence[str], *, read_only: bool, without_api: bool = False,
        addon_record: bool = False,
    ) -> ClusterFacts:
        """The cluster as the first initialised control plane of ``order`` whose API answers
        sees it; control planes after it are not contacted for this. With none initialised,
        the first control plane of the inventory is the primary-to-be. Once one API has been
        silent (etcd without quorum, say), the control planes left are asked all at once: a
        silent API costs its timeout once, not once per control plane. A read-only run, or one
        ``without_api``, goes on with the first silent control plane as its primary.
        ``addon_record``: the addon record is read even when the inventory has no addon (a
        playbook that looks for addons taken out of it)."""
        self._want_addon_record = addon_record
        silent: dict[str, str] = {}
        for i, name in enumerate(order):
            if silent:
                await self.gather(order[i:])
                looks = await asyncio.gather(*(self._look(n) for n in order[i:]))
                for other, look in zip(order[i:], looks, strict=True):
                    if look.state is ApiState.ANSWERS:
                        return await self._primary(other, look.members)
                    if look.state is ApiState.SILENT:
                        silent[other] = look.why
                break
            look = await self._look(name)
            if look.state is ApiState.SILENT:
                silent[name] = look.why
            elif look.state is ApiState.ANSWERS:
                return await self._primary(name, look.members)
        if silent:
            detail = "; ".join(f"{k}: {v}" for k, v in silent.items())
            if read_only:  # a look at a broken cluster (status, etcd status) says what it sees
                return ClusterFacts(primary=next(iter(silent)), initialised=True, api_error=detail)
            if without_api:  # certs renew: the fix for a silent API goes through SSH alone
                return ClusterFacts(primary=next(iter(silent)), initialised=True,
                                    api_error=detail, through_ssh=True)
            raise NoApiAnswers(f"the cluster is initialised but no control plane API answers: {detail}")
        first = self.inventory.control_planes[0].name
        if first in self.unreachable and not read_only:
            raise CannotStart(
                f"the first control plane {first} is unreachable: {self.unreachable[first]}"
            )
        return ClusterFacts(primary=first)

    async def _look(self, name: str) -> ControlPlaneLook:
        """A control plane's view of the node list, or why its API is silent; nothing when it
        is not initialised or cannot be reached."""
        await self.gather([name])
        if name not in self.facts or not self.facts[name].admin_conf:
            return ControlPlaneLook(ApiState.NOT_INITIALISED)
        try:
            return ControlPlaneLook.answered(await list_members(await self.connect(name)))
        except MembershipUnavailable as exc:
            return ControlPlaneLook.silent(str(exc))

    async def _primary(self, name: str, members: dict[str, Member]) -> ClusterFacts:
        self.members = members
        addons = await self._addon_record(name)
        return ClusterFacts(primary=name, initialised=True, members=members, addons=addons)

    async def _addon_record(self, name: str) -> dict[str, addonrecord.RecordEntry]:
        """The manifests the cluster says were applied, when the inventory has any to apply (or
        the run looks for those taken out of it); unreadable, it is empty (every manifest is
        applied again: ``kubectl apply`` is safe; none is pruned)."""
        cluster = self.inventory.cluster
        if not (self.inventory.addon_manifests or self._want_addon_record) and cluster.kube_proxy:
            return {}
        try:
            return await addonrecord.read_record(await self.connect(name))
        except addonrecord.AddonError as exc:
            self._emit(name, "addons", EventKind.WARN, f"cannot read the addon record: {exc}")
            return {}

    def _emit(self, node: str | None, phase: str, kind: EventKind, message: str = "") -> None:
        self.sink.emit(Event(node, phase, kind, message))
