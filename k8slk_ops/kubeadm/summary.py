"""How a node's output is cut for a report: one rule for every failure message and log tail.

A failed command's reason is, in the tools a node runs, its last words: kubectl ends on its
``error: ...`` line, kubeadm on ``error execution phase ...`` followed by a hint about stack
traces, a shell on ``sh: ...``. So a report's one-line reason (``failure_summary``) is the
output's last line that says something, the hint skipped, whitespace collapsed and cut to
``SUMMARY_CHARS``; and a report's block of the node's own lines (``failure_tail``) is the last
``TAIL_LINES`` lines. Log prefixes are dropped from both (the report has its own times).
"""

from __future__ import annotations

from collections.abc import Iterable

from k8slk_ops.kubeadm.logs import log_message

SUMMARY_CHARS = 300
TAIL_LINES = 15
NO_OUTPUT = "no output"

# Lines kubeadm prints after its error that name no cause.
_NOISE = ("To see the stack trace of this error execute with",)


def _lines(output: str | bytes | Iterable[str]) -> list[str]:
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    if isinstance(output, str):
        return [log_message(line) for line in output.splitlines()]
    return [log_message(line) for chunk in output for line in (chunk.splitlines() or [""])]


def clip(text: str, limit: int = SUMMARY_CHARS) -> str:
    """``text`` on one line, runs of whitespace made one space, at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def failure_summary(output: str | bytes | Iterable[str], *, limit: int = SUMMARY_CHARS) -> str:
    """The one line a report gives of a failed command's output (``no output`` for none)."""
    for line in reversed(_lines(output)):
        text = line.strip()
        if text and not text.startswith(_NOISE):
            return clip(text, limit)
    return NO_OUTPUT


def failure_tail(output: str | bytes | Iterable[str], n: int = TAIL_LINES) -> list[str]:
    """The node's last ``n`` lines of ``output`` for a report, blank ones at the end dropped."""
    lines = _lines(output)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines[-n:] if n > 0 else []
