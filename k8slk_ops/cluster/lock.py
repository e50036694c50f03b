"""Two locks keep two runs from driving one cluster at once.

The local lock (``flock`` on a file under the user's cache dir) stops two runs from this
machine. The cluster lock stops runs from different machines, and lives where every run meets
it whatever command it runs and whichever control plane it works through: once the cluster
exists, a Lease in kube-system (``LeaseLock``), created only if absent and renewed while the run
lasts; before it exists, a file created exclusively in the tmpfs ``/run`` of every reachable
control plane, in inventory order (``FileLocks``; a node reboot clears a stale one). Every lock
records who holds it so a refusal can name the holder (a record that is not one is named as
it is, and breakable); ``--break-lock`` removes a stale cluster lock on purpose, says whose,
and refuses unless given twice a Lease seen renewed while it watched it, or a lock held by a
live process of this host.

Both cluster locks are one ``RunLock`` (acquire, verify, renew, release); a run holds either
through ``HeldLock``, an ``async with`` that takes it, renews it while the run lasts and
releases it in any case, and answers the check before every changing stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import getpass
import hashlib
import json
import os
import socket
import stat
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from k8slk_ops.base.errors import CannotStart, LockHeld
from k8slk_ops.base.nextstep import NextStep
from k8slk_ops.cluster.membership import NODE_LIST_TIMEOUT, etcd_did_not_answer, request_timeout
from k8slk_ops.node import paths
from k8slk_ops.node.linuxkit import LinuxKitNode
from k8slk_ops.ssh import CommandResult, SSHError

# How long a read of the Lease waits for etcd to elect a leader again. etcd 3.4 and 3.5 take
# about one election timeout (a second by default) after losing their leader, but on a starved
# machine the survivors miss heartbeats and elect again and again: 20 s was seen to be too short
# right after a control plane that led etcd was reset. A lost quorum is reported this much later.
ETCD_SETTLE = 45.0


@dataclass(frozen=True)
class Holder:
    run_id: str
    user: str
    host: str
    pid: int
    command: str
    since: float

    @classmethod
    def me(cls, run_id: str, command: str) -> Holder:
        return cls(run_id, getpass.getuser(), socket.gethostname(), os.getpid(), command, time.time())

    def encode(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def read(cls, text: str) -> Holder | UnreadableHolder:
        """The holder a lock records, or what is wrong with the record. A record is text any
        process (or person) may have written, so each field is checked for its type before
        anything computes with it: ``"since": "x"`` is a broken record to name and to let
        ``--break-lock`` remove, not a TypeError in the middle of a refusal."""
        if not text.strip():
            return UnreadableHolder(text, "empty")
        try:
            record = _HolderRecord.model_validate_json(text)
        except ValidationError as exc:
            return UnreadableHolder(text, _first_problem(exc))
        return cls(record.run_id, record.user, record.host, record.pid, record.command,
                   record.since)

    @classmethod
    def decode(cls, text: str) -> Holder | None:
        """The holder, or None for a record that is not one (``read`` says why)."""
        other = cls.read(text)
        return other if isinstance(other, Holder) else None

    def describe(self) -> str:
        """Who, and since when: an age on this host's own clock; for another host, the time
        its clock wrote (an age from two clocks would carry their skew)."""
        if self.host == socket.gethostname():
            started = f"started {int(time.time() - self.since)}s ago"
        else:
            started = f"started at {_micro_time(self.since)} by its own clock"
        who = f"run {self.run_id} ({self.command}) by {self.user}@{self.host} pid {self.pid}"
        return f"{who}, {started}"


class _HolderRecord(BaseModel):
    """A holder record as stored: strict JSON types (no "12" for a pid, no true for one), a
    finite ``since``; fields added by a later version are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    run_id: str
    user: str
    host: str
    pid: int
    command: str
    since: float = Field(allow_inf_nan=False)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


@dataclass(frozen=True)
class UnreadableHolder:
    """A lock whose holder record is broken (cut short, edited by hand, written by something
    else): it still locks, is named as it is, and ``--break-lock`` removes it."""

    text: str
    why: str

    def describe(self) -> str:
        if self.why == "empty":
            return "a holder that left no record"
        return f"an unreadable holder record {self.text[:120]!r} ({self.why})"


