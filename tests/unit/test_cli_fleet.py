"""The command line's exit codes, in-process against the fleet: 0 done, 1 a node failed,
2 bad usage or input (nothing contacted), 3 could not start, 130 interrupted.

Only the CLI's surface is used (flags, exit code, ``--json`` report, stderr): the layers
under it may change shape without these tests noticing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

from typer.testing import CliRunner

from k8slk_ops.cli.main import app
from k8slk_ops.ssh import patches
from tests.conftest import AsyncsshMode
from tests.fleet.inprocess import InProcessFleet, follows_log
from tests.fleet.node import ADMIN_CONF, MARKER
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory

LOCK = "/run/k8slk-ops.lock"  # the cluster lock, in the primary's tmpfs


def interrupt() -> None:
    """Ctrl-C, as the terminal sends it: SIGINT to the process the CLI runs in."""
    os.kill(os.getpid(), signal.SIGINT)


# -- 0 ----------------------------------------------------------------------------------------


def test_bootstrap_exits_0_and_a_second_run_changes_nothing(
    fleet: InProcessFleet, k8slk: K8slk, asyncssh_mode: AsyncsshMode
) -> None:
    """With the tool's asyncssh patches and with asyncssh as it comes: the same cluster."""
    first = k8slk("bootstrap", fleet.inventory, "--json")
    assert first.code == 0, first.why()
    assert patches.applied() == asyncssh_mode.applied  # the run's start kept to the mode
    assert first.report["exitCode"] == 0 and first.report["changed"] is True
    assert first.outcomes == {"cp-1": "ok", "w-1": "ok", "w-2": "ok"}
    assert set(fleet.members()) == {"cp-1", "w-1", "w-2"}
    writes = fleet.commands()["write-file"]

    second = k8slk("bootstrap", fleet.inventory, "--json")
    assert second.code == 0, second.why()
    assert second.report["changed"] is False
    assert set(second.outcomes.values()) == {"unchanged"}
    assert "nothing to do: the cluster already matches" in second.report["messages"]
    assert fleet.commands()["write-file"] == writes  # not one file written on a node
    assert fleet.tokens() == []  # both runs deleted the tokens they minted


# -- 1 ----------------------------------------------------------------------------------------


