"""Everything a user sees: a live per-node view on a terminal, plain lines in cron, JSON, a log.

The run emits :class:`~k8slk_ops.output.events.Event` objects and ends with a
:class:`~k8slk_ops.output.events.RunReport`; this module is the only one that prints. Human
output goes to stderr so that ``--json`` leaves stdout to one JSON document. Every string passes
through the :class:`~k8slk_ops.output.redact.Redactor` on its way out.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import math
import os
import stat
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from k8slk_ops.base.errors import UsageError
from k8slk_ops.output.events import Event, EventKind, NodeReport, Outcome, RunReport
from k8slk_ops.output.liveview import ProgressModel, node_rows, stage_view
from k8slk_ops.output.redact import RedactingFilter, Redactor
from k8slk_ops.output.rows import CertsRow, EtcdRow, Layout, StatusRow

OUTCOME_STYLE = {
    Outcome.OK: "green",
    Outcome.UNCHANGED: "dim",
    Outcome.FAILED: "bold red",
    Outcome.UNREACHABLE: "red",
    Outcome.SKIPPED: "yellow",
    Outcome.CANCELLED: "yellow",
    Outcome.PLANNED: "cyan",
}


class Reporter(Protocol):
    def emit(self, event: Event) -> None: ...
    def finish(self, report: RunReport) -> None: ...
    def error(self, message: str) -> None: ...
    def show_text(self, text: str) -> None: ...
    def close(self) -> None: ...


def _stamp(when: datetime) -> str:
    """``when`` to the second in UTC; events of one second (hundreds, at scale) share one."""
    return _stamp_of(math.floor(when.timestamp()))


@functools.lru_cache(maxsize=64)
def _stamp_of(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_line(event: Event) -> str:
    """One plain line for an event: ``<time> <node|-> <phase> <kind>[: message]``."""
    who = event.node or "-"
    if event.kind == EventKind.STAGE:
        return f"{_stamp(event.wall)} {who} {event.phase} stage: {len(event.nodes)} nodes"
    kind = "FAIL" if event.kind == EventKind.FAIL else event.kind.value
    text = f"{_stamp(event.wall)} {who} {event.phase} {kind}"
    return f"{text}: {event.message}" if event.message else text


# -- summaries (shared by the terminal and the plain reporter) --------------------------------
#
# Each command's rows have their own columns (``report.layout``, set by the command): a node's
# outcome, a `status` row, an `etcd status` member. A failed or unreachable node's row ends with
# what to do next (NEXT), in every layout.

SUMMARY_HEADER = ["NODE", "ROLE", "RESULT", "PHASE", "TIME", "VERSION", "MESSAGE"]
STATUS_HEADER = ["NODE", "ROLE", "REACHABLE", "HOST KEY", "KUBELET", "KUBEADM", "KUBEADM VER",
                 "KUBELET VER", "CLUSTER", "CERTS", "NOTE"]
ETCD_HEADER = ["NODE", "ROLE", "RESULT", "MEMBER", "LEADER", "DB BYTES", "ETCD VER", "MEMBERS",
               "HEALTH"]
CERTS_HEADER = ["NODE", "CERTIFICATE", "EXPIRES", "DAYS LEFT", "SIGNED BY"]
NEXT_HEADER = "NEXT"


def next_text(node: NodeReport) -> str:
    """The node's next step in words ("" when it has none)."""
    return node.next_step.action if node.next_step is not None else ""


def _summary_cells(n: NodeReport) -> list[str]:
    return [n.name, n.role, n.outcome.value, n.phase, f"{n.seconds:.1f}s" if n.seconds else "",
            n.version, n.message]


def _status_cells(n: NodeReport) -> list[str]:
    row = n.row
    if not isinstance(row, StatusRow):  # the status step failed on a node that answered
        reachable = "no" if n.outcome == Outcome.UNREACHABLE else "yes"
        return [n.name, n.role, reachable, "", "", "", "", "", "", "", n.message]
    if not row.reachable:
        return [n.name, n.role, "no", row.host_key, "", "", "", "", "", "", row.error]
    days = row.certs.days_left if row.certs is not None else None
    return [n.name, n.role, "yes", row.host_key, row.kubelet_task, row.kubeadm,
            row.kubeadm_version, row.kubelet_version, row.cluster_state(),
            "" if days is None else f"{days}d", row.note()]


def _etcd_cells(n: NodeReport) -> list[str]:
    if isinstance(n.row, EtcdRow):
        return [n.name, n.role, n.outcome.value, *n.row.cells()]
    return [n.name, n.role, n.outcome.value, "", "", "", "", "", n.message]


