"""The live view on a terminal, at any fleet size, built from progress events alone.

A handful of nodes get a row each, as they always did. When the nodes no longer fit the
terminal, the view becomes one line per stage (a progress bar, counts of done, failed, running
and waiting nodes against the stage's total, elapsed time and, once the stage's pace is known,
an estimate of what is left), then the failed nodes with their reason, then the nodes that have been running longest, as many
as fit; the latest run-level messages sit under the stages. Either way the view is never taller
than the terminal, so nothing scrolls.

Cost: an event changes one node's state and moves one count between two buckets of its stage,
so it costs the same at 5 nodes and at 5,000. A frame (drawn at a bounded rate by rich's
``Live``) costs O(stages + lines shown + running nodes), never O(fleet).

Stages: the engine announces each stage with a run-level ``STAGE`` event naming its nodes. Until
one is announced (the connect phase, or an engine that does not announce them), nodes are
grouped by the phase of their events and a group's total is the nodes seen in it.

Counts: a node is in exactly one of a stage's buckets. DONE is the nodes whose last step of the
stage ended ok (or that had nothing to do), FAILED the nodes whose step failed; each failed
node is also one entry of the FAILED list, so the two always agree. The events' ``part`` says
which of a node's steps an event is about: the OK of a step that another follows leaves the
node running, and the stage's cleanup of a failed node (its START and OK) leaves it failed.
"""

from __future__ import annotations

import enum
import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from k8slk_ops.output.events import Event, EventKind, Part

FAILED_TITLE = "FAILED"
NOTES_SHOWN = 2  # the latest run-level messages, under the stages
RUNNING_TITLE = "RUNNING LONGEST"
# When a stage's time left is estimated at all (StageProgress.left says why).
ESTIMATE_MIN_OK = 5
ESTIMATE_MIN_FRACTION = 0.1
ESTIMATE_MIN_SECONDS = 2.0


class State(enum.StrEnum):
    """Where a node is in a stage."""

    WAITING = "waiting"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


STATE_STYLE = {"ok": "green", "failed": "bold red", "running": "cyan", "skipped": "dim"}
STATE_MARK = {"ok": "✓", "failed": "✗", "running": "…", "skipped": "-"}


@dataclass
class NodeLine:
    """One node as the view knows it: its latest phase, state and message."""

    phase: str = ""
    state: State = State.WAITING
    message: str = ""
    started: float | None = None  # first START of the run (the per-node rows' TIME)
    stopped: float | None = None


