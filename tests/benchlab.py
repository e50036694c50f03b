"""The bootstrap's timeline on the lab: the tool's time against the nodes' own, per phase.

    python -m tests.bench --lab N [--runs K] [--settle 5] [--ready-delay 1] [--tool-root DIR]

Each run brings up a fresh lab of N nodes (one control plane, ``tests/lab``: real sshd and
containerd per node), runs ``k8slk-ops bootstrap INVENTORY --json`` under the stage stopwatch
of ``tests/benchphases.py``, then reads every node's kubeadm log (``/var/log/kubeadm.out.log``,
docs/node.md) and takes the lab down. On one clock (the wall clock: the nodes are processes of
this machine) it lines up:

- the tool's marks: its start, each stage's start and end, its exit;
- each node's ``sleeping a bit more`` line (kubeadm.sh saw the trigger: it polls for it once a
  second) and ``kubeadm has completed`` line.

and prints, per phase, the tool's time and the nodes' own time in it:

- start to the init trigger (inventory, connections, facts, locks): the tool's alone;
- init: the primary's settle and kubeadm init (its log), against the tool's init stage;
- init's end to the first join trigger (addons, credentials, join configs): the tool's alone;
- the joins: the slowest join's settle and kubeadm join (its log);
- after the last join: the wait for Ready, the kubeconfig, cleanup and exit;

then the overhead: the tool's total minus the nodes' critical path (init plus the slowest join).
After the run it reads each Node's Ready condition from the lab's API (the real kubectl, with
the kubeconfig the bootstrap wrote): the cluster's own time from the last join's end to the last
node Ready (the pod network's pod starting on the new node, then the lab's ready delay) is the
nodes' too, and what the tool spends after that last Ready is its own.

The log's times have a resolution of one second (memlogd writes whole seconds) and the script
notices a trigger up to a second late: each node figure is good to about a second, which is why
``--runs K`` repeats the run on fresh labs and prints the median of each figure. With
``--tool-root DIR`` the tool is the ``k8slk_ops`` package of another checkout (the "before" of
a change), run by this bench. Figures are printed, never asserted; the exit status is non-zero
only when a bootstrap failed. The lab needs root; run it under the lab lock
(``flock /tmp/k8slk-lab.lock``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from k8slk_ops.kubeadm.logs import COMPLETED_LINE, SETTLING_LINE, parse_log_line

ROOT = Path(__file__).resolve().parents[1]
KUBEADM_LOG = "/var/log/kubeadm.out.log"


@dataclass(frozen=True)
class NodeTimes:
    """When one node's kubeadm.sh saw its trigger and when kubeadm completed (epoch s)."""

    name: str
    triggered: float | None
    completed: float | None

    @property
    def seconds(self) -> float | None:
        if self.triggered is None or self.completed is None:
            return None
        return self.completed - self.triggered


def node_times(name: str, log: str) -> NodeTimes:
    """The trigger and completion times in a node's kubeadm log (its latest attempt)."""
    triggered = completed = None
    for raw in log.splitlines():
        line = parse_log_line(raw)
        if line.time is None:
            continue
        if line.message == SETTLING_LINE:
            triggered, completed = line.time.timestamp(), None
        elif line.message == COMPLETED_LINE:
            completed = line.time.timestamp()
    return NodeTimes(name, triggered, completed)


@dataclass(frozen=True)
class Timeline:
    """One bootstrap, as the phases of the module doc (seconds; None when not measurable)."""

    exit_code: int
    load_average: tuple[float, float, float]
    tool_total: float
    to_init_trigger: float | None
    init_tool: float | None  # the tool's init stage
    init_nodes: float | None  # the primary's own: settle + kubeadm init
    init_end_to_first_join: float | None
    joins_tool: float | None  # the first join trigger to the last join's end, as the logs say
    joins_nodes: float | None  # the slowest join's own: settle + kubeadm join
    after_last_join: float | None  # the last join's end to the tool's exit
    turning_ready: float | None  # the last join's end to the last Node Ready (the cluster's)
    after_last_ready: float | None  # the last Node Ready to the tool's exit
    ready_tool: float | None  # the tool's ready stage
    cleanup_tool: float | None  # the tool's cleanup stage
    stages: dict[str, float]  # each stage's wall seconds, as the tool's marks say
    critical_path: float | None  # init_nodes + joins_nodes
    overhead: float | None  # tool_total - critical_path
    overhead_past_ready: float | None  # overhead - turning_ready: the tool's own, all told