def node_table(report: RunReport, nodes: list[NodeReport]) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of ``nodes`` in the command's layout; NEXT last, when any of
    them has a next step."""
    if report.layout is Layout.STATUS:
        header, rows = STATUS_HEADER, [_status_cells(n) for n in nodes]
    elif report.layout is Layout.ETCD:
        header, rows = ETCD_HEADER, [_etcd_cells(n) for n in nodes]
    else:
        header, rows = SUMMARY_HEADER, [_summary_cells(n) for n in nodes]
    if any(n.next_step is not None for n in nodes):
        header = [*header, NEXT_HEADER]
        rows = [[*row, next_text(n)] for row, n in zip(rows, nodes, strict=True)]
    return header, rows


def _result_column(report: RunReport) -> int | None:
    """Which column holds the node's outcome (styled by it), if the layout has one."""
    return None if report.layout is Layout.STATUS else 2


def _tails(report: RunReport) -> list[tuple[NodeReport, list[str]]]:
    return [(n, n.log_tail) for n in report.nodes if n.outcome == Outcome.FAILED and n.log_tail]


def _certificate_table(report: RunReport) -> list[str]:
    """``certs``: a row per certificate and control plane, the CAs marked (empty otherwise)."""
    rows = [
        [n.name, f"{c.name} (CA)" if c.authority else c.name,
         c.expires.isoformat() if c.expires else "MISSING",
         "" if c.days_left is None else f"{c.days_left}d", c.signed_by or ""]
        for n in report.nodes if isinstance(n.row, CertsRow) for c in n.row.certificates
    ]
    return [plain_table(CERTS_HEADER, rows)] if rows else []


DRIFT_HEADER = ["KIND", "WHERE", "WHAT", "EXPECTED", "FOUND", "FIX"]


def drift_rows(report: RunReport) -> list[list[str]]:
    """``drift``: a row per difference (none for other commands)."""
    if report.drift is None:
        return []
    return [[i.kind, i.where, i.what, i.expected, i.found, i.fix.action]
            for i in report.drift.items]


