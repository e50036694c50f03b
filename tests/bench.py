"""Scale benchmark: k8slk-ops bootstrap against a fleet of simulated LinuxKit nodes.

    python -m tests.bench [--nodes 1000] [--concurrency 64[,16,256]] [--settle 1]
                          [--kubeadm-seconds 1] [--ready-delay 0.5] [--profile DIR] [--json]

For each concurrency it brings up a fresh fleet (tests/fleet), runs
``python -m k8slk_ops bootstrap INVENTORY --json --concurrency C`` and prints:

- wall time of the run;
- the nodes' own time: what the nodes themselves make a perfect tool wait, (settle + kubeadm
  duration) for the init, for each control plane joined one at a time and for each wave of at
  most C concurrent worker joins, plus the Ready delay once;
- our overhead: wall time minus the nodes' own time;
- CPU seconds of the k8slk-ops process (``os.wait4``'s rusage of the child) and of the fleet
  process (from /proc over the same span), and the k8slk-ops process's peak RSS;
- SSH connections per second, as the fleet accepted them during the run;
- SSH commands per node (mean, max, and the usual mix), and CPU milliseconds per node;
- then ``k8slk-ops status`` of the same fleet, just bootstrapped: wall, CPU (and per node),
  peak RSS, at the same concurrency;
- then the floor on the same fleet (``python -m tests.fleet.floor``, ``--no-floor`` to skip):
  asyncssh alone, a login and one command per node, wall and CPU per node, so that a run is
  read against what the machine could do at that moment (its speed drifts);
- the load average of the machine before the run (other work shares its cores).

It prints figures and asserts nothing about them; it exits non-zero only if a run failed.
With ``--lab N [--runs K] [--tool-root DIR]`` it bootstraps fresh labs of N real-sshd nodes
instead and prints the tool's time against the nodes' own, phase by phase (tests/benchlab.py).
With ``--profile DIR`` the k8slk-ops process runs under ``py-spy record`` (when installed) or
cProfile, py-spy also records the fleet during the run, and the profiles are written to DIR.
With ``--phases`` each run also prints its wall and CPU per phase (tests/benchphases.py).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests import benchlab
from tests.benchphases import spans
from tests.fleet import layout, process

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Figures:
    nodes: int
    control_planes: int
    concurrency: int
    exit_code: int
    outcomes: dict[str, int]
    wall_seconds: float
    nodes_seconds: float
    overhead_seconds: float
    tool_cpu_seconds: float
    tool_peak_rss_mb: float
    fleet_cpu_seconds: float
    fleet_startup_seconds: float
    connections: int
    connections_per_second: float | None
    commands: dict[str, int]
    commands_per_node: dict[str, Any]
    tool_cpu_ms_per_node: float
    status: RunFigures | None
    load_average: tuple[float, float, float]
    phases: list[tuple[str, float, float]] | None = None  # (phase, wall s, CPU s)
    floor: FloorFigures | None = None


@dataclass
class FloorFigures:
    """asyncssh alone on the same fleet just after the runs (tests/fleet/floor.py): a login and
    one command per node, as the tool prepares asyncssh. This machine's speed drifts; the
    floor measured beside a run says how far above it the run is."""

    wall_seconds: float
    cpu_ms_per_node: float


@dataclass
class RunFigures:
    """One run of the tool: its exit code, wall, CPU and peak RSS."""

    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    cpu_ms_per_node: float
    peak_rss_mb: float
    phases: list[tuple[str, float, float]] | None = None


def nodes_time(nodes: int, control_planes: int, concurrency: int, settle: float,
               kubeadm_seconds: float, ready_delay: float) -> float:
    """The least time the nodes themselves need for a bootstrap (see the module doc)."""
    workers = nodes - control_planes
    waves = 1 + (control_planes - 1) + math.ceil(workers / concurrency)
    return waves * (settle + kubeadm_seconds) + ready_delay


def raise_nofile(nodes: int) -> str | None:
    """Lift the open-file soft limit to the hard one (the fleet and k8slk-ops inherit it and
    raise their own too); why the run cannot work when even the hard limit is too low: the
    fleet holds a listener and a connection per node, k8slk-ops a connection per node."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    needed = 2 * nodes + 256
    if hard != resource.RLIM_INFINITY and hard < needed:
        return (f"{nodes} nodes need about {needed} open files in the fleet's process; the hard "
                f"limit is {hard}: raise it (ulimit -Hn, or LimitNOFILE= for a service)")
    return None


