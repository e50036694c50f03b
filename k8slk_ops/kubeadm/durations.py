"""Go durations (``30m``, ``1h30m``, ``90s``): every timeout and TTL the tool takes.

Parsed here so that a timeout or TTL is checked when a playbook or the command line is read,
not when kubeadm or kubectl refuses it on a node halfway through a run, and so that a run knows
when the token it minted expires. What reaches kubeadm and kubectl is the normalised form
(:func:`format_duration`), never the text a user typed.
"""

from __future__ import annotations

import math
import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# A number and what follows it up to the next digit: Go reads the unit the same way.
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([^\d.]*)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration; ValueError with Go's wording for anything else."""
    value = text.strip()
    sign = 1.0
    if value[:1] in "+-" and value:
        sign = -1.0 if value[0] == "-" else 1.0
        value = value[1:]
    if value == "0":
        return 0.0
    if not value:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(value):
        match = _PART.match(value, pos)
        if match is None:
            raise ValueError(f'time: invalid duration "{text}"')
        unit = match.group(2)
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(match.group(1)) * _UNITS[unit]
        pos = match.end()
    return sign * total


def parse_timeout(value: object) -> float:
    """Seconds in a timeout or TTL as a user writes it: a Go duration (``90s``, ``10m``,
    ``1h30m``) or a bare number of seconds (``600``, ``1.5``).

    Refused, with a message meant to be shown after the file:line or the flag: anything that is
    not positive and finite (zero, negative, ``inf``, ``nan``), spaces anywhere, trailing
    garbage, booleans. The result is what every caller works with; kubeadm and kubectl are
    handed :func:`format_duration` of it, never the user's text.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("a duration is a Go duration such as 90s, 10m or 1h30m, or seconds")
    seconds = _seconds_of_text(value) if isinstance(value, str) else float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration")
    if seconds <= 0:
        raise ValueError(f"{value!r}: a duration must be positive")
    return seconds


def _seconds_of_text(text: str) -> float:
    if text != text.strip() or " " in text:
        raise ValueError(f"{text!r}: a duration has no spaces")
    if _NUMBER.fullmatch(text):
        return float(text)
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{exc} (a Go duration such as 90s, 10m or 1h30m, or seconds)") from None


_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def format_duration(seconds: float) -> str:
    """``seconds`` as Go's ``time.Duration.String()`` prints it (``1m30s``, ``2h0m0s``,
    ``500ms``): the one normalised form handed to kubeadm and kubectl."""
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return sign + _decimal(nanos, size) + unit
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _decimal(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