def _closing_lines(report: RunReport, *, drift_table: bool = True) -> list[str]:
    rows = drift_rows(report) if drift_table else []
    drift = [plain_table(DRIFT_HEADER, rows)] if rows else []
    lines = [*_certificate_table(report), *drift, *report.messages]
    if "kubeconfig" in report.data:
        lines.append(f"kubeconfig written to {report.data['kubeconfig']}")
    counts: dict[str, int] = {}
    for n in report.nodes:
        counts[n.outcome.value] = counts.get(n.outcome.value, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    lines.append(f"{report.command}: {summary}; exit {report.exit_code}")
    return lines


def plain_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    out = []
    for row in [header, *rows]:
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(out)


# -- reporters ---------------------------------------------------------------------------------


class PlainReporter:
    """No terminal (cron, CI, pipes): one timestamped line per event, plain text tables."""

    def __init__(self, redactor: Redactor, stream: IO[str] | None = None) -> None:
        self.redactor = redactor
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self.lock:
            self.stream.write(self.redactor.redact(text) + "\n")
            self.stream.flush()

    def emit(self, event: Event) -> None:
        if event.kind != EventKind.STAGE:  # the lines stay one per node event, as scripts read them
            self._write(event_line(event))

    def error(self, message: str) -> None:
        self._write(f"error: {message}")

    def show_text(self, text: str) -> None:
        sys.stdout.write(self.redactor.redact(text) + "\n")
        sys.stdout.flush()

    def finish(self, report: RunReport) -> None:
        if report.nodes:
            self._write(plain_table(*node_table(report, report.nodes)))
        for node, tail in _tails(report):
            self._write(f"last log lines of {node.name} ({node.phase}):")
            for line in self.redactor.redact_lines(tail):
                self._write(f"  | {line}")
        for line in _closing_lines(report):
            self._write(line)

    def close(self) -> None:
        pass


class LiveReporter:
    """A terminal: the live view of :mod:`k8slk_ops.output.liveview` (a row per node while they
    fit the terminal, else a line per stage), then the final report (:func:`final_report`)."""

    def __init__(self, redactor: Redactor, console: Console | None = None,
                 verbose: bool = False) -> None:
        self.redactor = redactor
        self.console = console or Console(stderr=True)
        self.verbose = verbose
        self.model = ProgressModel()
        self.many = False  # sticky: once the nodes outgrew the terminal, a line per stage
        # Messages held back while the view is per stage (printed above it they would scroll
        # it), then printed with the report.
        self.held: list[Text] = []
        self.paused = False  # show_text stopped the view; the next event starts it again
        self.live = Live(
            console=self.console, refresh_per_second=4, transient=True, get_renderable=self._render
        )
        self.live.start()

    def _clean(self, text: str) -> str:
        """Every node-supplied string on its way to the terminal."""
        return self.redactor.redact(text)

    def _render(self) -> RenderableType:
        width, height = self.console.size
        now = time.monotonic()
        with self.model.lock:
            self.many = self.many or not self.model.fits_rows(height)
            if self.many:
                return stage_view(self.model, now, width, height, self._clean)
            return node_rows(self.model, now, self._clean)

    def _per_stage(self) -> bool:
        return self.many or not self.model.fits_rows(self.console.size.height)

    def emit(self, event: Event) -> None:
        self.model.apply(event)
        if self.paused:  # stopped to show a text (apply's plan) before the run goes on
            self.paused = False
            self.live.start()
        if event.kind == EventKind.STAGE or (event.node and event.kind != EventKind.WARN):
            return
        who = f"{event.node}: " if event.node else ""
        style = "yellow" if event.kind == EventKind.WARN else ""
        text = Text(who + self.redactor.redact(event.message), style=style)
        if self._per_stage():
            self.held.append(text)
        else:
            self.console.print(text)

    def error(self, message: str) -> None:
        self.live.stop()
        self.console.print(Text(f"error: {self.redactor.redact(message)}", style="bold red"))

    def show_text(self, text: str) -> None:
        self.live.stop()
        Console().print(Text(self.redactor.redact(text)))
        self.paused = True

    def finish(self, report: RunReport) -> None:
        self.live.stop()
        said = {self.redactor.redact(m) for m in report.messages}  # the report says them again
        held = [t for t in self.held if t.plain not in said]
        parts: list[RenderableType] = list(_capped(held, self.verbose, "messages"))
        parts.extend(final_report(report, self.redactor, self.verbose))
        self.console.print(Group(*parts))

    def close(self) -> None:
        self.live.stop()


EVERY_ROW_UP_TO = 30  # a report of at most this many nodes lists every node
TAILS_UP_TO = 5  # log tails shown for this many failed nodes, unless -v


def _capped(lines: list[Text], verbose: bool, what: str, limit: int = 20) -> list[Text]:
    if verbose or len(lines) <= limit:
        return lines
    more = Text(f"... and {len(lines) - limit} more {what} (-v or --log-file: all)", style="dim")
    return [*lines[:limit], more]


def outcome_totals(report: RunReport) -> Text:
    """``300 nodes: 297 ok, 2 failed, 1 unreachable``, in the order of :class:`Outcome`."""
    counts = {o: 0 for o in Outcome}
    for n in report.nodes:
        counts[n.outcome] += 1
    text = Text(f"{len(report.nodes)} nodes: ", style="bold")
    shown = [(o, c) for o, c in counts.items() if c]
    for i, (outcome, count) in enumerate(shown):
        text.append(f"{count} {outcome.value}", style=OUTCOME_STYLE.get(outcome, ""))
        if i < len(shown) - 1:
            text.append(", ")
    return text


def _result_table(report: RunReport, nodes: list[NodeReport], redactor: Redactor) -> Table:
    header, rows = node_table(report, nodes)
    styled = _result_column(report)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in header:
        table.add_column(col)
    for n, row in zip(nodes, rows, strict=True):
        cells = [Text(redactor.redact(c)) for c in row]
        if styled is not None:
            cells[styled].stylize(OUTCOME_STYLE.get(n.outcome, ""))
        table.add_row(*cells)
    return table


def final_report(report: RunReport, redactor: Redactor, verbose: bool) -> list[RenderableType]:
    """The report on a terminal. Every node's row when there are few nodes, with ``-v``, and for
    ``status`` (its rows are the answer); else the totals per outcome, then only the nodes that
    did not end ok, and the log tails of the first few failed nodes."""
    every = verbose or len(report.nodes) <= EVERY_ROW_UP_TO or report.layout is Layout.STATUS
    parts: list[RenderableType] = []
    if every:
        shown = report.nodes
    else:
        parts.append(outcome_totals(report))
        fine = {Outcome.OK, Outcome.UNCHANGED, Outcome.PLANNED}
        shown = [n for n in report.nodes if n.outcome not in fine]
    if shown:
        parts.append(_result_table(report, shown, redactor))
    tails = _tails(report)
    left = len(tails) - TAILS_UP_TO if not every else 0
    for node, tail in tails[: len(tails) - max(0, left)]:
        parts.append(Text(f"last log lines of {node.name} ({node.phase}):", style="bold"))
        parts.extend(Text(f"  | {line}", style="dim") for line in redactor.redact_lines(tail))
    if left > 0:
        parts.append(Text(f"log tails of {left} more failed nodes: -v, --json or --log-file",
                          style="dim"))
    drift = drift_rows(report)
    if drift:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in DRIFT_HEADER:
            table.add_column(col, overflow="fold")
        for row in drift:
            table.add_row(*(Text(redactor.redact(c)) for c in row))
        parts.append(table)
    for line in _closing_lines(report, drift_table=False):
        parts.append(Text(redactor.redact(line)))
    return parts


class JsonReporter:
    """``--json``: the human reporter on stderr, then one JSON document on stdout."""

    def __init__(self, inner: Reporter, redactor: Redactor, stream: IO[str] | None = None):
        self.inner = inner
        self.redactor = redactor
        self.stream = stream or sys.stdout

    def emit(self, event: Event) -> None:
        self.inner.emit(event)

    def error(self, message: str) -> None:
        self.inner.error(message)

    def show_text(self, text: str) -> None:
        pass  # with --json the plan is part of the JSON document

    def finish(self, report: RunReport) -> None:
        self.inner.finish(report)
        doc = report.to_json()
        for node in doc.get("nodes", []):  # a tail is one text: a secret may span its lines
            node["logTail"] = self.redactor.redact_lines(node["logTail"])
        self.stream.write(json.dumps(self.redactor.redact_obj(doc), indent=2) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.inner.close()


def open_log_file(path: Path) -> IO[str]:
    """``--log-file`` opened for appending: never through a symbolic link, a regular file only,
    created 0600 and made 0600 if an earlier file was looser (the log holds node output)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(
                f"the log file {path} is a symbolic link; refusing to follow it (name its target)"
            ) from None
        if exc.errno == errno.ENXIO:
            raise UsageError(f"the log file {path} is not a regular file") from None
        raise UsageError(f"cannot open the log file {path}: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UsageError(f"the log file {path} is not a regular file")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, 0o600)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a")


class LogFileReporter:
    """``--log-file``: every event as a plain line, appended to a file created 0600."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.redactor = redactor
        self.handle = open_log_file(path)
        self.lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self.lock:
            self.handle.write(self.redactor.redact(text) + "\n")
            self.handle.flush()

    def emit(self, event: Event) -> None:
        self._write(event_line(event))

    def error(self, message: str) -> None:
        self._write(f"{_stamp(datetime.now(UTC))} - run error: {message}")

    def show_text(self, text: str) -> None:
        self._write(text)

    def finish(self, report: RunReport) -> None:
        for n in report.nodes:
            line = f"result {n.name} {n.outcome.value} phase={n.phase} {n.message}"
            self._write(f"{line}; next: {next_text(n)}" if n.next_step is not None else line)
            for line in self.redactor.redact_lines(n.log_tail):
                self._write(f"  | {line}")
        for line in _closing_lines(report):
            self._write(line)

    def close(self) -> None:
        self.handle.close()


class TeeReporter:
    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = reporters

    def emit(self, event: Event) -> None:
        for r in self.reporters:
            r.emit(event)

    def error(self, message: str) -> None:
        for r in self.reporters:
            r.error(message)

    def show_text(self, text: str) -> None:
        for r in self.reporters:
            r.show_text(text)

    def finish(self, report: RunReport) -> None:
        for r in self.reporters:
            r.finish(report)

    def close(self) -> None:
        for r in self.reporters:
            r.close()


def make_reporter(
    *, json: bool, log_file: Path | None, verbose: bool, redactor: Redactor
) -> Reporter:
    """The reporter for this invocation: live on a TTY, plain otherwise; JSON and log file
    layered on top."""
    human: Reporter
    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        human = LiveReporter(redactor, verbose=verbose)
    else:
        human = PlainReporter(redactor)
    reporter: Reporter = JsonReporter(human, redactor) if json else human
    if log_file is not None:
        reporter = TeeReporter(reporter, LogFileReporter(log_file, redactor))
    return reporter


def release_logging() -> None:
    """Detach what configure_logging attached and close the log file it opened, so a process
    that runs several commands (tests, a library user) neither leaks nor shares a log file."""
    root = logging.getLogger("k8slk_ops")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()


class _LogFileHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The --log-file handler: unlike a plain StreamHandler, closing it closes its file."""

    def close(self) -> None:
        try:
            self.flush()
            self.stream.close()
        finally:
            super().close()


def configure_logging(verbose: bool, log_file: Path | None, redactor: Redactor) -> None:
    """Route the program's logging through the redactor: to the log file (debug when verbose),
    and warnings to stderr."""
    root = logging.getLogger("k8slk_ops")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    release_logging()
    fmt = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    if log_file is not None:
        to_file: logging.Handler = _LogFileHandler(open_log_file(log_file))
        to_file.setFormatter(fmt)
        to_file.addFilter(RedactingFilter(redactor))
        root.addHandler(to_file)
    stderr: logging.Handler = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.DEBUG if verbose else logging.WARNING)
    stderr.setFormatter(fmt)
    stderr.addFilter(RedactingFilter(redactor))
    root.addHandler(stderr)
