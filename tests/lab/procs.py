"""Processes of the lab's nodes: start them into a node's cgroups, find them, stop them.

Every process of a node (the mount namespace holder, sshd, containerd, its shims, the
containers) lives under one cgroup per node (``k8slk-lab-S/NAME``), so the lab can find all of
them by PID, measure them, and stop them all, whichever process started them and even after
the process that started them has exited.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The hierarchies a node's own daemons are placed in: pids to find every process, memory to
# measure them. runc places the containers in every hierarchy itself.
TRACKING = ("pids", "memory")
_JOIN = 'for f in $LAB_CGROUPS; do echo $$ > "$f"; done; unset LAB_CGROUPS; exec "$@"'
BUSYBOX = "/usr/bin/busybox"


def cgroup_dirs(path: str) -> list[Path]:
    """The directories of cgroup ``path`` (e.g. ``k8slk-lab-3/cp-1/holder``) in the tracking
    hierarchies that this machine has."""
    return [CGROUP_ROOT / h / path for h in TRACKING if (CGROUP_ROOT / h).is_dir()]


def spawn(
    argv: Sequence[str],
    cgroup: str,
    env: Mapping[str, str],
    stdout: int | None = None,
    stderr: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` already inside ``cgroup``: a tiny shell joins the cgroup and then execs,
    so not even the first fork of the program can escape. The process gets its own session
    so that a Ctrl-C in the terminal that ran ``up`` does not reach the node."""
    procs = []
    for d in cgroup_dirs(cgroup):
        d.mkdir(parents=True, exist_ok=True)
        procs.append(str(d / "cgroup.procs"))
    return subprocess.Popen(
        [BUSYBOX, "sh", "-c", _JOIN, "lab-start", *argv],
        env={**env, "LAB_CGROUPS": " ".join(procs)},
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
        start_new_session=True,
    )


def pids_in(cgroup: str) -> list[int]:
    """Every PID in ``cgroup`` and below it (read from the pids hierarchy)."""
    dirs = cgroup_dirs(cgroup)
    if not dirs or not dirs[0].is_dir():
        return []
    found: list[int] = []
    for sub, _, _ in os.walk(dirs[0]):
        with contextlib.suppress(OSError):
            found += [int(p) for p in Path(sub, "cgroup.procs").read_text().split()]
    return found


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat): with the PID it
    identifies a process for good, so a recycled PID is never taken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def alive(pid: int, started: int | None = None) -> bool:
    """True while the process runs (a zombie has finished); with ``started``, only if it is
    still the same process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def command_name(pid: int) -> str:
    """The process's name (``/proc/PID/comm``), "" when it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def is_apiserver(pid: int) -> bool:
    """The process is an API server (the double, started by the kubelet double)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a.endswith(b"kube-apiserver") for a in argv[:2])


def terminate_and_wait(pids: Iterable[int], timeout: float) -> list[int]:
    """SIGTERM every process and wait for their exits; the PIDs still alive at the deadline."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return wait_exit(pids, timeout)


def kill_and_wait(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """SIGKILL every process and wait for their exits. Returns the PIDs still alive at the
    deadline."""
    return wait_exit(pids, timeout, kill=True)


def wait_exit(pids: Iterable[int], timeout: float, kill: bool = False) -> list[int]:
    """Wait for every process to exit, each on a pidfd (an event, not a poll of /proc),
    sending SIGKILL first if ``kill``. Returns the PIDs still alive at the deadline."""
    fds: dict[int, int] = {}
    for pid in set(pids):
        try:
            fds[pid] = os.pidfd_open(pid)
        except OSError:
            continue  # already gone
        if kill:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fds[pid], signal.SIGKILL)
    deadline = time.monotonic() + timeout
    poller = select.poll()
    for fd in fds.values():
        poller.register(fd, select.POLLIN)
    waiting = dict(fds)
    try:
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                waiting = {p: f for p, f in waiting.items() if f != fd}
    finally:
        for fd in fds.values():
            os.close(fd)
    return sorted(waiting)


def stop_cgroup(cgroup: str, timeout: float = 10.0) -> None:
    """Kill every process in ``cgroup`` and below, again and again until none is left (a
    process may fork while we kill its parent), then wait for them to be gone."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in pids_in(cgroup) if alive(p)]
        if not pids:
            return
        kill_and_wait(pids, max(0.1, deadline - time.monotonic()))
        if time.monotonic() > deadline:
            left = [p for p in pids_in(cgroup) if alive(p)]
            if left:
                raise OSError(errno.EBUSY, f"processes {left} in cgroup {cgroup} survive SIGKILL")
            return


def remove_cgroup(cgroup: str, timeout: float = 10.0) -> None:
    """Remove ``cgroup`` and everything under it in every hierarchy (runc creates the
    containers' cgroups in all of them). Processes must be gone first.

    A killed process stays listed in its cgroup until its parent (or init, once the parent is
    gone too) reaps it, so a directory can be busy for a moment after every process has died:
    that is retried until ``timeout``; cgroup v1 gives no event to wait on for it."""
    deadline = time.monotonic() + timeout
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / cgroup
        if not top.is_dir():
            continue
        for sub, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            while True:
                try:
                    os.rmdir(sub)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)


def rss_bytes(pids: Iterable[int]) -> int:
    """The sum of the resident set sizes of ``pids`` (VmRSS), in bytes."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total