class LocalLock:
    """An exclusive, non-blocking flock for one cluster on this machine."""

    def __init__(self, key: str, holder: Holder, directory: Path | None = None) -> None:
        base = directory or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.path = base / "k8slk-ops" / "locks" / f"{digest}.lock"
        self.holder = holder
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 4096, 0).decode(errors="replace")
            os.close(fd)
            who = Holder.read(text).describe()
            raise LockHeld(f"the cluster is locked on this machine by {who}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.holder.encode().encode(), 0)
        self._fd = fd

    def _open(self) -> int:
        """The lock file, never through a symbolic link (a planted one would have its target
        truncated) and only when it is a regular file; created 0600 in a 0700 directory."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CannotStart(
                    f"the local lock file {self.path} is a symbolic link; refusing to follow it "
                    "(remove the link)"
                ) from None
            raise CannotStart(f"cannot open the local lock {self.path}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CannotStart(f"the local lock {self.path} is not a regular file; remove it")
        return fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# Create the lock file only if absent (noclobber), atomically; print the holder otherwise.
_TAKE = 'set -C; if { printf "%s" "$1" > "$2"; } 2>/dev/null; then echo taken; else cat "$2"; fi'
_RELEASE = 'if grep -q "$1" "$2" 2>/dev/null; then rm -f "$2"; fi'


class ClusterLock:
    """The lock file on the primary control plane."""

    def __init__(self, node: LinuxKitNode, holder: Holder) -> None:
        self.node = node
        self.holder = holder
        self.held = False

    async def acquire(self, break_lock: int = 0) -> list[str]:
        """Take the lock file; what was broken to take it, in words."""
        broken = []
        if break_lock:
            text = await self.node.read_file(paths.LOCK_FILE)
            if text is not None:
                where = f"the lock file on {self.node.name} ({paths.LOCK_FILE})"
                other = Holder.read(text.decode(errors="replace"))
                broken.append(breaking(other, where, break_lock))
                await self.node.remove_file(paths.LOCK_FILE)
        argv = ["sh", "-c", _TAKE, "sh", self.holder.encode(), paths.LOCK_FILE]
        result = await self.node.shell(argv)
        out = result.stdout.decode(errors="replace").strip()
        if result.exit_status != 0 and not out:
            raise CannotStart(
                f"cannot take the lock file on {self.node.name}: exit status {result.exit_status}"
            )
        if out == "taken":
            self.held = True
            return broken
        who = Holder.read(out).describe()
        raise LockHeld(
            f"the cluster is locked on {self.node.name} ({paths.LOCK_FILE}) by {who}; if that run "
            "is gone, re-run with --break-lock"
        )

    async def release(self) -> None:
        if self.held:
            argv = ["sh", "-c", _RELEASE, "sh", f'"run_id": "{self.holder.run_id}"', paths.LOCK_FILE]
            await self.node.shell(argv)
            self.held = False


# -- breaking a lock --------------------------------------------------------------------------

YOUNG_SECONDS = 3600.0  # a lock younger than this, from this host, by a live pid, is in use


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0 and not isinstance(pid, bool)
    return pid > 0


def breaking(other: Holder | UnreadableHolder | None, what: str, times: int) -> str:
    """What ``--break-lock`` is about to remove, in words; LockHeld when the lock looks in use
    by a live run on this very host and the flag was given only once. A broken holder record
    is broken at once: nothing in it can say the run is alive."""
    if other is None:
        return f"breaking {what}, held by an unreadable holder"
    if isinstance(other, UnreadableHolder):
        return f"breaking {what}, held by {other.describe()}"
    age = time.time() - other.since
    live = other.host == socket.gethostname() and pid_alive(other.pid) and age < YOUNG_SECONDS
    if live and times < 2:
        raise LockHeld(
            f"refusing to break {what}: it is held by {other.describe()}, a process that is "
            "still running on this host; give --break-lock twice to break it anyway"
        )
    return (
        f"breaking {what}, held by {other.command} on {other.host} pid {other.pid} "
        f"(run {other.run_id}, by {other.user}, {int(age)}s old)"
    )


# -- the cluster lock, whichever it is, as a run holds it ---------------------------------------


class RunLock(Protocol):
    """A cluster lock: the lock files before the cluster exists (``FileLocks``), the Lease
    once it does (``LeaseLock``). A run holds one through ``HeldLock``."""

    # What ``--break-lock`` broke to take it, in words (said to the operator and reported).
    broken: list[str]

    async def acquire(self, break_lock: int = 0) -> None:
        """Take it, or raise LockHeld naming the holder (CannotStart when it cannot be read)."""
        ...

    async def verify(self) -> str | None:
        """None while it is still this run's, else why not."""
        ...

    async def renew(self) -> None:
        """Keep it this run's a while longer; LockLost when it no longer is."""
        ...

    async def release(self) -> None:
        """Give it up, if this run holds it."""
        ...

    def gone_with(self, reset: Collection[str]) -> bool:
        """True when it lived on a node of ``reset`` (reset by the run itself): the lock went
        with that node's cluster, on purpose, and is neither checked nor released."""
        ...


class HeldLock:
    """A cluster lock held for one run, as ``async with``: taken on entry, renewed every
    ``RENEW_SECONDS`` while the run lasts, released on exit whatever happens. ``check`` is
    the executor's guard before every changing stage.

    ``reset`` tells which nodes the run has reset so far: a run that resets the control plane
    its Lease is kept through (the last one, or the whole cluster taken apart) loses the lock
    with the cluster, on purpose; that is not a lost lock, and there is nothing to release."""

    def __init__(
        self,
        lock: RunLock,
        *,
        break_lock: int = 0,
        reset: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self.lock = lock
        self.break_lock = break_lock
        self._reset = reset
        self.lost = ""  # why a renewal found the lock no longer the run's
        self._renewer: asyncio.Future[None] | None = None

    @property
    def broken(self) -> list[str]:
        return self.lock.broken

    async def __aenter__(self) -> HeldLock:
        await self.lock.acquire(self.break_lock)
        self._renewer = asyncio.ensure_future(self._keep())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(BaseException):
                await self._renewer
        if not self._taken_apart():
            with contextlib.suppress(Exception):
                await self.lock.release()

    def _taken_apart(self) -> bool:
        return self.lock.gone_with(self._reset())

    async def _keep(self) -> None:
        """Renew the lock until the run ends; a renewal that fails marks the lock lost."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            if self._taken_apart():
                return
            try:
                await self.lock.renew()
            except LockLost as exc:
                self.lost = str(exc)
                return
            except Exception:  # a connection hiccup: the next renewal or the check decides
                continue

    async def check(self) -> str | None:
        """Checked before every changing stage: None while the run holds its lock."""
        if self._taken_apart():
            return None
        if self.lost:
            return self.lost
        try:
            return await self.lock.verify()
        except Exception as exc:
            return f"the lock could not be checked: {exc}"


async def cluster_lock(
    *,
    lease: bool,
    primary: str,
    control_planes: Sequence[str],
    connect: Callable[[str], Awaitable[LinuxKitNode]],
    holder: Holder,
) -> RunLock:
    """The cluster lock a run takes: the Lease through ``primary`` when ``lease`` (the cluster
    exists and its API answers), else the lock files on ``control_planes`` (the reachable ones,
    in inventory order)."""
    if lease:
        return LeaseLock(primary, connect, holder)
    return FileLocks([await connect(n) for n in control_planes], holder)


# -- the lock file on every control plane, before the cluster exists ---------------------------


class FileLocks:
    """Before the cluster exists: the lock file on every reachable control plane, taken in
    inventory order so that two runs meet on the first node they share."""

    def __init__(self, nodes: Sequence[LinuxKitNode], holder: Holder) -> None:
        self.locks = [ClusterLock(n, holder) for n in nodes]
        self.holder = holder
        self.broken: list[str] = []

    async def acquire(self, break_lock: int = 0) -> None:
        try:
            for lock in self.locks:
                self.broken += await lock.acquire(break_lock)
        except BaseException:
            await self.release()
            raise

    async def verify(self) -> str | None:
        """None while every lock file still names this run, else why not."""
        for lock in self.locks:
            text = await lock.node.read_file(paths.LOCK_FILE)
            if text is None:
                return f"the lock file on {lock.node.name} was removed"
            other = Holder.read(text.decode(errors="replace"))
            if not isinstance(other, Holder) or other.run_id != self.holder.run_id:
                return f"the lock file on {lock.node.name} is now held by {other.describe()}"
        return None

    async def renew(self) -> None:
        """A lock file lives until removed (or the node reboots): nothing to renew."""

    async def release(self) -> None:
        for lock in reversed(self.locks):
            with contextlib.suppress(Exception):
                await lock.release()

    def gone_with(self, reset: Collection[str]) -> bool:
        """Lock files live in each node's /run, which a reset leaves: never gone with it."""
        return False


# -- the Lease, once the cluster exists ---------------------------------------------------------

LEASE_NAME = "k8slk-ops-lock"
LEASE_NAMESPACE = "kube-system"
LEASE_SECONDS = 120  # the leaseDurationSeconds the Lease announces to its readers
RENEW_SECONDS = 20.0
# How long ``--break-lock`` watches a Lease for a renewal before it calls its holder gone: one
# renew interval, plus the time a renewal itself takes (a read and a replace, each up to a
# request timeout when etcd is slow), since the holder sleeps RENEW_SECONDS *between* them.
BREAK_WATCH_SECONDS = RENEW_SECONDS + 10.0
BREAK_POLL_SECONDS = 2.0  # how often the Lease is read again while watched


def _micro_time(at: float) -> str:
    try:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError, ValueError):  # a holder's since beyond any calendar
        return f"{at:.0f} (seconds since the epoch)"


@dataclass(frozen=True)
class LeaseState:
    """The Lease as the API server holds it. ``renew_time`` is kept as the holder wrote it: it
    is the holder's clock, compared only with itself (``LeaseLock.renewed_meanwhile``)."""

    holder: Holder | UnreadableHolder
    identity: str
    renew_time: str
    resource_version: str
    body: dict[str, Any]

    @classmethod
    def parse(cls, out: bytes) -> LeaseState:
        try:
            body = json.loads(out.decode())
            spec = body.get("spec") or {}
            identity = str(spec.get("holderIdentity") or "")
            version = str((body.get("metadata") or {}).get("resourceVersion") or "")
            renew_time = str(spec.get("renewTime") or "")
        except (ValueError, AttributeError) as exc:
            raise CannotStart(f"the cluster lock Lease could not be read: {exc}") from None
        return cls(Holder.read(identity), identity, renew_time, version, body)

    def describe(self) -> str:
        """The holder and its last renewal as it wrote it. No "expired" here: the holder's
        clock is not this machine's, and a skew of minutes would make a live run look dead."""
        who = self.holder.describe()
        if self.renew_time:
            who += f", last renewed at {self.renew_time[:40]} by its own clock"
        return who


class LeaseLock:
    """The cluster's lock once it exists: a Lease (coordination.k8s.io/v1) in kube-system,
    created only if absent, renewed while the run lasts, deleted at its end. It lives in the
    cluster, so every run meets it whatever node it works through."""

    where = f"the cluster lock (Lease {LEASE_NAMESPACE}/{LEASE_NAME})"

    def __init__(
        self, node: str, connect: Callable[[str], Awaitable[LinuxKitNode]], holder: Holder
    ) -> None:
        # Reached through the run's current connection to ``node`` each time (a node the run
        # re-dials, after a reboot say, has a new one).
        self.node_name = node
        self._connect = connect
        self.holder = holder
        self.identity = holder.encode()
        self.version = ""
        self.held = False
        self.broken: list[str] = []

    def _manifest(self, version: str = "") -> bytes:
        now = _micro_time(time.time())
        meta: dict[str, Any] = {
            "name": LEASE_NAME,
            "namespace": LEASE_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "k8slk-ops"},
        }
        if version:
            meta["resourceVersion"] = version
        return json.dumps({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": _micro_time(self.holder.since),
                "renewTime": now,
            },
        }).encode()

    async def _kubectl(self, *args: str, data: bytes | None = None) -> CommandResult:
        node = await self._connect(self.node_name)
        return await node.kubelet_exec(
            ["kubectl", *args, request_timeout()], input=data, timeout=NODE_LIST_TIMEOUT
        )

    async def _get_settled(self) -> CommandResult:
        """``kubectl get`` of the Lease, asked again with a growing pause while the API says
        its etcd is between leaders (a member was just removed, a control plane restarts):
        etcd's moment of election is not a lost lock. At most ``ETCD_SETTLE`` seconds."""
        deadline = time.monotonic() + ETCD_SETTLE
        pause = 0.5
        while True:
            result = await self._kubectl(
                "get", "lease", LEASE_NAME, "-n", LEASE_NAMESPACE, "-o", "json"
            )
            if result.exit_status == 0 or not _etcd_unsettled(result):
                return result
            if time.monotonic() + pause > deadline:
                return result
            await asyncio.sleep(pause)
            pause = min(pause * 2, 4.0)

    async def read(self) -> LeaseState | None:
        result = await self._get_settled()
        if result.exit_status != 0:
            if b"NotFound" in result.stderr:
                return None
            raise CannotStart(f"cannot read {self.where}: {_said(result)}")
        return LeaseState.parse(result.stdout)

    async def _create(self) -> bool:
        """True when this run created the Lease; False when it exists already."""
        try:
            result = await self._kubectl(
                "create", "-f", "-", "-o", "json", data=self._manifest()
            )
        except SSHError as exc:
            # The create may or may not have reached the API: take back what may be ours.
            self.held = True
            with contextlib.suppress(Exception):
                await self.release()
            self.held = False
            raise CannotStart(
                f"could not take {self.where} through {self.node_name}: {exc}. Nothing was "
                f"changed; check that {self.node_name} is up and answers SSH, then run again"
            ) from None
        if result.exit_status == 0:
            self.version = LeaseState.parse(result.stdout).resource_version
            return True
        if b"AlreadyExists" in result.stderr:
            return False
        raise CannotStart(f"cannot create {self.where} on {self.node_name}: {_said(result)}")

    async def acquire(self, break_lock: int = 0) -> None:
        if not await self._create():
            state = await self.read()
            if state is not None and not break_lock:
                raise LockHeld(
                    f"the cluster is locked: {self.where} is held by {state.describe()}; if "
                    "that run is gone, re-run with --break-lock"
                )
            taken = state is not None and await self._take_over(state, break_lock)
            if not taken and not await self._create():
                other = await self.read()
                raise LockHeld(f"the cluster is locked: {self.where} was taken meanwhile by "
                               f"{other.describe() if other else 'another run'}")
        self.held = True
        await self._refuse_bootstrap_in_progress(break_lock)

    async def _take_over(self, state: LeaseState, break_lock: int) -> bool:
        """Break another run's Lease (``--break-lock``): True when it is now this run's, False
        when it went away meanwhile (create it then).

        Whether its holder is alive is judged by the Lease alone: renewed (its renewTime or
        resourceVersion moved) while watched for one renew interval, it is. Its renewTime is
        never compared with this machine's clock. A Lease still being renewed, and one held by a
        live process of this very host, are broken only when the flag is given twice. The Lease
        is then replaced over the version last seen, never deleted: a renewal that slips in
        after the last read makes the server refuse, and the live run keeps its lock."""
        said = breaking(state.holder, self.where, break_lock)
        if break_lock < 2:
            latest, renewed = await self.renewed_meanwhile(state)
            if latest is None:
                return False
            if renewed:
                raise LockHeld(
                    f"refusing to break {self.where}: it is held by {latest.describe()}, and "
                    f"its holder renewed it while watched (renewTime {state.renew_time or '-'} "
                    f"-> {latest.renew_time or '-'}, version {state.resource_version} -> "
                    f"{latest.resource_version}): that run is alive. Give --break-lock twice "
                    "to break it anyway"
                )
            state = latest
            said += f"; not renewed in the {BREAK_WATCH_SECONDS:.0f}s watched"
        result = await self._kubectl(
            "replace", "-f", "-", "-o", "json", data=self._manifest(state.resource_version)
        )
        if result.exit_status != 0:
            if b"NotFound" in result.stderr:
                return False
            other = await self.read()
            raise LockHeld(
                f"the cluster is locked: {self.where} changed while it was being broken "
                f"(renewed or taken by {other.describe() if other else 'another run'}): "
                f"{_said(result)}; run again"
            )
        self.version = LeaseState.parse(result.stdout).resource_version
        self.broken.append(said)
        return True

    async def renewed_meanwhile(self, first: LeaseState) -> tuple[LeaseState | None, bool]:
        """The Lease read again every ``BREAK_POLL_SECONDS`` for up to ``BREAK_WATCH_SECONDS``:
        (its latest state, True) as soon as its renewTime or resourceVersion differs from
        ``first``'s, (its latest state, False) when neither moved, (None, False) once it is
        gone. Only the server's own values are compared."""
        deadline = time.monotonic() + BREAK_WATCH_SECONDS
        latest: LeaseState | None = first
        while latest is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return latest, False
            await asyncio.sleep(min(BREAK_POLL_SECONDS, left))
            latest = await self.read()
            if latest is not None and (
                latest.resource_version != first.resource_version
                or latest.renew_time != first.renew_time
            ):
                return latest, True
        return None, False

    async def _refuse_bootstrap_in_progress(self, break_lock: int) -> None:
        """A bootstrap that began before the cluster existed holds lock files, not the Lease."""
        node = await self._connect(self.node_name)
        text = await node.read_file(paths.LOCK_FILE)
        if text is None:
            return
        other = Holder.read(text.decode(errors="replace"))
        if isinstance(other, Holder) and other.run_id == self.holder.run_id:
            return
        if break_lock:
            where = f"the lock file on {self.node_name} ({paths.LOCK_FILE})"
            try:
                self.broken.append(breaking(other, where, break_lock))
            except LockHeld:
                await self.release()
                raise
            await node.remove_file(paths.LOCK_FILE)
            return
        await self.release()
        raise LockHeld(
            f"the cluster is locked on {self.node_name} ({paths.LOCK_FILE}) by "
            f"{other.describe()}; if that run is gone, re-run with --break-lock"
        )

    async def verify(self) -> str | None:
        """None while the Lease is this run's, else why not."""
        try:
            state = await self.read()
        except CannotStart as exc:
            return str(exc)
        if state is None:
            return f"{self.where} was deleted"
        if state.identity != self.identity:
            return f"{self.where} is now held by {state.describe()}"
        return None

    async def renew(self) -> None:
        """Move renewTime on, only over this run's own version of the Lease (the server
        refuses a replace of a version that changed meanwhile)."""
        state = await self.read()
        if state is None or state.identity != self.identity:
            raise LockLost(await self.verify() or f"{self.where} was lost")
        result = await self._kubectl(
            "replace", "-f", "-", "-o", "json", data=self._manifest(state.resource_version)
        )
        if result.exit_status != 0 and (_etcd_unsettled(result) or _api_away(result)):
            # etcd between leaders, or the API gone between the read and the replace (its
            # control plane rebooting in a roll): not another run's lock; the next renewal,
            # or the check before a stage, tells.
            return
        if result.exit_status != 0:
            raise LockLost(f"{self.where} could not be renewed: {_said(result)}")
        self.version = LeaseState.parse(result.stdout).resource_version

    async def _delete(self) -> None:
        result = await self._kubectl(
            "delete", "lease", LEASE_NAME, "-n", LEASE_NAMESPACE, "--ignore-not-found"
        )
        if result.exit_status != 0:
            raise CannotStart(f"cannot delete {self.where}: {_said(result)}")

    async def release(self) -> None:
        if not self.held:
            return
        self.held = False
        state = await self.read()
        if state is not None and state.identity == self.identity:
            await self._delete()

    def gone_with(self, reset: Collection[str]) -> bool:
        """The Lease lives in the cluster reached through ``node_name``: reset, that cluster
        is gone (the last control plane, or the cluster taken apart)."""
        return self.node_name in reset


def lock_next_step(again: str) -> NextStep:
    """What to do about nodes a run left undone because another run holds the cluster lock:
    let that run end, then run again; ``--break-lock`` only for a run that is gone."""
    return NextStep.then(
        "another run holds the cluster lock: let it end (if it is gone, add --break-lock)", again)


class LockLost(Exception):
    """The run's cluster lock is no longer its own."""


def _etcd_unsettled(result: CommandResult) -> bool:
    return etcd_did_not_answer(result.stderr.decode(errors="replace"))


# kubectl's words when no API server answered at all (nothing listening, no route, no reply).
API_AWAY = ("connect: connection refused", "Unable to connect to the server", "i/o timeout",
            "connect: no route to host", "TLS handshake timeout")


def _api_away(result: CommandResult) -> bool:
    said = result.stderr.decode(errors="replace")
    return any(words in said for words in API_AWAY)


def _said(result: CommandResult) -> str:
    text = (result.stderr or result.stdout).decode(errors="replace").strip()
    return text.splitlines()[-1][:200] if text else f"exit status {result.exit_status}"
