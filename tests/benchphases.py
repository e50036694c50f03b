"""k8slk-ops with a stopwatch: ``python -m tests.benchphases OUT ARGS...`` runs the CLI with ARGS
in this process and writes to OUT, as JSON, the wall and CPU seconds (since the process
started) at which each phase began and ended: imports, inventory, connecting and reading facts,
each stage, closing the connections, the report. For ``python -m tests.bench --phases`` and
``--lab`` (the first mark, ``epoch``, is the wall clock at the start).

It wraps a few methods of the engine from the outside (the engine has no hooks for this):
if one is renamed, the phases are missing from the bench's output, nothing else breaks.
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from collections.abc import Callable
from typing import Any

_T0, _C0 = time.monotonic(), time.process_time()
# The wall clock at _T0, so that the marks line up with other clocks (the lab's node logs).
_marks: list[tuple[str, float, float]] = [("epoch", time.time(), 0.0)]


def mark(what: str) -> None:
    _marks.append((what, round(time.monotonic() - _T0, 3), round(time.process_time() - _C0, 3)))


def _timed(owner: Any, name: str, label: Callable[..., str]) -> None:
    original = getattr(owner, name, None)
    if original is None:
        return

    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        what = label(self, *args)
        mark(f"{what} start")
        try:
            return await original(self, *args, **kwargs)
        finally:
            mark(f"{what} end")

    setattr(owner, name, wrapper)


def _facts_label(self: Any, names: Any) -> str:
    return f"facts of {len(names)}" if isinstance(names, list | tuple) else "facts"


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]

    def write() -> None:
        mark("exit")
        with open(out, "w") as handle:
            json.dump(_marks, handle)

    atexit.register(write)
    from k8slk_ops.cli import cliutil
    from k8slk_ops.cli import main as cli
    from k8slk_ops.engine import executor, probe

    mark("imported")
    _timed(executor.Executor, "_run_stage", lambda self, stage, *a: f"stage {stage.name}")
    _timed(probe.Cluster, "gather", _facts_label)
    _timed(probe.Cluster, "close", lambda self: "close")
    load = cliutil._load_inventory

    def load_inventory(path: Any) -> Any:
        mark("inventory start")
        try:
            return load(path)
        finally:
            mark("inventory end")

    cliutil._load_inventory = load_inventory
    sys.argv = ["k8slk-ops", *args]
    cli.main()


def spans(marks: list[list[Any]]) -> list[tuple[str, float, float]]:
    """(phase, wall seconds, CPU seconds) from the marks, in order; the time before the first
    mark is the interpreter starting and importing, the time after the last stage the report."""
    out: list[tuple[str, float, float]] = []
    starts: dict[str, tuple[float, float]] = {}
    last_wall = last_cpu = 0.0
    for what, wall, cpu in marks:
        if what == "epoch":
            continue
        if what == "imported":
            out.append(("start and imports", wall, cpu))
        elif what.endswith(" start"):
            starts[what[:-6]] = (wall, cpu)
        elif what.endswith(" end") and what[:-4] in starts:
            w0, c0 = starts.pop(what[:-4])
            out.append((what[:-4], wall - w0, cpu - c0))
        elif what == "exit":
            out.append(("report and exit", wall - last_wall, cpu - last_cpu))
        if what != "exit":
            last_wall, last_cpu = wall, cpu
    return [(name, round(w, 2), round(c, 2)) for name, w, c in out]


if __name__ == "__main__":
    main()
