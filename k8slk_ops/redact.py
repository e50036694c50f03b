"""Secrets never reach a log, the terminal or a JSON report: one choke point for all output.

Two nets: the exact values a run minted or read (registered with :meth:`Redactor.add`), and
the kubeadm layer's patterns for secrets nobody registered (a token in kubeadm's own output, a
key echoed back). Every reporter and the logging filter pass text through here.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from k8slk_ops import kubeadm

REPLACEMENT = "<redacted>"
_MIN_LITERAL = 6  # shorter values would blank out ordinary words


class Redactor:
    """Thread-safe set of secrets plus pattern redaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None

    def add(self, secret: str) -> None:
        secret = secret.strip()
        if len(secret) < _MIN_LITERAL:
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets.add(secret)
            # Longest first, so a secret containing another is hidden whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._literal = re.compile("|".join(re.escape(s) for s in ordered))

    def redact(self, text: str) -> str:
        literal = self._literal
        if literal is not None:
            text = literal.sub(REPLACEMENT, text)
        return kubeadm.redact(text, REPLACEMENT)

    def redact_obj(self, value: Any) -> Any:
        """The same shape as ``value`` (JSON-like), every string redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_obj(v) for v in value]
        return value


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
