"""Every refusal (exit 2, nothing contacted) says why and what to do, and still writes
``--metrics-file``: a cron job broken this way is what the alert on exit code 2 is for.

The metrics file is read back with prometheus_client's own parser. The operation is replaced
by one that fails the test if a refused command gets as far as building it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from k8slk_ops.cli import cliutil, main
from k8slk_ops.engine.options import RunOptions
from k8slk_ops.output.events import RunReport

INVENTORY = """\
cluster: {name: lab, kubernetesVersion: v1.31.3}
nodes:
  - {name: cp-1, address: 127.0.9.11, role: control-plane}
  - {name: cp-2, address: 127.0.9.12, role: control-plane}
  - {name: w-1, address: 127.0.9.21, role: worker}
"""
TYPO = "name: typo\nstages:\n  - name: join\n    hosts: workers\n    steps:\n      - jion: {}\n"


@dataclass
class Ran:
    commands: list[str]


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Ran:
    """The operation, replaced: records the commands that got as far as running, exits 0."""
    seen = Ran([])

    class RecordingOperation:
        def __init__(self, playbook: Any, inventory: Any, options: RunOptions, sink: Any,
                     add_secret: Any, *, command: str, break_lock: int = 0) -> None:
            self.command = command
            seen.commands.append(command)

        async def run(self) -> RunReport:
            return RunReport(command=self.command, cluster="lab", inventory="inv.yml")

    monkeypatch.setattr(cliutil, "Operation", RecordingOperation)
    return seen


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    return path


def samples(path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def assert_refused_in_metrics(prom: Path, command: str, cluster: str, code: int = 2) -> None:
    got = samples(prom)
    run = {"command": command, "cluster": cluster}
    assert got["k8slk_ops_run_exit_code"] == [(run, float(code))]
    assert got["k8slk_ops_run_success"] == [(run, 0.0)]
    result = {2: "usage", 130: "interrupted"}[code]
    assert got["k8slk_ops_run_result"] == [({**run, "result": result}, 1.0)]
    assert [v for _, v in got["k8slk_ops_run_nodes"]] == [0.0] * len(got["k8slk_ops_run_nodes"])
    assert len(got["k8slk_ops_run_start_timestamp_seconds"]) == 1
    assert got["k8slk_ops_run_duration_seconds"][0][1] >= 0


def invoke(*args: str | Path, input: str | None = None) -> Any:
    return CliRunner().invoke(main.app, [str(a) for a in args], input=input,
                              catch_exceptions=False)


# -- refused by our own checks: "error: <why>" on stderr ---------------------------------------


@pytest.mark.parametrize("args, command, said", [
    (["upgrade", "{inv}"], "upgrade",
     "upgrade needs --yes when there is no terminal to confirm on; nothing was touched"),
    (["reset", "{inv}"], "reset",
     "reset needs --yes when there is no terminal to confirm on; nothing was touched"),
    (["certs", "renew", "{inv}"], "certs renew",
     "certs renew needs --yes when there is no terminal to confirm on; nothing was touched"),
    (["remove-node", "{inv}", "cp-2"], "remove-node",
     "remove-node needs --yes when there is no terminal to confirm on; nothing was touched"),
    (["remove-node", "{inv}", "w-1", "cp-2", "--drain-timeout", "2m"], "remove-node",
     "remove-node needs --yes when there is no terminal to confirm on"),
    (["upgrade", "{inv}", "--yes", "--max-unavailable", "0"], "upgrade",
     "--max-unavailable '0': want N (>= 1) or P% (1-100)"),
    (["upgrade", "{inv}", "--yes", "--max-unavailable", "150%"], "upgrade",
     "--max-unavailable '150%'"),
    (["upgrade", "{inv}", "--yes", "--to", "latest"], "upgrade",
     "not a Kubernetes version: 'latest' (expected like v1.31.3)"),
    (["plan", "nonsense", "{inv}"], "plan nonsense",
     "no built-in playbook named 'nonsense'; pass one of: add-node, apply, bootstrap, certs-check"),
])
def test_a_refusal_says_why_and_writes_exit_code_2(
    inventory: Path, tmp_path: Path, ran: Ran, args: list[str], command: str, said: str
) -> None:
    prom = tmp_path / "m.prom"
    result = invoke(*[a.replace("{inv}", str(inventory)) for a in args], "--metrics-file", prom)
    assert result.exit_code == 2, result.output
    assert f"error: {said}" in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, command, "lab")


def test_a_broken_playbook_is_refused_with_its_line(
    inventory: Path, tmp_path: Path, ran: Ran
) -> None:
    book = tmp_path / "typo.yml"
    book.write_text(TYPO)
    prom = tmp_path / "m.prom"
    result = invoke("run", book, inventory, "--metrics-file", prom)
    assert result.exit_code == 2
    assert f"error: {book}:6:" in result.stderr and "unknown step 'jion'" in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, f"run {book}", "lab")


def test_upgrade_without_a_target_version_says_where_to_give_one(
    tmp_path: Path, ran: Ran
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(INVENTORY.replace(", kubernetesVersion: v1.31.3", ""))
    prom = tmp_path / "m.prom"
    result = invoke("upgrade", inv, "--yes", "--metrics-file", prom)
    assert result.exit_code == 2
    assert "no target version: pass --to or set cluster.kubernetesVersion" in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, "upgrade", "lab")


@pytest.mark.parametrize("args, command", [
    (["upgrade", "{bad}", "--yes"], "upgrade"),
    (["inventory", "check", "{bad}"], "inventory check"),
    (["status", "{bad}"], "status"),
])
def test_a_bad_inventory_is_refused_with_its_line(
    tmp_path: Path, ran: Ran, args: list[str], command: str
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(INVENTORY.replace("address: 127.0.9.21", "adress: 127.0.9.21"))
    prom = tmp_path / "m.prom"
    result = invoke(*[a.replace("{bad}", str(bad)) for a in args], "--metrics-file", prom)
    assert result.exit_code == 2
    assert f"{bad}:5:" in result.stderr and "did you mean 'address'" in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, command, "")  # no cluster name read from a bad inventory


def test_a_log_file_that_cannot_be_opened_is_refused(
    inventory: Path, tmp_path: Path, ran: Ran
) -> None:
    prom = tmp_path / "m.prom"
    result = invoke("status", inventory, "--log-file", tmp_path, "--metrics-file", prom)
    assert result.exit_code == 2
    assert f"error: cannot open the log file {tmp_path}: Is a directory" in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, "status", "lab")


def test_a_metrics_file_in_a_missing_directory_is_said_once_and_not_written(
    inventory: Path, tmp_path: Path, ran: Ran
) -> None:
    prom = tmp_path / "nope" / "m.prom"
    for args in (["status", inventory], ["reset", inventory]):
        result = invoke(*args, "--metrics-file", prom)
        assert result.exit_code == 2
        said = f"--metrics-file {prom}: directory {prom.parent} does not exist"
        assert result.stderr.count(said) == 1, result.stderr
        assert not prom.parent.exists()
    assert ran.commands == []


# -- at a terminal: a "no" is refused, Ctrl-C is an interruption --------------------------------


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone at a terminal (the test runner's stdin is a pipe)."""
    monkeypatch.setattr(cliutil, "stdin_is_terminal", lambda: True)


