"""Secrets never reach a log, the terminal or a JSON report: one choke point for all output.

Two nets: the exact values a run minted or read (registered with :meth:`Redactor.add`), and
the kubeadm layer's patterns for secrets nobody registered (a token in kubeadm's own output, a
key echoed back). Every reporter and the logging filter pass text through here.

A secret over several lines (a PEM key) is registered line by line too, because output reaches
the reporters one line at a time. And since what a node prints is not to be trusted, control
characters are escaped here as well: an escape sequence in a version string or a log line
would otherwise drive the operator's terminal.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

from k8slk_ops import kubeadm

REPLACEMENT = "<redacted>"
_MIN_LITERAL = 6  # shorter values would blank out ordinary words
# C0 controls but tab and newline, DEL, C1 controls, and Unicode's invisible reordering marks.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with every control character written out (``\\x1b``), newlines and tabs kept."""
    return _CONTROL.sub(_escape_one, text)


def _escape_one(m: re.Match[str]) -> str:
    char = m.group()
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class Redactor:
    """Thread-safe set of secrets plus pattern redaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None

    def add(self, secret: str) -> None:
        """Hide ``secret`` from now on; each line of a multi-line one is hidden on its own."""
        parts = {secret.strip(), *(line.strip() for line in secret.splitlines())}
        fresh = {p for p in parts if len(p) >= _MIN_LITERAL}
        with self._lock:
            fresh -= self._secrets
            if not fresh:
                return
            self._secrets |= fresh
            # Longest first, so a secret containing another is hidden whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._literal = re.compile("|".join(re.escape(s) for s in ordered))

    def redact(self, text: str) -> str:
        """``text`` as it may leave the program: secrets replaced, control characters escaped.

        Registered values and patterns are all found in the original text and their spans
        merged: replacing one first could hide what the other needs to match (a registered
        PEM header, the start of another key)."""
        spans: list[tuple[int, int]] = []
        if kubeadm.may_hold_secret(text):  # most text holds none: one pass says so
            spans = [m.span("secret") for p in kubeadm.secret_patterns() for m in p.finditer(text)]
        literal = self._literal
        if literal is not None:
            spans.extend(m.span() for m in literal.finditer(text))
        return escape_controls(_replace_spans(text, spans) if spans else text)

    def redact_lines(self, lines: Sequence[str]) -> list[str]:
        """Lines kept together (a log tail) redacted as one text, then split again: a secret
        split over lines (a key on the line after ``Using certificate key:``, a PEM block)
        is found whole, as in a ``run`` step's output. A hidden block becomes one line."""
        return self.redact("\n".join(lines)).split("\n") if lines else []

    def redact_obj(self, value: Any) -> Any:
        """The same shape as ``value`` (JSON-like), every string redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_obj(v) for v in value]
        return value


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span (overlapping ones merged) replaced by REPLACEMENT."""
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if end <= pos:
            continue
        if start < pos:  # overlaps the previous span: extend it
            pos = end
            continue
        out.append(text[pos:start])
        out.append(REPLACEMENT)
        pos = end
    out.append(text[pos:])
    return "".join(out)


class RedactingFilter(logging.Filter):
    """Redacts a record's message and arguments before any handler formats it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redactor.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