def _stage_spans(marks: list[list[Any]], epoch0: float) -> dict[str, tuple[float, float]]:
    """Stage name -> (start, end) on the wall clock, from the stopwatch's marks."""
    starts: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    for what, wall, _cpu in marks:
        if not isinstance(what, str) or not what.startswith("stage "):
            continue
        if what.endswith(" start"):
            starts[what[6:-6]] = epoch0 + wall
        elif what.endswith(" end") and what[6:-4] in starts:
            name = what[6:-4]
            spans[name] = (starts.pop(name), epoch0 + wall)
    return spans


def timeline(
    exit_code: int,
    load: tuple[float, float, float],
    started: float,
    ended: float,
    marks: list[list[Any]],
    primary: NodeTimes,
    joined: list[NodeTimes],
    ready: list[float] | None = None,
) -> Timeline:
    """The phases of one run from the tool's marks and the nodes' log times."""
    epoch0 = next((float(w) for what, w, _ in marks if what == "epoch"), started)
    spans = _stage_spans(marks, epoch0)

    def length(stage: str) -> float | None:
        span = spans.get(stage)
        return None if span is None else round(span[1] - span[0], 2)

    def since(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(b - a, 2)

    join_starts = [n.triggered for n in joined if n.triggered is not None]
    join_ends = [n.completed for n in joined if n.completed is not None]
    join_own = [s for s in (n.seconds for n in joined) if s is not None]
    first_join = min(join_starts) if join_starts else None
    last_join = max(join_ends) if join_ends else None
    init_nodes = None if primary.seconds is None else round(primary.seconds, 2)
    joins_nodes = round(max(join_own), 2) if join_own else None
    critical = None
    if init_nodes is not None and (joins_nodes is not None or not joined):
        critical = round(init_nodes + (joins_nodes or 0.0), 2)
    total = round(ended - started, 2)
    last_ready = max(ready) if ready else None
    end_of_joins = last_join if joined else primary.completed
    turning = since(end_of_joins, last_ready)
    overhead = None if critical is None else round(total - critical, 2)
    return Timeline(
        exit_code=exit_code,
        load_average=load,
        tool_total=total,
        to_init_trigger=since(started, primary.triggered),
        init_tool=length("init"),
        init_nodes=init_nodes,
        init_end_to_first_join=since(primary.completed, first_join),
        joins_tool=since(first_join, last_join),
        joins_nodes=joins_nodes,
        after_last_join=since(end_of_joins, ended),
        turning_ready=turning,
        after_last_ready=since(last_ready, ended),
        ready_tool=length("ready"),
        cleanup_tool=length("cleanup"),
        stages={name: round(b - a, 2) for name, (a, b) in spans.items()},
        critical_path=critical,
        overhead=overhead,
        overhead_past_ready=None if overhead is None or turning is None else round(
            overhead - max(turning, 0.0), 2),
    )


ROWS = (
    ("start to the init trigger", "to_init_trigger", None),
    ("init (settle + kubeadm init)", "init_tool", "init_nodes"),
    ("init's end to the first join trigger", "init_end_to_first_join", None),
    ("joins (first trigger to last end)", "joins_tool", "joins_nodes"),
    ("after the last join (Ready, exit)", "after_last_join", None),
    ("  of it the last node turning Ready", None, "turning_ready"),
    ("  of it the tool after the last Ready", "after_last_ready", None),
    ("  of it the ready stage", "ready_tool", None),
    ("  of it the cleanup stage", "cleanup_tool", None),
    ("total", "tool_total", "critical_path"),
)


def _cell(value: float | None) -> str:
    return "       -" if value is None else f"{value:8.2f}"


def show(title: str, runs: list[Timeline]) -> str:
    """The table of one run, or of the medians of several."""
    med = median(runs)
    lines = [title, f"  {'phase':<40} {'tool s':>8} {'nodes s':>8}"]
    for label, tool, nodes in ROWS:
        own = med.get(nodes) if nodes else 0.0
        lines.append(f"  {label:<40} {_cell(med.get(tool) if tool else None)} {_cell(own)}")
    lines.append(f"  {'overhead (total - nodes critical path)':<40} {_cell(med.get('overhead'))}")
    lines.append(f"  {'  of it past the nodes turning Ready':<40} "
                 f"{_cell(med.get('overhead_past_ready'))}")
    stages = ", ".join(f"{k} {v:.2f}" for k, v in med_stages(runs).items())
    lines.append(f"  stages (tool, s): {stages}")
    loads = "; ".join(" ".join(f"{x:.2f}" for x in r.load_average) for r in runs)
    lines.append(f"  load average before each run: {loads}")
    lines.append(f"  exit codes: {', '.join(str(r.exit_code) for r in runs)}")
    return "\n".join(lines)


def median(runs: list[Timeline]) -> dict[str, float | None]:
    """The median of each figure over the runs that have it."""
    out: dict[str, float | None] = {}
    for key in asdict(runs[0]):
        values = [getattr(r, key) for r in runs]
        numbers = [v for v in values if isinstance(v, int | float)]
        out[key] = round(statistics.median(numbers), 2) if numbers else None
    return out


def med_stages(runs: list[Timeline]) -> dict[str, float]:
    names = list(dict.fromkeys(n for r in runs for n in r.stages))
    return {n: round(statistics.median([r.stages[n] for r in runs if n in r.stages]), 2)
            for n in names}


def run_once(args: Any, work: Path, index: int) -> Timeline:
    from tests.lab.lab import Lab  # needs the lab's dependencies only here

    directory = work / f"lab-{index}"
    lab = Lab.up(directory, nodes=args.lab, control_planes=1, settle=args.settle,
                 ready_delay=args.ready_delay)
    try:
        tool_root = Path(args.tool_root).resolve() if args.tool_root else ROOT
        marks_file = directory / "marks.json"
        env = dict(os.environ, PYTHONPATH=str(tool_root),
                   XDG_CACHE_HOME=str(directory / "cache"))
        command = [sys.executable, str(ROOT / "tests" / "benchphases.py"), str(marks_file),
                   "bootstrap", str(lab.inventory_path), "--json"]
        load = os.getloadavg()
        with (directory / "report.json").open("wb") as out, \
                (directory / "report.log").open("wb") as err:
            started = time.time()
            code = subprocess.run(command, cwd=tool_root, stdout=out, stderr=err,
                                  env=env, check=False).returncode
            ended = time.time()
        try:
            marks = json.loads(marks_file.read_text())
        except (OSError, ValueError):
            marks = []
        names = [n.name for n in lab.nodes]
        logs = {n: lab.read(n, KUBEADM_LOG).decode(errors="replace") for n in names}
        ready = ready_times(directory / "lab.kubeconfig")
    finally:
        lab.down()
    times = [node_times(n, logs[n]) for n in names]
    return timeline(code, (round(load[0], 2), round(load[1], 2), round(load[2], 2)),
                    started, ended, marks, times[0], times[1:], ready)


def ready_times(kubeconfig: Path) -> list[float]:
    """When each Node turned Ready (epoch s, whole seconds, as the API records it), read with
    the host's real kubectl; empty when there is no kubeconfig or no kubectl."""
    from tests.lab.image import real_kubectl
    from tests.lab.lab import DEFAULT_VERSION

    kubectl = real_kubectl(DEFAULT_VERSION)
    if kubectl is None or not kubeconfig.exists():
        return []
    out = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "json"],
                         capture_output=True, text=True, check=False, timeout=60)
    if out.returncode != 0:
        return []
    found = []
    for item in json.loads(out.stdout).get("items", []):
        for cond in (item.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                when = datetime.fromisoformat(cond["lastTransitionTime"].replace("Z", "+00:00"))
                found.append(when.timestamp())
    return found


def main(args: Any) -> int:
    work = Path(tempfile.mkdtemp(prefix="k8slk-benchlab-"))
    # As pip installs it: byte-compiled. A checkout run with PYTHONDONTWRITEBYTECODE set (or
    # never run before) would compile every module at each start, a few tenths of a second
    # that no installed tool spends.
    tool_root = Path(args.tool_root).resolve() if args.tool_root else ROOT
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tool_root / "k8slk_ops")],
                   check=True, stdout=subprocess.DEVNULL)
    runs: list[Timeline] = []
    try:
        for i in range(args.runs):
            one = run_once(args, work, i)
            runs.append(one)
            print(show(f"run {i + 1}: bootstrap of a {args.lab}-node lab (1 control plane, "
                       f"settle {args.settle:g} s, ready delay {args.ready_delay:g} s)", [one]),
                  flush=True)
            if args.json:
                print(json.dumps(asdict(one)), flush=True)
        if len(runs) > 1:
            print(show(f"median of {len(runs)} runs", runs), flush=True)
    finally:
        if args.keep:
            print(f"lab directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if any(r.exit_code != 0 for r in runs) else 0

