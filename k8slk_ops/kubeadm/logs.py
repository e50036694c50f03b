"""The node's kubeadm log: its line format and what the trigger script's lines mean.

memlogd writes every line as ``<RFC3339> <name>.out <message>`` and cuts lines at 1024 bytes,
so a reader must accept cut lines and lines with no prefix at all. ``KubeadmLogState`` is fed
those lines one by one (from ``tail -F`` or from a file read at once) and says where the node's
one-shot kubeadm task is; it does no I/O, so the same logic serves the live follow, the status
table and the tests.
"""

from __future__ import annotations

import collections
import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from k8slk_ops.kubeadm.failures import classify_kubeadm_error

LOG_LINE_LIMIT = 1024

# What kubeadm.sh prints, in order (linuxkit-node-contract.md).
CONFIGURED_LINE = "Kubernetes Node already has kubelet configuration"
WAITING_LINE = "Waiting for /run/kubeadm-run to exist before running kubeadm commands"
SETTLING_LINE = "sleeping a bit more to make sure file is written"
FOUND_FLAG = "Found kubeadm flag "
UNKNOWN_FLAG = "Unknown kubeadm flag "
COMPLETED_LINE = "kubeadm has completed... removing configuration"

_LINE_RE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})"
    r"(?:\.(?P<frac>\d+))?(?P<tz>[Zz]|[+-]\d{2}:\d{2}) (?P<source>\S+)(?: (?P<message>.*))?",
    re.DOTALL,
)


@dataclass(frozen=True)
class LogLine:
    """One line of a LinuxKit service log. ``time``/``source`` are None for unprefixed lines."""

    time: datetime | None
    source: str | None
    message: str

    def format(self) -> str:
        """The line as memlogd writes it (the inverse of :func:`parse_log_line`)."""
        if self.time is None or self.source is None:
            return self.message
        return f"{format_time(self.time)} {self.source} {self.message}"


