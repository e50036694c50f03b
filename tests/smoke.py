"""The command line as a new user meets it, run as a user runs it: the installed ``k8slk-ops``.

``python -m tests.smoke`` (the ``newest`` and ``lowest`` nox sessions run it after the unit
tests): every command's ``--help`` renders in the usual notation (``INVENTORY``, ``PATH``, no
value shown for ``--help``) with nothing on stderr; ``--version`` and ``inventory check`` of the
shipped inventories print nothing on stderr; a 20-node bootstrap of the in-process fleet ends
with every node ok and no dependency's warning on stderr. It exits non-zero naming each thing
that failed, so a dependency release that changes what a user sees fails CI.

``help_problems`` and ``command_paths`` are shared with tests/unit/test_cli_help.py, which
checks the same rendering in-process under whatever versions the test run installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INVENTORIES = sorted((ROOT / "inventories").glob("*.yml")) + sorted(
    (ROOT / "inventories").glob("*.ini")
)
# A dependency's warning as Python prints it: "<file>:<line>: SomethingWarning: text".
WARNING_LINE = re.compile(r"^\S+:\d+: \w*Warning: ", re.MULTILINE)


def command_paths() -> list[tuple[str, ...]]:
    """Every command and sub-command of the CLI, as the words typed after ``k8slk-ops``."""
    import typer
    import typer.main

    from k8slk_ops.cli.main import app

    paths: list[tuple[str, ...]] = [()]

    # Typer 0.26 carries its own copy of click: groups are known by what they do.
    def walk(group: Any, prefix: tuple[str, ...]) -> None:
        ctx = typer.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            paths.append((*prefix, name))
            if hasattr(command, "list_commands"):
                walk(command, (*prefix, name))

    walk(typer.main.get_command(app), ())
    return paths


def help_problems(text: str) -> list[str]:
    """What in a command's help departs from the usual notation, worded for a failure message.

    The usual notation (click's, and Typer's before 0.27): arguments in capitals on the usage
    line (``INVENTORY``), types in capitals (``PATH``, ``INTEGER``), and nothing after a flag
    that takes no value (``--help``, ``--json``).
    """
    problems = []
    usage = next((line for line in text.splitlines() if "Usage:" in line), "")
    if not usage:
        problems.append("no usage line")
    if re.search(r"\{\w+\}", usage) or re.search(r"\[[a-z][a-z-]*\]", usage):
        problems.append(f"arguments not in capitals on the usage line: {usage.strip()!r}")
    if re.search(r"<(path|bool|int|text|str|float)[^>]*>", text, re.IGNORECASE):
        problems.append("a type written as <type>, not in capitals")
    help_row = next((line for line in text.splitlines() if "--help" in line), "")
    if not re.search(r"--help\s+Show this message", help_row):
        problems.append(f"--help shown with a value: {help_row.strip()!r}")
    return problems


def _cli() -> list[str]:
    """The installed console script: what a user runs, its start-up included."""
    exe = shutil.which("k8slk-ops", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "k8slk_ops"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_cli(), *args], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )


def write_login_keys(home: Path) -> None:
    """The keys the shipped inventories name (``~/.ssh/...``), under a HOME of the smoke's own,
    so their check is the check a user with those keys gets."""
    with warnings.catch_warnings():  # this process's import of asyncssh is not under test
        warnings.simplefilter("ignore")
        import asyncssh

    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = asyncssh.generate_private_key("ssh-ed25519")
    for name in ("id_ed25519", "prod_ed25519", "id_rsa"):
        key.write_private_key(ssh / name)
        (ssh / name).chmod(0o600)
    (ssh / "known_hosts").touch()


def _check_help(failures: list[str]) -> None:
    for path in command_paths():
        done = _run(*path, "--help")
        where = " ".join(("k8slk-ops", *path, "--help"))
        if done.returncode != 0:
            failures.append(f"{where}: exit {done.returncode}: {done.stderr.strip()}")
        if done.stderr:
            failures.append(f"{where}: stderr: {done.stderr.strip()[:400]}")
        failures.extend(f"{where}: {problem}" for problem in help_problems(done.stdout))


def _check_quiet_start(failures: list[str], home: Path) -> None:
    done = _run("--version")
    if done.returncode != 0 or done.stderr:
        failures.append(f"--version: exit {done.returncode}, stderr {done.stderr.strip()!r}")
    for inventory in INVENTORIES:
        done = _run("inventory", "check", str(inventory), env={"HOME": str(home)})
        if done.returncode != 0 or done.stderr:
            failures.append(
                f"inventory check {inventory.name}: exit {done.returncode}, "
                f"stderr {done.stderr.strip()[:400]!r}"
            )


def _check_bootstrap(failures: list[str], workdir: Path) -> None:
    from tests.fleet.inprocess import InProcessFleet

    with InProcessFleet(workdir / "fleet", nodes=20, control_planes=1) as fleet:
        done = _run("bootstrap", str(fleet.inventory), "--json")
    if done.returncode != 0:
        failures.append(f"bootstrap of 20 nodes: exit {done.returncode}: {done.stderr[-800:]}")
        return
    outcomes = {node["name"]: node["outcome"] for node in json.loads(done.stdout)["nodes"]}
    if len(outcomes) != 20 or set(outcomes.values()) != {"ok"}:
        failures.append(f"bootstrap of 20 nodes: outcomes {outcomes}")
    if WARNING_LINE.search(done.stderr):
        failures.append(f"bootstrap: a dependency's warning on stderr: {done.stderr[:400]!r}")


def main() -> int:
    checks: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="k8slk-smoke-") as tmp:
        home = Path(tmp) / "home"
        write_login_keys(home)
        for name, check in (
            ("help", lambda failures: _check_help(failures)),
            ("quiet start", lambda failures: _check_quiet_start(failures, home)),
            ("fleet bootstrap", lambda failures: _check_bootstrap(failures, Path(tmp))),
        ):
            checks[name] = []
            check(checks[name])
            print(f"smoke {name}: {'FAILED' if checks[name] else 'ok'}", flush=True)
            for failure in checks[name]:
                print(f"  {failure}", flush=True)
    return 1 if any(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