@dataclass
class StageProgress:
    """One stage's counts, kept current one transition at a time."""

    name: str
    total: int = 0
    announced: bool = False  # the engine named its nodes; else a phase group of nodes seen
    started: float | None = None  # first START in the stage
    last: float | None = None  # latest node finishing in the stage
    states: dict[str, State] = field(default_factory=dict)  # nodes it has heard of, not waiting
    running: dict[str, float] = field(default_factory=dict)  # node -> since (oldest first)
    counts: dict[State, int] = field(default_factory=lambda: dict.fromkeys(State, 0))
    ok_seconds: float = 0.0  # the nodes that ended ok: their time in the stage, summed
    peak: int = 0  # the most nodes seen running at once: the stage's parallelism

    @property
    def waiting(self) -> int:
        busy = sum(self.counts[s] for s in (State.RUNNING, State.OK, State.FAILED, State.SKIPPED))
        return max(0, self.total - busy)

    @property
    def done(self) -> int:
        """Ended well: ok, or nothing to do."""
        return self.counts[State.OK] + self.counts[State.SKIPPED]

    @property
    def finished(self) -> int:
        return self.counts[State.OK] + self.counts[State.FAILED] + self.counts[State.SKIPPED]

    def move(self, node: str, state: State, when: float) -> None:
        old = self.states.get(node)
        if old is None and not self.announced:
            self.total += 1
        if old is not None:
            self.counts[old] -= 1
        self.states[node] = state
        self.counts[state] += 1
        if state == State.RUNNING:
            self.running.setdefault(node, when)
            self.peak = max(self.peak, len(self.running))
            if self.started is None:
                self.started = when
        else:
            since = self.running.pop(node, None)
            if state == State.OK and since is not None:
                self.ok_seconds += when - since
            if state in (State.OK, State.FAILED):
                self.last = when

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        done = self.waiting == 0 and not self.running and self.last is not None
        return (self.last if done and self.last is not None else now) - self.started

    def estimable(self, now: float) -> bool:
        """Whether the stage's pace is known well enough to estimate what is left: at least
        ``ESTIMATE_MIN_OK`` nodes ended ok, a tenth (``ESTIMATE_MIN_FRACTION``) of the nodes it
        runs have finished, and it has run ``ESTIMATE_MIN_SECONDS``.

        Why: the first nodes to end are the quickest of the first wave, and one or two of them
        say little of the others (the rate of a single early join, spread over 299 workers of
        the simulated fleet, read ``~2:33`` for a join that ended 6 s in); a tenth of the stage
        is a sample that the quickest no longer make alone, with five nodes the floor for
        small stages. Failures do not count towards the five: a quick refusal says nothing
        about how long a join takes. A stage shorter than two seconds is over before an
        estimate could be read."""
        elapsed = self.elapsed(now)
        to_run = self.total - self.counts[State.SKIPPED]
        ended = self.counts[State.OK] + self.counts[State.FAILED]
        return (elapsed is not None and elapsed >= ESTIMATE_MIN_SECONDS
                and self.counts[State.OK] >= ESTIMATE_MIN_OK
                and ended >= ESTIMATE_MIN_FRACTION * to_run)

    def left(self, now: float) -> float | None:
        """Time left at the pace so far, or None while :meth:`estimable` is false, once nothing
        is left, or once the nodes still running have outlasted the pace (no honest figure).

        The pace is the mean time a node took to end ok (``d``) and the stage's parallelism
        (``c``, the most nodes seen running at once, which the stage's concurrency bounds):
        the waiting nodes go through ``c`` at a time, one wave every ``d``, and the last of
        them needs ``d`` after it starts; with none waiting, what is left is what the youngest
        running node has left of its ``d``. Unlike the stage's nodes-per-second so far, this does not count
        the first wave's start-up against the rest of the stage."""
        waiting, running = self.waiting, len(self.running)
        if waiting + running == 0 or not self.estimable(now):
            return None
        pace = self.ok_seconds / self.counts[State.OK]
        if waiting:
            return pace * waiting / max(1, self.peak) + pace
        youngest = next(reversed(self.running.values()))
        left = pace - (now - youngest)
        return left if left > 0 else None


@dataclass(frozen=True)
class Note:
    """A run-level message (a stage stopping the run, an interruption, nothing to do)."""

    message: str
    warn: bool


@dataclass(frozen=True)
class Failure:
    """A node that failed, where, and kubeadm's (or the connection's) reason."""

    node: str
    phase: str
    reason: str


