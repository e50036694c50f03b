"""The program's own errors, each carrying its exit code (docs/architecture.md, README).

Exit codes: 0 done; 1 some node failed (others finished, see the report); 2 bad usage or bad
inventory/playbook; 3 could not start (unreachable, locked, host key refused); 130 interrupted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8slk_ops.base.nextstep import NextStep

EXIT_OK = 0
EXIT_NODE_FAILED = 1
EXIT_USAGE = 2
EXIT_CANNOT_START = 3
EXIT_INTERRUPTED = 130


class OpsError(Exception):
    """Base of every error the CLI turns into a message and an exit code."""

    exit_code = EXIT_NODE_FAILED


class UsageError(OpsError):
    """Bad flags, a bad playbook or a bad inventory: nothing was contacted."""

    exit_code = EXIT_USAGE


class CannotStart(OpsError):
    """The run could not begin: the cluster is locked, the primary is unreachable, ..."""

    exit_code = EXIT_CANNOT_START


class LockHeld(CannotStart):
    """Another run holds the lock; the message names the holder."""


class NodeError(OpsError):
    """A step failed on one node. Carries the phase, the node's last log lines and, where the
    step knows it, what the operator does next."""

    def __init__(self, message: str, *, phase: str = "", log_tail: list[str] | None = None,
                 next_step: NextStep | None = None):
        super().__init__(message)
        self.phase = phase
        self.log_tail = list(log_tail or [])
        self.next_step = next_step
