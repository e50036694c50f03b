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
- SSH connections per second, as the fleet accepted them during the run.

It prints figures and asserts nothing about them; it exits non-zero only if a run failed.
With ``--profile DIR`` the k8slk-ops process runs under ``py-spy record`` (when installed) or
cProfile, py-spy also records the fleet during the run, and the profiles are written to DIR.
"""

from __future__ import annotations

import argparse
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


def nodes_time(nodes: int, control_planes: int, concurrency: int, settle: float,
               kubeadm_seconds: float, ready_delay: float) -> float:
    """The least time the nodes themselves need for a bootstrap (see the module doc)."""
    workers = nodes - control_planes
    waves = 1 + (control_planes - 1) + math.ceil(workers / concurrency)
    return waves * (settle + kubeadm_seconds) + ready_delay


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _command(inventory: Path, concurrency: int, profile: Path | None) -> list[str]:
    tool = ["-m", "k8slk_ops", "bootstrap", str(inventory), "--json",
            "--concurrency", str(concurrency)]
    if profile is None:
        return [sys.executable, *tool]
    profile.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy")
    if spy is not None:
        out = profile / f"k8slk-ops-c{concurrency}.raw"
        return [spy, "record", "-r", "50", "-f", "raw", "-o", str(out), "--", sys.executable, *tool]
    out = profile / f"k8slk-ops-c{concurrency}.pstats"
    return [sys.executable, "-m", "cProfile", "-o", str(out), *tool]


def _profile_fleet(pid: int, profile: Path | None, concurrency: int) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` attached to the fleet for the span of the run, when profiling."""
    spy = shutil.which("py-spy")
    if profile is None or spy is None:
        return None
    out = profile / f"fleet-c{concurrency}.raw"
    return subprocess.Popen([spy, "record", "-r", "50", "-f", "raw", "-o", str(out), "--pid",
                             str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    try:
        fleet_cpu0 = process.cpu_seconds(fleet_pid)
        env = dict(os.environ, XDG_CACHE_HOME=str(directory / "cache"))
        out_path = directory / "report.json"
        err_path = directory / "run.log"
        command = _command(directory / layout.INVENTORY, concurrency, args.profile)
        spy = _profile_fleet(fleet_pid, args.profile, concurrency)
        t0_wall = time.time()
        t0 = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, env=env)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
        t1_wall = time.time()
        fleet_cpu = process.cpu_seconds(fleet_pid) - fleet_cpu0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait()
    finally:
        stats = process.stop(directory)
    try:
        text = out_path.read_text()  # a profiler may print around the report: skip that
        report: dict[str, Any] = json.JSONDecoder().raw_decode(text[text.index("{"):])[0]
        outcomes = dict(Counter(n["outcome"] for n in report["nodes"]))
        exit_code = int(report["exitCode"])
    except (OSError, ValueError, KeyError):
        outcomes, exit_code = {}, child.returncode
    times = [t for t in stats.get("authTimes", []) if t0_wall <= t <= t1_wall]
    span = (max(times) - min(times)) if len(times) > 1 else 0.0
    own = nodes_time(args.nodes, args.control_planes, concurrency, args.settle,
                     args.kubeadm_seconds, args.ready_delay)
    return Figures(
        nodes=args.nodes,
        control_planes=args.control_planes,
        concurrency=concurrency,
        exit_code=exit_code,
        outcomes=outcomes,
        wall_seconds=round(wall, 2),
        nodes_seconds=round(own, 2),
        overhead_seconds=round(wall - own, 2),
        tool_cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2),
        tool_peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        fleet_cpu_seconds=round(fleet_cpu, 2),
        fleet_startup_seconds=round(startup, 2),
        connections=len(times),
        connections_per_second=round(len(times) / span, 1) if span > 0 else None,
        commands=stats.get("commands", {}),
    )


def show(f: Figures) -> str:
    rate = f"{f.connections_per_second:.0f}/s" if f.connections_per_second else "n/a"
    share = f.overhead_seconds / f.wall_seconds * 100 if f.wall_seconds else 0.0
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
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--control-planes", type=int, default=1)
    p.add_argument("--concurrency", default="64", help="one value or a comma-separated list")
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--kubeadm-seconds", type=float, default=1.0)
    p.add_argument("--ready-delay", type=float, default=0.5)
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument("--profile", type=Path, default=None)
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    p.add_argument("--keep", action="store_true", help="keep the fleet directories")
    args = p.parse_args(argv)
    raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="k8slk-bench-"))
    failed = False
    try:
        for value in args.concurrency.split(","):
            figures = run_once(args, int(value), work)
            print(show(figures), flush=True)
            if args.json:
                print(json.dumps(asdict(figures)), flush=True)
            failed |= figures.exit_code != 0
    finally:
        if args.keep:
            print(f"fleet directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
