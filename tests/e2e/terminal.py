"""A program run on a pseudo-terminal of a set size, seen through a terminal emulator (pyte).

The program gets a real pty as stdin, stdout and stderr, so it takes itself to be on a
terminal; everything it writes goes through pyte, which keeps the screen a person would see and
the lines that scrolled off its top. Each time the output pauses, a callback gets the
screen.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyte

QUIET = 0.03  # seconds without output after which the screen is taken as drawn


@dataclass(frozen=True)
class Frame:
    """The screen at one moment: its lines, how many lines had scrolled off its top, and the
    first line that ever did."""

    lines: list[str]
    scrolled: int
    first_scrolled: str | None

    @property
    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines).rstrip("\n")


def run_on_terminal(
    command: list[str],
    *,
    columns: int,
    rows: int,
    cwd: Path,
    env: dict[str, str],
    on_frame: Callable[[Frame], None],
    timeout: float = 120,
) -> tuple[int, Frame]:
    """Run ``command`` on a ``columns`` x ``rows`` pty; return its exit code and the last screen.
    ``on_frame`` sees the screen each time the program paused its output."""
    screen = pyte.HistoryScreen(columns, rows, history=100_000)
    stream = pyte.ByteStream(screen)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    # The size comes from the pty alone; nothing tells rich to treat it as anything but a tty.
    unset = ("COLUMNS", "LINES", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    env = {k: v for k, v in env.items() if k not in unset}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)

    def frame() -> Frame:
        top = screen.history.top
        first = "".join(top[0][x].data for x in range(columns)).rstrip() if top else None
        return Frame(list(screen.display), len(top), first)

    try:
        drawn, quiet_since = True, time.monotonic()
        while True:
            # A frame is whole once the program has paused: output that stops for QUIET seconds.
            ready, _, _ = select.select([master], [], [], QUIET)
            if not ready:
                if not drawn:
                    on_frame(frame())
                    drawn = True
                if time.monotonic() - quiet_since > timeout:
                    raise TimeoutError(f"{command[:4]} wrote nothing for {timeout} s")
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the program ended and the pty closed
                break
            if not chunk:
                break
            stream.feed(chunk)
            drawn, quiet_since = False, time.monotonic()
        if not drawn:
            on_frame(frame())
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, frame()