def _command(inventory: Path, concurrency: int, profile: Path | None,
             phases: Path | None = None, command: str = "bootstrap") -> list[str]:
    args = [command, str(inventory), "--json", "--concurrency", str(concurrency)]
    tool = ["-m", "k8slk_ops", *args]
    if profile is None and phases is not None:
        return [sys.executable, "-m", "tests.benchphases", str(phases), *args]
    if profile is None:
        return [sys.executable, *tool]
    profile.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy")
    if spy is not None:
        out = profile / f"k8slk-ops-{command}-c{concurrency}.raw"
        return [spy, "record", "-r", "50", "-f", "raw", "-o", str(out), "--", sys.executable, *tool]
    out = profile / f"k8slk-ops-{command}-c{concurrency}.pstats"
    return [sys.executable, "-m", "cProfile", "-o", str(out), *tool]


def _profile_fleet(pid: int, profile: Path | None, concurrency: int) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` attached to the fleet for the span of the run, when profiling."""
    spy = shutil.which("py-spy")
    if profile is None or spy is None:
        return None
    out = profile / f"fleet-c{concurrency}.raw"
    return subprocess.Popen([spy, "record", "-r", "50", "-f", "raw", "-o", str(out), "--pid",
                             str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _tool(command: list[str], directory: Path, name: str) -> tuple[int, float, Any]:
    """Run the tool; its exit code, wall seconds and rusage (``os.wait4``)."""
    env = dict(os.environ, XDG_CACHE_HOME=str(directory / "cache"))
    with (directory / f"{name}.json").open("wb") as out, \
            (directory / f"{name}.log").open("wb") as err:
        t0 = time.monotonic()
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - t0
    return os.waitstatus_to_exitcode(status), wall, usage


def _snapshot(directory: Path, pid: int, timeout: float = 30.0) -> dict[str, Any]:
    """The fleet's counters as of now (SIGUSR1 makes it write stats.json)."""
    path = directory / layout.STATS_FILE
    before = path.stat().st_mtime_ns if path.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_mtime_ns != before:
            with contextlib.suppress(ValueError):
                data: dict[str, Any] = json.loads(path.read_text())
                return data
        time.sleep(0.05)
    return {}


def _phases_file(args: argparse.Namespace, directory: Path, name: str) -> Path | None:
    return directory / f"{name}-phases.json" if args.phases else None


def _read_phases(path: Path | None) -> list[tuple[str, float, float]] | None:
    if path is None:
        return None
    try:
        return spans(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _status(args: argparse.Namespace, directory: Path, concurrency: int) -> RunFigures:
    phases = _phases_file(args, directory, "status")
    command = _command(directory / layout.INVENTORY, concurrency, args.profile, phases, "status")
    code, wall, usage = _tool(command, directory, "status")
    cpu = usage.ru_utime + usage.ru_stime
    return RunFigures(code, round(wall, 2), round(cpu, 2), round(cpu / args.nodes * 1000, 2),
                      round(usage.ru_maxrss / 1024, 1), _read_phases(phases))


def _floor(directory: Path, concurrency: int) -> FloorFigures | None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.fleet.floor", str(directory), "--concurrency",
         str(concurrency)], cwd=ROOT, capture_output=True, text=True,
    )
    try:
        figures = json.loads(done.stdout)
        return FloorFigures(float(figures["wallSeconds"]), float(figures["cpuMsPerNode"]))
    except (ValueError, KeyError, TypeError):
        print(f"bench: the floor measurement failed: {done.stderr.strip()[-500:]}",
              file=sys.stderr)
        return None


def run_once(args: argparse.Namespace, concurrency: int, work: Path) -> Figures:
    directory = work / f"fleet-c{concurrency}"
    directory.mkdir(parents=True, exist_ok=True)
    port = args.port or process.free_port()
    up = [sys.executable, "-m", "tests.fleet", "up", "--dir", str(directory),
          "--nodes", str(args.nodes), "--control-planes", str(args.control_planes),
          "--settle", str(args.settle), "--kubeadm-seconds", str(args.kubeadm_seconds),
          "--ready-delay", str(args.ready_delay), "--port", str(port)]
    started = time.monotonic()
    subprocess.run(up, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    startup = time.monotonic() - started
    fleet_pid = process.running_pid(directory)
    assert fleet_pid is not None
    load = os.getloadavg()
    status: RunFigures | None = None
    floor: FloorFigures | None = None
    try:
        fleet_cpu0 = process.cpu_seconds(fleet_pid)
        phases = _phases_file(args, directory, "report")
        command = _command(directory / layout.INVENTORY, concurrency, args.profile, phases)
        spy = _profile_fleet(fleet_pid, args.profile, concurrency)
        t0_wall = time.time()
        code, wall, usage = _tool(command, directory, "report")
        t1_wall = time.time()
        fleet_cpu = process.cpu_seconds(fleet_pid) - fleet_cpu0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait()
        stats = _snapshot(directory, fleet_pid)
        if not args.no_status:
            status = _status(args, directory, concurrency)
        if not args.no_floor:
            floor = _floor(directory, concurrency)
    finally:
        process.stop(directory)
    try:
        text = (directory / "report.json").read_text()  # a profiler may print around it
        report: dict[str, Any] = json.JSONDecoder().raw_decode(text[text.index("{"):])[0]
        outcomes = dict(Counter(n["outcome"] for n in report["nodes"]))
        exit_code = int(report["exitCode"])
    except (OSError, ValueError, KeyError):
        outcomes, exit_code = {}, code
    times = [t for t in stats.get("authTimes", []) if t0_wall <= t <= t1_wall]
    span = (max(times) - min(times)) if len(times) > 1 else 0.0
    own = nodes_time(args.nodes, args.control_planes, concurrency, args.settle,
                     args.kubeadm_seconds, args.ready_delay)
    cpu = usage.ru_utime + usage.ru_stime
    return Figures(
        nodes=args.nodes,
        control_planes=args.control_planes,
        concurrency=concurrency,
        exit_code=exit_code,
        outcomes=outcomes,
        wall_seconds=round(wall, 2),
        nodes_seconds=round(own, 2),
        overhead_seconds=round(wall - own, 2),
        tool_cpu_seconds=round(cpu, 2),
        tool_peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        fleet_cpu_seconds=round(fleet_cpu, 2),
        fleet_startup_seconds=round(startup, 2),
        connections=len(times),
        connections_per_second=round(len(times) / span, 1) if span > 0 else None,
        commands=stats.get("commands", {}),
        commands_per_node=stats.get("commandsPerNode", {}),
        tool_cpu_ms_per_node=round(cpu / args.nodes * 1000, 2),
        status=status,
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
        phases=_read_phases(phases),
        floor=floor,
    )


def _show_phases(phases: list[tuple[str, float, float]] | None) -> list[str]:
    if not phases:
        return []
    return ["  phases (wall s, CPU s):"] + [
        f"    {name:<28} {wall:8.2f} {cpu:8.2f}" for name, wall, cpu in phases
    ]


def show(f: Figures) -> str:
    rate = f"{f.connections_per_second:.0f}/s" if f.connections_per_second else "n/a"
    share = f.overhead_seconds / f.wall_seconds * 100 if f.wall_seconds else 0.0
    per = f.commands_per_node
    typical = ", ".join(f"{k} {v}" for k, v in per.get("typical", {}).items()) or "n/a"
    st = f.status
    status = [] if st is None else [
        f"status of the same {f.nodes} nodes: exit {st.exit_code}",
        f"  wall time             {st.wall_seconds:8.2f} s",
        f"  k8slk-ops CPU         {st.cpu_seconds:8.2f} s   ({st.cpu_ms_per_node:.2f} ms per node)",
        f"  k8slk-ops peak RSS    {st.peak_rss_mb:8.1f} MB",
        *_show_phases(st.phases),
    ]
    floor = [] if f.floor is None else [
        "floor: asyncssh alone on the same fleet, a login and one command per node",
        f"  wall time             {f.floor.wall_seconds:8.2f} s",
        f"  CPU per node          {f.floor.cpu_ms_per_node:8.2f} ms",
    ]
    return "\n".join([
        f"bootstrap of {f.nodes} simulated nodes ({f.control_planes} control plane(s)), "
        f"--concurrency {f.concurrency}: exit {f.exit_code}, outcomes {f.outcomes}",
        f"  wall time             {f.wall_seconds:8.2f} s",
        f"  nodes' own time       {f.nodes_seconds:8.2f} s",
        f"  our overhead          {f.overhead_seconds:8.2f} s  ({share:.0f}% of wall)",
        f"  k8slk-ops CPU         {f.tool_cpu_seconds:8.2f} s",
        f"  k8slk-ops peak RSS    {f.tool_peak_rss_mb:8.1f} MB",
        f"  fleet CPU (run)       {f.fleet_cpu_seconds:8.2f} s",
        f"  fleet startup         {f.fleet_startup_seconds:8.2f} s",
        f"  SSH connections       {f.connections:8d}   ({rate})",
        f"  commands              {sum(f.commands.values()):8d}   "
        + ", ".join(f"{k} {v}" for k, v in list(f.commands.items())[:8]),
        f"  commands per node     {per.get('mean', 0):8.2f}   (max {per.get('max', 0)}; "
        f"usual: {typical})",
        f"  k8slk-ops CPU/node    {f.tool_cpu_ms_per_node:8.2f} ms",
        f"  load average before   {' '.join(f'{x:.2f}' for x in f.load_average)}",
        *_show_phases(f.phases),
        *status,
        *floor,
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--control-planes", type=int, default=1)
    p.add_argument("--concurrency", default="64", help="one value or a comma-separated list")
    p.add_argument("--settle", type=float, default=None, help="default: 1 (fleet), 5 (lab)")
    p.add_argument("--kubeadm-seconds", type=float, default=1.0)
    p.add_argument("--ready-delay", type=float, default=None,
                   help="default: 0.5 (fleet), 1 (lab)")
    p.add_argument("--lab", type=int, default=0, metavar="N",
                   help="bootstrap a fresh lab of N nodes (tests/lab, needs root) instead of the "
                   "fleet, and print the tool's time against the nodes' own per phase")
    p.add_argument("--runs", type=int, default=1, help="with --lab: runs on fresh labs (median)")
    p.add_argument("--tool-root", default=None,
                   help="with --lab: the checkout whose k8slk_ops runs (default: this one)")
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument("--profile", type=Path, default=None)
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    p.add_argument("--keep", action="store_true", help="keep the fleet directories")
    p.add_argument("--no-status", action="store_true", help="skip the status run")
    p.add_argument("--no-floor", action="store_true",
                   help="skip the floor measurement (tests/fleet/floor.py) after the runs")
    p.add_argument("--phases", action="store_true",
                   help="also print wall and CPU per phase of each run (not with --profile)")
    args = p.parse_args(argv)
    if args.lab:
        args.settle = 5.0 if args.settle is None else args.settle
        args.ready_delay = 1.0 if args.ready_delay is None else args.ready_delay
        return benchlab.main(args)
    args.settle = 1.0 if args.settle is None else args.settle
    args.ready_delay = 0.5 if args.ready_delay is None else args.ready_delay
    why = raise_nofile(args.nodes)
    if why is not None:
        print(f"bench: {why}", file=sys.stderr)
        return 2
    # The tool as installed: pip compiles its bytecode; without it (PYTHONDONTWRITEBYTECODE)
    # every run would compile the package again, ~0.1 s of CPU that no installed copy spends.
    compileall.compile_dir(ROOT / "k8slk_ops", quiet=1)
    work = Path(tempfile.mkdtemp(prefix="k8slk-bench-"))
    failed = False
    try:
        for value in args.concurrency.split(","):
            figures = run_once(args, int(value), work)
            print(show(figures), flush=True)
            if args.json:
                print(json.dumps(asdict(figures)), flush=True)
            failed |= figures.exit_code != 0 or (figures.status is not None
                                                 and figures.status.exit_code != 0)
    finally:
        if args.keep:
            print(f"fleet directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
