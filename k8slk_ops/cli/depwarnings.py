"""Warnings from dependencies: held at start-up, then written to the run's log, never to stderr.

A user's terminal and a cron job's mail should carry the tool's own words only. A dependency's
warning (asyncssh importing cryptography's DSA support makes cryptography 47+ warn ten times at
every start) says nothing the operator can act on, and on a terminal it scrolls the live view.
Python prints warnings to stderr as they happen, most of them while modules are imported, which
is before the command line is parsed and before anyone knows whether there is a log file or
``-v``. So the console entry point calls ``hold()`` before it imports anything else: warnings are
kept (a bounded number). Once a run has set up its logging, ``release()`` writes the kept ones
to the logger ``k8slk_ops.warnings`` at INFO, and every later one as it comes: the log file
receives them, stderr only with ``-v``. A command that sets up no logging (``--version``,
``--help``, ``inventory check``) drops them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import TextIO

LOGGER = "k8slk_ops.warnings"
KEPT = 100  # warnings are deduplicated per place by Python's filters; this bounds the rest

_held: list[str] = []


def _format(message: Warning | str, category: type[Warning], filename: str, lineno: int) -> str:
    return f"{category.__name__}: {message} ({filename}:{lineno})"


def _keep(text: str) -> None:
    if len(_held) < KEPT:
        _held.append(text)


def _to_log(text: str) -> None:
    logging.getLogger(LOGGER).info("%s", text)


def _showing_to(sink: Callable[[str], None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` replacement that hands the formatted warning to ``sink``."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        sink(_format(message, category, filename, lineno))

    return show


_hold = _showing_to(_keep)
_log = _showing_to(_to_log)


def hold() -> None:
    """Keep warnings instead of printing them, until ``release``."""
    warnings.showwarning = _hold


def release() -> None:
    """Write the kept warnings to the log, and every later one as it comes."""
    log = logging.getLogger(LOGGER)
    for text in _held:
        log.info("%s", text)
    _held.clear()
    warnings.showwarning = _log


def held() -> list[str]:
    """What was kept so far (for tests)."""
    return list(_held)