class ProgressModel:
    """What the live view shows, updated by events (any thread) and read by frames."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.nodes: dict[str, NodeLine] = {}
        self.stages: list[StageProgress] = []
        self.groups: dict[str, StageProgress] = {}  # phase groups before any announced stage
        self.current: StageProgress | None = None  # the announced stage events go to
        self.failures: list[Failure] = []
        self.notes: list[Note] = []

    def apply(self, event: Event) -> None:
        """Take one event into account (O(1) but for a STAGE event, O(its nodes))."""
        with self.lock:
            if event.kind == EventKind.STAGE:
                self._announce(event)
            elif event.node is not None:
                self._node_event(event.node, event)
            else:
                self.notes.append(Note(event.message, event.kind == EventKind.WARN))

    def _announce(self, event: Event) -> None:
        stage = StageProgress(event.phase, total=len(set(event.nodes)), announced=True)
        self.stages.append(stage)
        self.current = stage

    def _stage_for(self, event: Event) -> StageProgress:
        if self.current is not None:
            return self.current
        group = self.groups.get(event.phase)
        if group is None:
            group = self.groups[event.phase] = StageProgress(event.phase)
            self.stages.append(group)
        return group

    def _node_event(self, name: str, event: Event) -> None:
        kind, when = event.kind, event.monotonic
        if event.part == Part.CLEANUP:
            # The stage's cleanup of a node that failed: the node stays failed, its row keeps
            # the failure's reason; only a failed cleanup is worth a line.
            if kind == EventKind.FAIL:
                self.notes.append(Note(f"{name}: cleanup failed: {event.message}", warn=True))
            return
        line = self.nodes.get(name)
        if line is None:
            line = self.nodes[name] = NodeLine()
        line.phase = event.phase
        if event.message:
            line.message = event.message
        if kind not in (EventKind.START, EventKind.OK, EventKind.FAIL, EventKind.SKIP):
            return  # progress and warnings change the node's message, not its state
        stage = self._stage_for(event)
        if kind == EventKind.START:
            line.state = State.RUNNING
            line.started = when if line.started is None else line.started
            line.stopped = None
            stage.move(name, State.RUNNING, when)
        elif kind == EventKind.OK and event.part == Part.MORE:
            pass  # one of its steps ended; the node runs on in the stage
        elif kind == EventKind.OK:
            line.state, line.stopped = State.OK, when
            stage.move(name, State.OK, when)
        elif kind == EventKind.FAIL:
            line.state, line.stopped = State.FAILED, when
            stage.move(name, State.FAILED, when)
            self.failures.append(Failure(name, event.phase, event.message))
        else:  # SKIP: nothing to do here
            if line.state == State.WAITING:
                line.state = State.SKIPPED
            if name not in stage.states:
                stage.move(name, State.SKIPPED, when)

    def fits_rows(self, height: int) -> bool:
        """Whether a row per node (and the header) fits ``height`` lines."""
        return len(self.nodes) + 1 <= height


# -- frames -------------------------------------------------------------------------------------


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Bar:
    """A progress bar that reads without colour too: ``━━━━━━╸─────`` (done, then to do;
    ``######-----`` where the terminal's encoding has no such characters); red once a node
    failed. As wide as its table column."""

    def __init__(self, done: int, total: int, failed: bool) -> None:
        # A stage with no node has nothing left to do: a full bar.
        self.done, self.total, self.failed = (done, total, failed) if total else (1, 1, False)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(6, options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        halves = min(2 * width, 2 * width * self.done // self.total)
        full, half = divmod(halves, 2)
        style = Style(color="red" if self.failed else ("green" if full == width else "cyan"))
        done, part, todo = ("#", "#", "-") if options.ascii_only else ("━", "╸", "─")
        yield Segment(done * full + (part if half else ""), style)
        yield Segment(todo * (width - full - half), Style(color="bright_black"))


def node_rows(model: ProgressModel, now: float, clean: Callable[[str], str]) -> Table:
    """A row per node (the view of a handful of nodes): name, phase, state, time, message."""
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for col in ("NODE", "PHASE", "STATE", "TIME"):
        table.add_column(col, no_wrap=True)
    table.add_column("", no_wrap=True, overflow="ellipsis")
    for name, row in model.nodes.items():
        elapsed = ""
        if row.started is not None:
            elapsed = f"{(row.stopped or now) - row.started:5.1f}s"
        state = row.state.value
        table.add_row(name, row.phase,
                      Text(f"{STATE_MARK.get(state, ' ')} {state}", style=STATE_STYLE.get(state, "")),
                      elapsed, Text(clean(row.message)[:70], style="dim"))
    return table


# The stage table's columns from the widest layout to the narrowest: a narrow terminal loses
# the long headers, then the times, then the bar, before a count is cut.
LAYOUTS = (
    ("STAGE", "PROGRESS", "DONE", "FAILED", "RUNNING", "WAITING", "TIME", "LEFT"),
    ("STAGE", "PROGRESS", "DONE", "FAIL", "RUN", "WAIT", "TIME", "LEFT"),
    ("STAGE", "PROGRESS", "DONE", "FAIL", "RUN", "WAIT", "LEFT"),
    ("STAGE", "PROGRESS", "DONE", "FAIL", "RUN", "WAIT"),
    ("STAGE", "DONE", "FAIL", "RUN", "WAIT"),
)
BAR_MIN = 8
NAME_MAX = 20


def _stage_cells(stage: StageProgress, now: float) -> dict[str, str]:
    left = stage.left(now)
    failed, running, waiting = stage.counts[State.FAILED], stage.counts[State.RUNNING], stage.waiting
    return {"STAGE": stage.name, "DONE": f"{stage.done}/{stage.total}", "FAILED": str(failed),
            "FAIL": str(failed), "RUNNING": str(running), "RUN": str(running),
            "WAITING": str(waiting), "WAIT": str(waiting), "TIME": _clock(stage.elapsed(now)),
            "LEFT": f"~{_clock(left)}" if left is not None else ""}


def _layout(rows: list[dict[str, str]], width: int) -> tuple[str, ...]:
    """The widest layout whose columns (and a bar of BAR_MIN) fit ``width``."""
    for layout in LAYOUTS:
        need = sum(max(len(col), *(len(r[col]) for r in rows)) if col != "STAGE" else
                   min(NAME_MAX, max(len(col), *(len(r[col]) for r in rows)))
                   for col in layout if col != "PROGRESS")
        need += len(layout) - 1 + (BAR_MIN if "PROGRESS" in layout else 0)
        if need <= width:
            return layout
    return LAYOUTS[-1]


COUNT_STYLE = {"FAILED": "bold red", "FAIL": "bold red", "RUNNING": "cyan", "RUN": "cyan"}


def _stage_table(stages: list[StageProgress], now: float, width: int) -> Table:
    rows = [_stage_cells(stage, now) for stage in stages]
    layout = _layout(rows, width)
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False,
                  width=width, collapse_padding=True)
    for col in layout:
        if col == "STAGE":
            table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=NAME_MAX)
        elif col == "PROGRESS":
            table.add_column(col, no_wrap=True, ratio=1, min_width=BAR_MIN)
        else:
            table.add_column(col, no_wrap=True, justify="right")
    for stage, cells in zip(stages, rows, strict=True):
        row: list[RenderableType] = []
        for col in layout:
            if col == "PROGRESS":
                row.append(Bar(stage.finished, stage.total, stage.counts[State.FAILED] > 0))
            elif col in COUNT_STYLE or col in ("WAITING", "WAIT"):
                count = cells[col]
                row.append(Text(count, style=COUNT_STYLE.get(col, "") if count != "0" else "dim"))
            else:
                row.append(cells[col])
        table.add_row(*row)
    return table


def _line(*parts: tuple[str, str]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for chunk, style in parts:
        text.append(chunk, style=style)
    return text


def _failed_lines(failures: list[Failure], room: int, width: int,
                  clean: Callable[[str], str]) -> list[Text]:
    if room < 2 or not failures:
        return []
    if len(failures) <= room - 1:
        shown = failures
    else:  # the title has the count: "and N more" only where it leaves some names shown
        shown = failures[: room - 2] if room >= 4 else failures[: room - 1]
    name_w = max(len(f.node) for f in shown) if shown else 0
    out = [_line((f"{FAILED_TITLE} ({len(failures)})", "bold red"))]
    for f in shown:
        out.append(_line((f"  {f.node.ljust(name_w)}  ", ""), (f"{f.phase}  ", "dim"),
                         (clean(f.reason).replace("\n", " ")[:width], "red")))
    if len(shown) < len(failures) and room >= 4:
        out.append(_line((f"  … and {len(failures) - len(shown)} more", "dim")))
    return out


def _running_lines(model: ProgressModel, stage: StageProgress | None, room: int, now: float,
                   clean: Callable[[str], str]) -> list[Text]:
    if room < 2 or stage is None or not stage.running:
        return []
    longest = heapq.nsmallest(room - 1, stage.running.items(), key=lambda item: item[1])
    name_w = max(len(name) for name, _ in longest)
    out = [_line((f"{RUNNING_TITLE} ({len(stage.running)} running in {stage.name})", "bold cyan"))]
    for name, since in longest:
        line = model.nodes[name]
        out.append(_line((f"  {name.ljust(name_w)}  ", ""), (f"{line.phase}  ", "dim"),
                         (f"{now - since:5.1f}s  ", "cyan"),
                         (clean(line.message).replace("\n", " ")[:200], "dim")))
    return out


def stage_view(model: ProgressModel, now: float, width: int, height: int,
               clean: Callable[[str], str]) -> RenderableType:
    """The view of many nodes, at most ``height`` lines of at most ``width`` columns."""
    stages = model.stages[-max(1, height - 1):]
    room = height - 1 - len(stages)
    notes = [_line((clean(n.message).replace("\n", " "), "yellow" if n.warn else ""))
             for n in model.notes[-min(NOTES_SHOWN, max(0, room)):]] if room > 0 else []
    room -= len(notes)
    current = next((s for s in reversed(stages) if s.running), None)
    failures = model.failures
    running_wanted = min(len(current.running) + 1, 3) if current is not None else 0
    # Failed nodes come first; the longest running keep a few lines unless the terminal is tiny.
    failed = _failed_lines(failures, max(min(room, 2), room - running_wanted), width, clean)
    room -= len(failed)
    running = _running_lines(model, current, room, now, clean)
    return Group(_stage_table(stages, now, width), *notes, *failed, *running)
