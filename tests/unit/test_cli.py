"""The command line in-process: shared flags declared once, typed options, exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from k8slk_ops.cli import cliutil, main
from k8slk_ops.engine.options import RunOptions
from k8slk_ops.output.events import RunReport

INVENTORY = """\
cluster: {name: lab}
nodes:
  - {name: cp-1, address: 127.0.9.11, role: control-plane}
  - {name: w-1, address: 127.0.9.21, role: worker}
"""

runner = CliRunner()


class Seen:
    options: RunOptions | None = None
    break_lock: bool | None = None
    command: str = ""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    return path


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> type[Seen]:
    """Replace the operation: record what the command line handed it, report exit 0."""
    Seen.options = None

    class FakeOperation:
        def __init__(self, playbook: Any, inventory: Any, options: RunOptions, sink: Any,
                     add_secret: Any, *, command: str, break_lock: bool = False) -> None:
            Seen.options, Seen.break_lock, Seen.command = options, break_lock, command

        async def run(self) -> RunReport:
            return RunReport(command=Seen.command, cluster="lab", inventory="inv.yml")

    monkeypatch.setattr(cliutil, "Operation", FakeOperation)
    return Seen


def test_version_is_a_flag_shown_without_a_value() -> None:
    result = runner.invoke(main.app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("k8slk-ops ")
    help_text = runner.invoke(main.app, ["--help"]).output
    line = next(x for x in help_text.splitlines() if "--version" in x)
    assert "<bool>" not in line
    assert "--install-completion" in help_text  # shell completion is offered


def test_bootstrap_hands_one_typed_options_object(inventory: Path, seen: type[Seen]) -> None:
    result = runner.invoke(main.app, [
        "bootstrap", str(inventory), "--timeout", "15m", "-c", "8", "--strict",
        "--kubeconfig-out", "/tmp/k/x.conf", "--break-lock",
    ])
    assert result.exit_code == 0, result.output
    options = seen.options
    assert options is not None
    assert options.timeout == 900.0
    assert options.concurrency == 8
    assert options.strict
    assert options.kubeconfig_out == Path("/tmp/k/x.conf")
    assert options.run_id  # minted for the run
    assert seen.break_lock == 1  # counted: twice breaks even a live local holder


@pytest.mark.parametrize(("given", "seconds"), [("600", 600.0), ("90s", 90.0), ("1h30m", 5400.0)])
def test_timeout_takes_a_go_duration_or_seconds(
    inventory: Path, seen: type[Seen], given: str, seconds: float
) -> None:
    result = runner.invoke(main.app, ["add-node", str(inventory), "--timeout", given])
    assert result.exit_code == 0, result.output
    assert seen.options is not None and seen.options.timeout == seconds


@pytest.mark.parametrize("bad", ["5 m", "inf", "nan", "-1m", "0", "10mx", "10m "])
def test_bad_durations_are_usage_errors(inventory: Path, seen: type[Seen], bad: str) -> None:
    result = runner.invoke(main.app, ["remove-node", str(inventory), "w-1", "--drain-timeout", bad])
    assert result.exit_code == 2
    assert seen.options is None  # nothing ran


def test_remove_node_force_and_drain_timeout_are_typed(inventory: Path, seen: type[Seen]) -> None:
    result = runner.invoke(
        main.app, ["remove-node", str(inventory), "w-1", "-ff", "--drain-timeout", "2s"]
    )
    assert result.exit_code == 0, result.output
    assert seen.options is not None
    assert seen.options.force == 2
    assert seen.options.drain_timeout == 2.0
    assert seen.options.selected == ("w-1",)


def test_reset_goes_on_past_a_failed_drain(inventory: Path, seen: type[Seen]) -> None:
    result = runner.invoke(main.app, ["reset", str(inventory), "--yes", "--node", "w-1"])
    assert result.exit_code == 0, result.output
    assert seen.options is not None and seen.options.force == 1


def test_kubeconfig_merge(inventory: Path, seen: type[Seen]) -> None:
    result = runner.invoke(main.app, ["kubeconfig", str(inventory), "--merge", "-o", "/tmp/k/c"])
    assert result.exit_code == 0, result.output
    assert seen.options is not None and seen.options.merge_kubeconfig
    assert seen.options.kubeconfig_out == Path("/tmp/k/c")


def test_plan_is_a_dry_run(inventory: Path, seen: type[Seen]) -> None:
    result = runner.invoke(main.app, ["plan", "bootstrap", str(inventory)])
    assert result.exit_code == 0, result.output
    assert seen.options is not None and seen.options.dry_run
    assert seen.command == "plan bootstrap"


@pytest.mark.parametrize(
    ("command", "offered", "absent"),
    [
        ("bootstrap", ["--concurrency", "--timeout", "--dry-run", "--break-lock", "--json"], []),
        ("status", ["--concurrency", "--json", "--log-file", "--verbose"],
         ["--timeout", "--dry-run", "--break-lock"]),
        ("kubeconfig", ["--json", "--log-file"], ["--concurrency", "--dry-run"]),
        ("remove-node", ["--dry-run", "--break-lock", "--drain-timeout"],
         ["--concurrency", "--timeout"]),
    ],
)
def test_each_command_offers_its_shared_flags(
    command: str, offered: list[str], absent: list[str]
) -> None:
    text = runner.invoke(main.app, [command, "--help"], terminal_width=200).output
    for flag in offered:
        assert flag in text, (command, flag)
    for flag in absent:
        assert flag not in text, (command, flag)


def test_an_unknown_command_to_plan_is_exit_2(inventory: Path, seen: type[Seen]) -> None:
    result = runner.invoke(main.app, ["plan", "nonsense", str(inventory)])
    assert result.exit_code == 2
    assert seen.options is None


def test_a_bad_inventory_is_exit_2(tmp_path: Path, seen: type[Seen]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("cluster: {name: lab}\nnodes:\n  - {name: a, adress: x, role: worker}\n")
    result = runner.invoke(main.app, ["status", str(bad)])
    assert result.exit_code == 2
    assert "bad.yml:3" in result.output
