"""Starting the fleet in the background and stopping it, as two separate commands.

``up`` starts ``serve`` in a new session and waits for the word ``ready`` on a pipe (an event,
not a guess); ``down`` sends SIGTERM and waits on a pidfd for the process to end, then reads the
counters it wrote on the way out.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.fleet import layout

ROOT = Path(__file__).resolve().parents[2]


class FleetError(Exception):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_fleet(pid: int, directory: Path) -> bool:
    """The pid is our serve process for this directory (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"tests.fleet" in cmdline and str(directory).encode() in cmdline


def running_pid(directory: Path) -> int | None:
    try:
        pid = int((directory / layout.PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) and _is_fleet(pid, directory) else None


def start(directory: Path, timeout: float = 300.0) -> int:
    """Start ``serve`` for DIR/fleet.json; return its pid once every node listens."""
    if running_pid(directory) is not None:
        raise FleetError(f"a fleet is already running for {directory}")
    read_end, write_end = os.pipe()
    log = open(directory / layout.LOG_FILE, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fleet", "serve", "--dir", str(directory),
             "--ready-fd", str(write_end)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    finally:
        os.close(write_end)
        log.close()
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while b"\n" not in got:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                proc.kill()
                raise FleetError(f"the fleet did not get ready within {timeout:.0f} s")
            chunk = os.read(read_end, 64)
            if not chunk:
                break
            got += chunk
    finally:
        os.close(read_end)
    if not got.startswith(b"ready"):
        proc.wait()
        tail = (directory / layout.LOG_FILE).read_text(errors="replace")[-2000:]
        raise FleetError(f"the fleet failed to start (exit {proc.returncode}):\n{tail}")
    layout.write_atomic(directory / layout.PID_FILE, f"{proc.pid}\n")
    return proc.pid


def stop(directory: Path, timeout: float = 30.0) -> dict[str, Any]:
    """Stop the fleet of DIR; returns the counters it wrote as it stopped ({} if none)."""
    pid = running_pid(directory)
    if pid is not None:
        fd = os.pidfd_open(pid)
        try:
            os.kill(pid, signal.SIGTERM)
            if not select.select([fd], [], [], timeout)[0]:
                os.kill(pid, signal.SIGKILL)
                select.select([fd], [], [], 5.0)
        finally:
            os.close(fd)
    (directory / layout.PID_FILE).unlink(missing_ok=True)
    try:
        data: dict[str, Any] = json.loads((directory / layout.STATS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def free_port(address: str = "127.1.0.1") -> int:
    """A port the kernel just handed out as ephemeral on ``address``: free there right now,
    and, being in the ephemeral range, unlikely to be anyone's fixed port."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port