@pytest.mark.usefixtures("terminal")
def test_a_no_at_the_prompt_is_refused(inventory: Path, tmp_path: Path, ran: Ran) -> None:
    prom = tmp_path / "m.prom"
    result = invoke("reset", inventory, "--metrics-file", prom, input="n\n")
    assert result.exit_code == 2
    assert "Reset every node of the cluster (kubeadm reset -f)?" in result.output
    assert "error: reset was not confirmed; nothing was touched" in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, "reset", "lab")


@pytest.mark.usefixtures("terminal")
def test_end_of_input_at_the_prompt_is_an_interruption(
    inventory: Path, tmp_path: Path, ran: Ran
) -> None:
    prom = tmp_path / "m.prom"
    result = invoke("remove-node", inventory, "cp-2", "--metrics-file", prom, input="")
    assert result.exit_code == 130
    assert "interrupted: nothing was touched" in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, "remove-node", "lab", code=130)


@pytest.mark.usefixtures("terminal")
def test_a_yes_at_the_prompt_goes_on(inventory: Path, ran: Ran) -> None:
    result = invoke("remove-node", inventory, "cp-2", input="y\n")
    assert result.exit_code == 0, result.output
    assert "Remove control plane cp-2 from lab (drain, leave etcd, kubeadm reset -f)?" in \
        result.output
    assert ran.commands == ["remove-node"]