def test_a_node_whose_kubeadm_fails_exits_1_and_the_others_finish(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.fail_kubeadm("w-1")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    assert run.report["exitCode"] == 1
    failed = run.nodes["w-1"]
    assert (failed["outcome"], failed["phase"]) == ("failed", "join")
    assert any("[ERROR Mem]" in line for line in failed["logTail"])  # kubeadm's own words
    assert run.outcomes["cp-1"] == run.outcomes["w-2"] == "ok"
    assert set(fleet.members()) == {"cp-1", "w-2"}
    assert fleet.tokens() == []  # cleanup ran although a node failed


def test_status_exits_1_when_a_node_is_unreachable(fleet: InProcessFleet, k8slk: K8slk) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    fleet.unreachable("w-2")
    run = k8slk("status", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    assert run.nodes["w-2"]["details"]["reachable"] is False
    assert run.nodes["cp-1"]["details"]["reachable"] is True


# -- 2 ----------------------------------------------------------------------------------------


def test_a_bad_inventory_exits_2_with_file_and_line_and_contacts_nothing(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    text = fleet.inventory.read_text().replace("address: 127.1.0.2", "adress: 127.1.0.2")
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    line = text.splitlines().index(next(x for x in text.splitlines() if "adress" in x)) + 1
    run = k8slk("bootstrap", bad, "--json")
    assert run.code == 2, run.why()
    assert f"{bad}:{line}:" in run.stderr
    assert "adress" in run.stderr and "did you mean 'address'" in run.stderr
    assert run.report["exitCode"] == 2
    assert fleet.stats()["accepted"] == 0  # no node was contacted


def test_inventory_check_exits_2_on_a_bad_inventory_and_0_on_a_good_one(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(fleet.inventory.read_text().replace("role: worker", "role: wroker", 1))
    run = k8slk("inventory", "check", bad)
    assert run.code == 2, run.why()
    assert f"{bad}:" in run.stderr and "wroker" in run.stderr
    good = k8slk("inventory", "check", fleet.inventory)
    assert good.code == 0, good.why()
    assert "control planes: cp-1" in good.stdout


def test_an_unknown_flag_exits_2(fleet: InProcessFleet, k8slk: K8slk) -> None:
    run = k8slk("bootstrap", fleet.inventory, "--frobnicate")
    assert run.code == 2
    assert "--frobnicate" in run.stderr
    assert fleet.stats()["accepted"] == 0


def test_a_bad_duration_exits_2(fleet: InProcessFleet, k8slk: K8slk) -> None:
    run = k8slk("remove-node", fleet.inventory, "w-1", "--drain-timeout", "5 minutes")
    assert run.code == 2
    assert "Go duration" in run.stderr
    assert fleet.stats()["accepted"] == 0


def test_an_unknown_node_exits_2(fleet: InProcessFleet, k8slk: K8slk) -> None:
    run = k8slk("add-node", fleet.inventory, "--node", "w-9", "--json")
    assert run.code == 2, run.why()
    assert "w-9" in run.stderr
    assert fleet.stats()["accepted"] == 0


def test_a_playbook_with_a_typo_exits_2_with_file_and_line(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    book = tmp_path / "typo.yml"
    book.write_text("name: typo\nstages:\n  - name: join\n    hosts: workers\n    steps:\n"
                    "      - jion: {}\n")
    run = k8slk("run", book, fleet.inventory)
    assert run.code == 2
    assert f"{book}:6" in run.stderr and "jion" in run.stderr
    assert fleet.stats()["accepted"] == 0


def test_reset_without_a_terminal_needs_yes(fleet: InProcessFleet, k8slk: K8slk) -> None:
    run = k8slk("reset", fleet.inventory)
    assert run.code == 2
    assert "--yes" in run.stderr
    assert fleet.stats()["accepted"] == 0


# -- 3 ----------------------------------------------------------------------------------------


def test_an_unreachable_first_control_plane_exits_3_before_any_write(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.unreachable("cp-1")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 3, run.why()
    assert "the first control plane cp-1 is unreachable" in run.stderr
    assert run.report["exitCode"] == 3
    assert "write-file" not in fleet.commands()


def test_a_changed_host_key_exits_3_before_any_write(fleet: InProcessFleet, k8slk: K8slk) -> None:
    fleet.change_host_key("w-2")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 3, run.why()
    message = "\n".join(run.report["messages"])
    assert "host key check failed; nothing was changed on any node" in message
    assert "w-2" in message and "does not match" in message
    assert "write-file" not in fleet.commands()
    assert fleet.members() == {}


def test_add_node_without_a_cluster_exits_3_before_any_write(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    run = k8slk("add-node", fleet.inventory, "--json")
    assert run.code == 3, run.why()
    assert "needs a running cluster" in run.stderr and "k8slk-ops bootstrap" in run.stderr
    assert "write-file" not in fleet.commands()


def _lock_held_elsewhere(fleet: InProcessFleet, command: str) -> bytes:
    """cp-1's lock file as another machine's run of ``command`` leaves it; its bytes."""
    holder = {"run_id": "20260101T000000-abcdef", "user": "ops", "host": "elsewhere",
              "pid": 4242, "command": command, "since": 0.0}
    held = json.dumps(holder).encode()
    fleet.write_file("cp-1", LOCK, held)
    return held


def test_a_cluster_locked_by_another_run_exits_3_until_the_lock_is_broken(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    held = _lock_held_elsewhere(fleet, "add-node")
    run = k8slk("add-node", fleet.inventory, "--json")
    assert run.code == 3, run.why()
    assert "locked" in run.stderr and "20260101T000000-abcdef" in run.stderr
    assert "--break-lock" in run.stderr
    assert fleet.file("cp-1", LOCK) == held  # left as it was

    broken = k8slk("add-node", fleet.inventory, "--break-lock", "--json")
    assert broken.code == 0, broken.why()
    assert fleet.file("cp-1", LOCK) is None  # taken, then released at the end


# -- 130 --------------------------------------------------------------------------------------


def test_ctrl_c_during_init_exits_130_after_cleaning_up(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.on_trigger("cp-1", interrupt)
    with fleet.holding_kubeadm("cp-1"):  # an init that would take as long as it likes
        run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 130, run.why()
    assert run.report["interrupted"] is True and run.report["exitCode"] == 130
    # The trigger was written whole; the wait on the init's log ended at the Ctrl-C, and
    # nothing new was started (cp-1's addons neither).
    assert run.outcomes == {"cp-1": "cancelled", "w-1": "cancelled", "w-2": "cancelled"}
    assert run.nodes["cp-1"]["message"] == "cancelled while running"
    assert run.nodes["w-1"]["message"] == "not started: the run was interrupted"
    assert len(fleet.configs("cp-1")) == 1  # its configuration and trigger written whole
    # The init goes on on the node with the run's token, which no API could delete yet: named.
    assert any("could not delete bootstrap token" in m for m in run.report["messages"])
    assert any(m.startswith("cp-1: kubeadm init was triggered and goes on on the node")
               for m in run.report["messages"])
    assert fleet.file("cp-1", LOCK) is None  # the cluster lock released

    # Released, the node's init ends on its own; once its API is up, a run takes it from there.
    deadline = time.monotonic() + 30
    while "cp-1" not in fleet.members() and time.monotonic() < deadline:
        time.sleep(0.05)
    again = k8slk("bootstrap", fleet.inventory, "--json")
    assert again.code == 0, again.why()
    # cp-1 is initialised already; the addons the interruption left out are applied now.
    assert again.outcomes == {"cp-1": "ok", "w-1": "ok", "w-2": "ok"}


def test_a_second_ctrl_c_cancels_a_kubeadm_that_does_not_end(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.on_trigger("cp-1", interrupt)  # the first: finish what runs (init, held)
    # The second, once the tool follows the log (the first was handled before it got there).
    fleet.on_command("cp-1", follows_log, interrupt)
    with fleet.holding_kubeadm("cp-1"):
        run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 130, run.why()
    assert run.report["interrupted"] is True
    assert run.outcomes["cp-1"] == "cancelled"
    assert {run.outcomes["w-1"], run.outcomes["w-2"]} == {"cancelled"}
    assert fleet.members() == {}
    assert fleet.file("cp-1", LOCK) is None


def test_sigterm_during_the_ready_wait_ends_the_run_and_cleans_up(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    """What ``timeout`` or systemd send: the run stops waiting at once, well before the
    playbook's 5-minute Ready timeout, and still deletes its tokens, releases its lock and
    writes its report and metrics."""
    fleet = fleet_factory(3, 1, pod_network_addon=False)  # no pod network: never Ready
    joined = [0]

    def count_join() -> None:
        joined[0] += 1

    fleet.on_trigger("w-1", count_join)
    fleet.on_trigger("w-2", count_join)
    # The first node list asked for once both workers joined: the Ready wait's poll.
    fleet.on_command(
        "cp-1", lambda line: joined[0] == 2 and " get nodes " in line,
        lambda: os.kill(os.getpid(), signal.SIGTERM),
    )
    prom = tmp_path / "run.prom"
    started = time.monotonic()
    run = k8slk("bootstrap", fleet.inventory, "--json", "--metrics-file", prom)
    took = time.monotonic() - started
    assert run.code == 130, run.why()
    assert took < 120, took  # the Ready timeout is 300 s: the signal, not the timeout, ended it
    assert run.report["interrupted"] is True
    assert {run.outcomes[n] for n in ("w-1", "w-2")} == {"cancelled"}
    assert "terminated (SIGTERM): stopping now" in run.stderr
    assert fleet.tokens() == []  # the run's tokens deleted
    assert fleet.file("cp-1", LOCK) is None and fleet.leases() == {}  # its locks released
    text = prom.read_text()
    assert "k8slk_ops_run_exit_code" in text and 'result="interrupted"' in text


def test_an_interrupted_drain_uncordons_its_node(fleet: InProcessFleet, k8slk: K8slk) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    fleet.guard_pod("w-1", slow=True)  # kubectl drain retries the eviction for an hour

    def terminate() -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # one stop: the drain is cut, not waited for

    fleet.on_command("cp-1", lambda line: "drain" in line, terminate)
    run = k8slk("remove-node", fleet.inventory, "w-1", "--drain-timeout", "1h", "--json")
    assert run.code == 130, run.why()
    assert run.outcomes["w-1"] == "cancelled"
    assert "the drain did not finish: node uncordoned" in run.stderr
    assert fleet.members()["w-1"].unschedulable is False  # given back to the scheduler
    assert fleet.file("w-1", MARKER) is not None  # and not reset
    assert fleet.file("cp-1", LOCK) is None


# -- the process the CLI runs in ------------------------------------------------------------------


def test_the_cli_closes_its_log_file_when_it_returns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("cluster: {name: x}\n")
    logger = logging.getLogger("k8slk_ops")
    try:
        result = CliRunner().invoke(app, ["bootstrap", str(bad), "--log-file",
                                          str(tmp_path / "run.log")])
        assert result.exit_code == 2
        still_open = [h for h in logger.handlers
                      if isinstance(h, logging.FileHandler) and h.stream is not None]
        assert still_open == []
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


def test_an_init_under_way_elsewhere_is_named_not_called_a_broken_cluster(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    # Another run's init has written admin.conf and holds the lock files; its API is not up yet.
    fleet.write_file("cp-1", ADMIN_CONF, b"apiVersion: v1\nkind: Config\n")
    silent = k8slk("bootstrap", fleet.inventory, "--json")
    assert silent.code == 3, silent.why()
    assert "no control plane API answers" in silent.stderr  # no lock held: the cluster is broken
    assert fleet.file("cp-1", LOCK) is None  # the look at the lock files left none behind

    held = _lock_held_elsewhere(fleet, "bootstrap")
    busy = k8slk("bootstrap", fleet.inventory, "--json")
    assert busy.code == 3, busy.why()
    assert "locked" in busy.stderr and "20260101T000000-abcdef" in busy.stderr
    assert fleet.file("cp-1", LOCK) == held  # left as it was
