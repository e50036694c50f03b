"""``python -m tests.driftbench --nodes N --control-planes C [--runs R]``: drift against a
bootstrapped in-process fleet: each run's wall time and the sessions each node served.

What it shows is the tool's own cost and its round trips (the fleet's nodes answer at once):
workers are never contacted, each control plane serves one read of its manifests beside the
run's facts probe, and the primary the node list, the addon record and one ConfigMap list.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.driftbench")
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--control-planes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="driftbench-"))
    fleet = InProcessFleet(base / "fleet", args.nodes, args.control_planes).start()
    try:
        work = base / "cli"
        work.mkdir()
        k8slk = K8slk(work)
        boot = k8slk("bootstrap", fleet.inventory, log=False)
        if boot.code != 0:
            raise SystemExit(f"bootstrap failed ({boot.code}): {boot.stderr[-2000:]}")
        for run in range(1, args.runs + 1):
            before = {n: Counter(fleet.node_commands(n)) for n in fleet.names}
            started = time.monotonic()
            drift = k8slk("drift", fleet.inventory, "--json", log=False)
            wall = time.monotonic() - started
            served = {n: Counter(fleet.node_commands(n)) - before[n] for n in fleet.names}
            workers = sum(sum(c.values()) for n, c in served.items() if n.startswith("w-"))
            planes = {n: dict(c) for n, c in served.items() if n.startswith("cp-")}
            items = len(drift.report["data"]["drift"]["items"])
            print(f"run {run}: exit {drift.code}, {wall:.2f} s, {items} differences, "
                  f"worker sessions {workers}")
            for name, sessions in planes.items():
                print(f"  {name}: {sessions}")
    finally:
        fleet.stop()


if __name__ == "__main__":
    main()