def test_removing_a_worker_asks_nothing_and_dry_runs_ask_nothing(
    inventory: Path, ran: Ran
) -> None:
    assert invoke("remove-node", inventory, "w-1").exit_code == 0
    assert invoke("remove-node", inventory, "cp-2", "--dry-run").exit_code == 0
    assert invoke("remove-node", inventory, "cp-2", "--yes").exit_code == 0
    assert ran.commands == ["remove-node"] * 3


# -- rejected by the parser, before our code runs: its own message, and still the file ----------


@pytest.mark.parametrize("args, command, cluster, said", [
    (["bootstrap", "{inv}", "--frobnicate"], "bootstrap", "lab", "No such option"),
    (["bootstrap", "--frobnicate", "{inv}"], "bootstrap", "", "No such option"),
    (["remove-node", "{inv}", "w-1", "--drain-timeout", "5 minutes"], "remove-node", "lab",
     "a Go duration"),
    (["certs", "renew", "{inv}", "--within-days", "soon", "--yes"], "certs renew", "lab",
     "neither a number of days nor 'all'"),
    (["etcd", "snapshot", "{inv}", "--keep", "0"], "etcd snapshot", "lab", "--keep"),
    (["status", "{inv}", "--concurrency", "many"], "status", "lab", "--concurrency"),
    (["bootstrap", "{inv}", "surplus"], "bootstrap", "lab", "unexpected extra argument"),
    (["inventory", "check", "{inv}", "--bogus"], "inventory check", "lab", "No such option"),
    (["upgrade"], "upgrade", "", "Missing argument"),
])
def test_a_flag_the_parser_rejects_still_writes_exit_code_2(
    inventory: Path, tmp_path: Path, ran: Ran, args: list[str], command: str, cluster: str,
    said: str,
) -> None:
    prom = tmp_path / "m.prom"
    argv = [a.replace("{inv}", str(inventory)) for a in args]
    result = invoke(*argv, f"--metrics-file={prom}")
    assert result.exit_code == 2
    assert said in " ".join(result.stderr.replace("│", " ").split())  # the box wraps lines
    assert f"k8slk-ops {command} --help" in result.stderr  # what to do next
    assert ran.commands == []
    assert_refused_in_metrics(prom, command, cluster)


def test_a_metrics_file_flag_without_its_value_cannot_be_written(
    inventory: Path, tmp_path: Path, ran: Ran
) -> None:
    result = invoke("bootstrap", inventory, "--metrics-file")
    assert result.exit_code == 2
    assert "'--metrics-file' requires an argument" in result.stderr
    assert list(tmp_path.iterdir()) == [inventory]
    assert ran.commands == []


@pytest.mark.parametrize("args, command, cluster", [
    (["upgrad", "{inv}", "--yes"], "upgrad", "lab"),
    (["certs", "renw", "{inv}", "--yes"], "certs renw", "lab"),
    (["etcd", "snapshots", "-o", "/tmp"], "etcd snapshots", ""),
])
def test_a_command_that_does_not_exist_still_writes_exit_code_2(
    inventory: Path, tmp_path: Path, ran: Ran, args: list[str], command: str, cluster: str
) -> None:
    prom = tmp_path / "m.prom"
    result = invoke(*[a.replace("{inv}", str(inventory)) for a in args], "--metrics-file", prom)
    assert result.exit_code == 2
    assert f"No such command '{command.split()[-1]}'" in result.stderr
    assert "--help' for help" in result.stderr
    assert ran.commands == []
    assert_refused_in_metrics(prom, command, cluster)