def format_time(t: datetime) -> str:
    """RFC 3339 with ``Z`` for UTC and a fraction only when there is one."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    offset = t.utcoffset() or timedelta(0)
    if not offset:
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _time(m: re.Match[str]) -> datetime | None:
    try:
        year, month, day = (int(p) for p in m["date"].split("-"))
        micro = int((m["frac"] or "0")[:6].ljust(6, "0"))
        tz_text = m["tz"]
        if tz_text in ("Z", "z"):
            tz = UTC
        else:
            sign = -1 if tz_text[0] == "-" else 1
            hours, minutes = int(tz_text[1:3]), int(tz_text[4:6])
            if hours > 23 or minutes > 59:
                return None
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return datetime(year, month, day, int(m["h"]), int(m["m"]), int(m["s"]), micro, tzinfo=tz)
    except ValueError:
        return None


def parse_log_line(line: str) -> LogLine:
    """Split a log line; anything that is not ``<time> <source> <message>`` is all message.

    Only the line end is removed: trailing spaces are part of the message (kubeadm's join
    commands end with one).
    """
    text = line.removesuffix("\n").removesuffix("\r")
    m = _LINE_RE.fullmatch(text)
    if m is None:
        return LogLine(None, None, text)
    when = _time(m)
    if when is None:
        return LogLine(None, None, text)
    return LogLine(when, m["source"], m["message"] or "")


def log_message(line: str) -> str:
    """The message of a log line (the line itself when it has no prefix)."""
    return parse_log_line(line).message


class KubeadmPhase(enum.StrEnum):
    """Where the one-shot kubeadm task is, as far as its log tells."""

    STARTING = "starting"  # nothing from the script yet
    WAITING = "waiting"  # polling for the trigger file: can be triggered
    SETTLING = "settling"  # trigger seen; the script sleeps 5 s before reading it
    RUNNING = "running"  # kubeadm init/join is running
    COMPLETED = "completed"  # the only success signal
    FAILED = "failed"  # the task stopped without the completed line
    UNKNOWN_FLAG = "unknown-flag"  # the trigger held something other than init/join
    ALREADY_CONFIGURED = "already-configured"  # the marker existed at boot: kubeadm never runs


TERMINAL = frozenset(
    {
        KubeadmPhase.COMPLETED,
        KubeadmPhase.FAILED,
        KubeadmPhase.UNKNOWN_FLAG,
        KubeadmPhase.ALREADY_CONFIGURED,
    }
)


class KubeadmLogState:
    """A state machine fed the kubeadm log line by line.

    A new ``Waiting for ...`` line starts a new attempt (the task was restarted), so feeding a
    whole log leaves the state of the latest attempt. The last ``keep`` messages are kept for
    error reports; kubeadm's own output of the current attempt is kept (bounded) to name the
    reason of a failure.
    """

    def __init__(self, keep: int = 40, keep_output: int = 400) -> None:
        self.phase = KubeadmPhase.STARTING
        self.flag: str | None = None
        self.reason: str | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=keep)
        self._output: collections.deque[str] = collections.deque(maxlen=keep_output)

    @property
    def tail(self) -> list[str]:
        """The last messages seen (without their time and source prefix)."""
        return list(self._tail)

    @property
    def output(self) -> list[str]:
        """What kubeadm itself printed in the current attempt."""
        return list(self._output)

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL

    @property
    def ok(self) -> bool:
        return self.phase is KubeadmPhase.COMPLETED

    @property
    def failed(self) -> bool:
        return self.phase in (KubeadmPhase.FAILED, KubeadmPhase.UNKNOWN_FLAG)

    def feed(self, line: str) -> KubeadmPhase:
        """Take one log line (with or without its prefix); return the phase after it."""
        message = log_message(line)
        self._tail.append(message)
        if message.startswith(WAITING_LINE):
            self.phase = KubeadmPhase.WAITING
            self.flag = self.reason = None
            self._output.clear()
        elif message.startswith(CONFIGURED_LINE):
            self.phase = KubeadmPhase.ALREADY_CONFIGURED
            self.reason = "the node already has kubelet configuration: kubeadm will not run"
        elif message.startswith(SETTLING_LINE) and self.phase in (
            KubeadmPhase.STARTING,
            KubeadmPhase.WAITING,
        ):
            self.phase = KubeadmPhase.SETTLING
        elif message.startswith(FOUND_FLAG) and not self.done:
            self.phase = KubeadmPhase.RUNNING
            self.flag = message[len(FOUND_FLAG) :]
        elif message.startswith(UNKNOWN_FLAG) and not self.done:
            self.phase = KubeadmPhase.UNKNOWN_FLAG
            self.flag = message[len(UNKNOWN_FLAG) :]
            self.reason = (
                f"unknown kubeadm flag {self.flag!r}: the trigger file must hold init or join"
            )
        elif message.startswith(COMPLETED_LINE) and self.phase is not KubeadmPhase.FAILED:
            self.phase = KubeadmPhase.COMPLETED
            self.reason = None
        elif self.phase is KubeadmPhase.RUNNING:
            self._output.append(message)
        return self.phase

    def feed_all(self, lines: list[str] | str) -> KubeadmPhase:
        """Feed many lines (a list, or one text to split)."""
        for line in lines.splitlines() if isinstance(lines, str) else lines:
            self.feed(line)
        return self.phase

    def task_stopped(self) -> KubeadmPhase:
        """The caller saw the kubeadm task STOPPED: without the completed line, that is failure.

        ``kubeadm.sh`` runs under ``sh -e``: a failing kubeadm ends the script silently, so the
        stop itself is the failure signal and kubeadm's output says why.
        """
        if self.phase is KubeadmPhase.RUNNING:
            self.phase = KubeadmPhase.FAILED
            self.reason = classify_kubeadm_error(self.output)
        elif self.phase in (KubeadmPhase.WAITING, KubeadmPhase.SETTLING):
            self.phase = KubeadmPhase.FAILED
            self.reason = "the kubeadm task stopped before kubeadm ran"
        elif self.phase is KubeadmPhase.STARTING:
            self.phase = KubeadmPhase.FAILED
            self.reason = "the kubeadm task stopped without a line in its log"
        return self.phase
