"""What a run tells the world: progress events and the final report.

The run engine emits :class:`Event` objects while it works and builds a :class:`RunReport` at the
end. Everything a user sees (live view, plain lines, log file, JSON) is produced from these two
types by ``report.py``; nothing else in the program prints. Keeping them plain data means the
engine is tested without a terminal, and redaction has one choke point.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from k8slk_ops.base.nextstep import NextStep
from k8slk_ops.drift import DriftResult
from k8slk_ops.output.rows import Layout, NodeRow


class EventKind(enum.StrEnum):
    """What happened to a node (or the run) in a phase."""

    START = "start"  # a phase began on a node
    PROGRESS = "progress"  # something worth showing inside a phase (a log line, a retry)
    OK = "ok"  # the phase ended well
    FAIL = "fail"  # the phase failed on that node
    SKIP = "skip"  # nothing to do (already done)
    WARN = "warn"  # a warning that does not fail the node
    INFO = "info"  # run-level information
    # Run-level: a stage begins (``phase`` is the stage's name, ``nodes`` the nodes it covers,
    # those it will skip included). Lets the live view count each stage's nodes against a total.
    STAGE = "stage"


class Part(enum.StrEnum):
    """Which of a node's steps in a stage a START, OK or FAIL event is about.

    Only the engine knows whether more of the node's steps follow in the stage, or whether a
    step is the stage's cleanup of a node that already failed; it says so here, so that a
    reader counting nodes (the live view) neither counts a node done between two of its steps
    nor turns a failed node back into a running, then done, one while its cleanup runs.
    """

    LAST = "last"  # the node's last step in the stage, or an event not about a stage's step
    MORE = "more"  # another of the node's steps follows in the same stage
    CLEANUP = "cleanup"  # the stage's cleanup of a node whose step failed or was cancelled


class Outcome(enum.StrEnum):
    """The final state of one node in a run."""

    OK = "ok"  # changed and succeeded
    UNCHANGED = "unchanged"  # nothing was due
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"  # not attempted (an earlier stage failed, or not selected)
    CANCELLED = "cancelled"  # interrupted (Ctrl-C) before it finished
    PLANNED = "planned"  # dry run: would change


@dataclass(frozen=True)
class Event:
    """One progress event. ``node`` is None for run-level events."""

    node: str | None
    phase: str
    kind: EventKind
    message: str = ""
    monotonic: float = field(default_factory=time.monotonic)
    wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    nodes: tuple[str, ...] = ()  # for STAGE: the nodes the stage covers
    part: Part = Part.LAST  # for a node's START, OK, FAIL: which of its steps (see Part)


@dataclass
class NodeReport:
    """The outcome of one node, as the summary table and the JSON report show it."""

    name: str
    role: str
    address: str
    outcome: Outcome = Outcome.SKIPPED
    phase: str = ""  # the last phase the node was in (the failing one, on failure)
    message: str = ""
    version: str = ""  # kubelet/kubeadm version seen on the node
    seconds: float = 0.0
    log_tail: list[str] = field(default_factory=list)
    row: NodeRow | None = None  # what the command reports of the node (rows.py), if anything
    # What the operator does next, on a failed or unreachable node (None otherwise).
    next_step: NextStep | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "address": self.address,
            "outcome": self.outcome.value,
            "phase": self.phase,
            "message": self.message,
            "version": self.version,
            "seconds": round(self.seconds, 3),
            "logTail": list(self.log_tail),
            "details": self.row.to_json() if self.row is not None else {},
            "next": self.next_step.to_json() if self.next_step is not None else None,
        }


@dataclass
class RunReport:
    """Everything a run produced: per-node outcomes, run-level messages, the exit code."""

    command: str
    cluster: str
    inventory: str
    layout: Layout = Layout.OUTCOMES  # the command's columns (never guessed from the rows)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: datetime | None = None
    exit_code: int = 0
    changed: bool = False
    dry_run: bool = False
    interrupted: bool = False
    nodes: list[NodeReport] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    drift: DriftResult | None = None  # `drift`: the differences found, once compared

    def node(self, name: str) -> NodeReport:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "cluster": self.cluster,
            "inventory": self.inventory,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "exitCode": self.exit_code,
            "changed": self.changed,
            "dryRun": self.dry_run,
            "interrupted": self.interrupted,
            "nodes": [n.to_json() for n in self.nodes],
            "messages": list(self.messages),
            "plan": list(self.plan),
            "data": self.data if self.drift is None else {**self.data,
                                                          "drift": self.drift.to_json()},
        }


class EventSink(Protocol):
    """Anything that receives events: the reporter, a test's recorder."""

    def emit(self, event: Event) -> None: ...
