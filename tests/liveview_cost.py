"""What the live view costs: CPU of a fleet bootstrap on a terminal against the same with plain
lines, and the view's own cost per event and per frame.

    python -m tests.liveview_cost [--nodes 1000] [--concurrency 64] [--kubeadm-seconds 1]

Brings up a fresh fleet (tests/fleet) per run, bootstraps it once with stderr on an 80x24
pseudo-terminal (the live view) and once with stderr to a file (plain lines), and prints the
CPU seconds of the k8slk-ops process each time; then feeds a model of that many nodes the
events of a bootstrap and times ``emit`` and a frame. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from k8slk_ops.output.events import Event, EventKind
from k8slk_ops.output.redact import Redactor
from k8slk_ops.output.report import LiveReporter
from tests.e2e.helpers import ROOT, fleet_up
from tests.e2e.terminal import run_on_terminal
from tests.fleet import layout, process


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bootstrap_cpu(args: argparse.Namespace, on_terminal: bool, work: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one bootstrap of a fresh fleet."""
    directory = work / ("tty" if on_terminal else "plain")
    directory.mkdir()
    fleet_up(directory, args.nodes, settle=0.2, kubeadm_seconds=args.kubeadm_seconds,
             ready_delay=0.3)
    command = [sys.executable, "-m", "k8slk_ops", "bootstrap", str(directory / layout.INVENTORY),
               "--concurrency", str(args.concurrency)]
    env = dict(os.environ, XDG_CACHE_HOME=str(directory / "cache"))
    try:
        cpu0, t0 = _children_cpu(), time.monotonic()
        if on_terminal:
            run_on_terminal(command, columns=80, rows=24, cwd=ROOT, env=env,
                            on_frame=lambda frame: None, timeout=600)
        else:
            with (directory / "run.log").open("wb") as err:
                subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
                               check=False)
        return time.monotonic() - t0, _children_cpu() - cpu0
    finally:
        process.stop(directory)


def view_cost(nodes: int) -> tuple[float, float]:
    """Microseconds per event, milliseconds per frame, for ``nodes`` nodes joining."""
    console = Console(file=io.StringIO(), width=80, height=24, force_terminal=True)
    reporter = LiveReporter(Redactor(), console)
    reporter.live.stop()  # frames are timed by hand below
    names = [f"w-{i}" for i in range(nodes)]
    events = [Event(n, "connect", k) for n in names for k in (EventKind.START, EventKind.OK)]
    events.append(Event(None, "join-workers", EventKind.STAGE, nodes=tuple(names)))
    for n in names:
        events += [Event(n, "join", EventKind.START, "write kubeadm.yaml"),
                   Event(n, "join", EventKind.PROGRESS, "triggered join; following the log")]
    events += [Event(n, "join", EventKind.OK, "1.0s") for n in names[: nodes // 2]]
    t0 = time.perf_counter()
    for event in events:
        reporter.emit(event)
    per_event = (time.perf_counter() - t0) / len(events)
    t0 = time.perf_counter()
    frames = 50
    for _ in range(frames):
        console.print(reporter._render())
    return per_event * 1e6, (time.perf_counter() - t0) / frames * 1e3


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tests.liveview_cost", description=__doc__)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--kubeadm-seconds", type=float, default=1.0)
    args = p.parse_args()
    per_event_us, per_frame_ms = view_cost(args.nodes)
    print(f"view, {args.nodes} nodes: {per_event_us:.1f} µs per event, "
          f"{per_frame_ms:.2f} ms per 80x24 frame (drawn 4 times a second)")
    with tempfile.TemporaryDirectory() as tmp:
        for on_terminal in (False, True):
            wall, cpu = bootstrap_cpu(args, on_terminal, Path(tmp))
            what = "live view on 80x24 pty" if on_terminal else "plain lines to a file"
            print(f"bootstrap of {args.nodes} nodes, {what}: wall {wall:.1f} s, "
                  f"k8slk-ops CPU {cpu:.2f} s ({cpu / args.nodes * 1e3:.1f} ms per node)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
