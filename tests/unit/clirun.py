"""k8slk-ops run in the test's own process with Typer's ``CliRunner``: flags, exit code, output.

Tests of the engine speak to it only through the command line (its flags, its exit codes and
its ``--json`` report), so they hold whatever the layers under the CLI become. Each run gets the
test's own cache directory (where the local lock lives) and its own log file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from k8slk_ops.cli.main import app

# Step kinds that change a node; the others only check, wait, read or clean up.
CHANGING_STEPS = frozenset({"init", "join", "drain", "kubeadm-reset", "delete-node", "run"})


@dataclass
class CliRun:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    log: str

    @property
    def report(self) -> dict[str, Any]:
        """The ``--json`` report."""
        try:
            data: dict[str, Any] = json.loads(self.stdout)
        except ValueError as exc:
            raise AssertionError(f"no JSON report on stdout:\n{self.stdout}\n{self.stderr}") from exc
        return data

    @property
    def outcomes(self) -> dict[str, str]:
        return {n["name"]: n["outcome"] for n in self.report["nodes"]}

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        return {n["name"]: n for n in self.report["nodes"]}

    def changes(self) -> set[tuple[str, str]]:
        """(step kind, node) of every planned action that changes a node."""
        return {
            (action["step"], node["node"])
            for stage in self.report.get("plan") or []
            for node in stage["nodes"]
            for action in node["actions"]
            if action["step"] in CHANGING_STEPS
        }

    def planned_steps(self) -> set[str]:
        """Every step kind with an action in the plan."""
        return {
            action["step"]
            for stage in self.report.get("plan") or []
            for node in stage["nodes"]
            for action in node["actions"]
        }

    def why(self) -> str:
        """What to print when an assertion on this run fails."""
        return f"k8slk-ops {' '.join(self.args)} -> {self.code}\n{self.stderr[-4000:]}\n{self.log[-4000:]}"


class K8slk:
    """``k8slk("bootstrap", inventory, "--json")``: one in-process run of the CLI."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cache = workdir / "cache"
        self.runs = 0

    def __call__(self, *args: str | Path, log: bool = True, input: str | None = None) -> CliRun:
        argv = [str(a) for a in args]
        self.runs += 1
        log_file = self.workdir / f"run-{self.runs}.log"
        if log and argv and argv[0] != "inventory":
            argv += ["--log-file", str(log_file)]
        try:
            result = CliRunner().invoke(
                app, argv, input=input, env={"XDG_CACHE_HOME": str(self.cache), "COLUMNS": "200"},
                catch_exceptions=False,
            )
        finally:
            _close_log_handlers()
        text = log_file.read_text() if log_file.exists() else ""
        return CliRun(tuple(argv), result.exit_code, result.stdout, result.stderr, text)


def _close_log_handlers() -> None:
    """The CLI points the ``k8slk_ops`` logger at its log file and its stderr for the run and
    leaves them attached (and the file open) when it returns: fine for a process that ends
    there, not for one that runs it again."""
    logger = logging.getLogger("k8slk_ops")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
