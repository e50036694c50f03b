"""The node's kubeadm log: its line format and the trigger script's lines (docs/node.md).

memlogd writes every line as ``<RFC3339> <name>.out <message>`` and cuts lines at 1024 bytes,
so a reader must accept cut lines and lines with no prefix at all. This module is the one place
that knows that prefix (``LOG_PREFIX``) and the lines ``kubeadm.sh`` prints (``MARKER_LINES``);
``kubeadm.taskstate`` reads them into the task's state, ``kubeadm.failures`` and
``kubeadm.secrets`` strip or skip the prefix with the pattern defined here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

# What kubeadm.sh prints, in order (docs/node.md).
CONFIGURED_LINE = "Kubernetes Node already has kubelet configuration"
WAITING_LINE = "Waiting for /run/kubeadm-run to exist before running kubeadm commands"
SETTLING_LINE = "sleeping a bit more to make sure file is written"
FOUND_FLAG = "Found kubeadm flag "
UNKNOWN_FLAG = "Unknown kubeadm flag "
COMPLETED_LINE = "kubeadm has completed... removing configuration"

# Every line of the script's own: a new attempt starts at the first two; the facts probe always
# ships all of them, however much kubeadm printed in between.
ATTEMPT_LINES = (WAITING_LINE, CONFIGURED_LINE)
MARKER_LINES = (*ATTEMPT_LINES, SETTLING_LINE, FOUND_FLAG, UNKNOWN_FLAG, COMPLETED_LINE)

# ``<RFC3339 time> <source>`` and the space after it: the one pattern of the log prefix.
_PREFIX = (
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})"
    r"(?:\.(?P<frac>\d+))?(?P<tz>[Zz]|[+-]\d{2}:\d{2}) (?P<source>\S+)"
)
_LINE_RE = re.compile(_PREFIX + r"(?: (?P<message>.*))?", re.DOTALL)
# The same prefix without its named groups, to embed in other patterns (followed by its space).
LOG_PREFIX = re.sub(r"\(\?P<\w+>", "(?:", _PREFIX) + " "


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


_TIME_GROUPS = ("date", "h", "m", "s", "frac", "tz")


@functools.lru_cache(maxsize=4096)
def _time(parts: tuple[str, str, str, str, str | None, str]) -> datetime | None:
    """The prefix's time (its groups ``_TIME_GROUPS``), or None when it is no real time.

    Cached: the lines of one second share it, and a thousand nodes' logs were written in the
    same few seconds; a datetime is immutable, so the same one is handed out again."""
    date, hour, minute, second, frac, tz_text = parts
    try:
        year, month, day = (int(p) for p in date.split("-"))
        micro = int((frac or "0")[:6].ljust(6, "0"))
        if tz_text in ("Z", "z"):
            tz = UTC
        else:
            sign = -1 if tz_text[0] == "-" else 1
            hours, minutes = int(tz_text[1:3]), int(tz_text[4:6])
            if hours > 23 or minutes > 59:
                return None
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return datetime(year, month, day, int(hour), int(minute), int(second), micro, tzinfo=tz)
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
    when = _time(m.group(*_TIME_GROUPS))
    if when is None:
        return LogLine(None, None, text)
    return LogLine(when, m["source"], m["message"] or "")


def log_message(line: str) -> str:
    """The message of a log line (the line itself when it has no prefix)."""
    return parse_log_line(line).message
