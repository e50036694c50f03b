"""Two locks keep two runs from driving one cluster at once.

The local lock (``flock`` on a file under the user's cache dir) stops two runs from this
machine; the cluster lock (a file created exclusively in the primary's tmpfs ``/run``) stops runs
from different machines, and a node reboot clears a stale one. Both record who holds them so a
refusal can name the holder; ``--break-lock`` removes a stale cluster lock on purpose.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import hashlib
import json
import os
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from k8slk_ops import paths
from k8slk_ops.errors import CannotStart, LockHeld
from k8slk_ops.node import LinuxKitNode


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
    def decode(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(**data)
        except (ValueError, TypeError):
            return None

    def describe(self) -> str:
        age = int(time.time() - self.since)
        return (
            f"run {self.run_id} ({self.command}) by {self.user}@{self.host} pid {self.pid}, "
            f"started {age}s ago"
        )


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
            other = Holder.decode(text)
            who = other.describe() if other else "another run"
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

    async def acquire(self, break_lock: bool = False) -> None:
        if break_lock:
            await self.node.remove_file(paths.LOCK_FILE)
        argv = ["sh", "-c", _TAKE, "sh", self.holder.encode(), paths.LOCK_FILE]
        result = await self.node.shell(argv)
        out = result.stdout.decode(errors="replace").strip()
        if out == "taken":
            self.held = True
            return
        other = Holder.decode(out)
        who = other.describe() if other else f"an unknown holder ({out[:80]!r})"
        raise LockHeld(
            f"the cluster is locked on {self.node.name} ({paths.LOCK_FILE}) by {who}; if that run "
            "is gone, re-run with --break-lock"
        )

    async def release(self) -> None:
        if self.held:
            argv = ["sh", "-c", _RELEASE, "sh", f'"run_id": "{self.holder.run_id}"', paths.LOCK_FILE]
            await self.node.shell(argv)
            self.held = False
