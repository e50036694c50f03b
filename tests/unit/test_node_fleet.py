"""The node path against the in-process fleet: how few commands a node takes, and what a node's
bad day does to it (an exec whose output is lost, an empty task list, a channel closed without
an exit status). Each case ends as it would on a good day, or fails that node alone, clearly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from k8slk_ops.ssh import ConnectionLost
from tests.fleet.inprocess import InProcessFleet, follows_log
from tests.unit.clirun import K8slk


def test_a_worker_joins_in_three_commands_and_init_in_two_after_the_facts(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    for worker in ("w-1", "w-2"):
        assert fleet.node_commands(worker) == {"facts": 1, "write-file": 1, "follow-log": 1}
    primary = fleet.node_commands("cp-1")
    assert primary["write-file"] == 1 and primary["follow-log"] == 1  # config+trigger, follow
    assert "tasks-ls" not in fleet.commands()  # the probe and the follow list the tasks


def test_facts_whose_exec_output_was_lost_are_read_again(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.lose_exec_output("w-1")  # the probe's `kubeadm version` prints nothing
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert fleet.node_commands("w-1")["facts"] == 2


def test_an_empty_task_list_in_the_facts_is_read_again(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.lose_task_lists("w-2")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert fleet.node_commands("w-2")["facts"] == 2


def test_an_empty_task_list_while_following_is_not_a_stopped_task(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    """The task list comes back empty each time the follow looks, while kubeadm has not even
    started: the join goes on and ends ok, not "the kubeadm task stopped before kubeadm ran"."""
    fleet.hold_kubeadm("w-1")

    def on_follow() -> None:
        node = fleet._node("w-1")
        node.lost_task_lists = 5
        fleet.release_kubeadm("w-1")

    fleet.on_command("w-1", follows_log, on_follow)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert run.nodes["w-1"]["outcome"] == "ok"
    assert fleet.call(lambda: fleet._node("w-1").lost_task_lists) == 0  # it did look 5 times


def test_a_follow_closed_without_an_exit_status_is_followed_again(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.on_command("w-2", follows_log, lambda: setattr(fleet._node("w-2"),
                                                         "unfinished_sessions", 1))
    fleet.hold_kubeadm("w-2")
    fleet.on_command("w-2", follows_log, lambda: fleet.release_kubeadm("w-2"), times=2)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert "connection dropped while following the log" in run.log
    assert fleet.node_commands("w-2")["follow-log"] == 2


def test_a_command_closed_without_an_exit_status_raises_connection_lost(
    fleet: InProcessFleet, tmp_path: Path
) -> None:
    """Not exit -1 with empty output: that would read as a result."""
    from k8slk_ops.engine.probe import targets_of
    from k8slk_ops.inventory import load_inventory
    from k8slk_ops.ssh import SSHPool

    target = targets_of(load_inventory(fleet.inventory))["w-1"]
    fleet.unfinish_sessions("w-1")

    async def run() -> None:
        pool = SSHPool()
        try:
            conn = await pool.connect(target)
            with pytest.raises(ConnectionLost, match="without an exit status"):
                await conn.run(["true"])
            assert (await conn.run(["true"])).exit_status == 0  # the next one is fine
        finally:
            await pool.close()

    asyncio.run(run())


def test_a_token_create_whose_output_was_lost_is_checked_in_the_token_list(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.on_command("cp-1", lambda line: "token create" in line,
                     lambda: setattr(fleet._node("cp-1"), "lost_exec_outputs", 1))
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert fleet.count("kubeadm token create") == 1  # found in the list: not made again
    assert fleet.count("kubeadm token list") >= 1  # looked for there (the cleanup lists too)
    assert fleet.tokens() == []  # and revoked at the end like any other


def test_an_upload_of_the_certificates_whose_output_was_lost_uses_our_key(
    fleet_factory: object, k8slk: K8slk
) -> None:
    ha: InProcessFleet = fleet_factory(3, 2)  # type: ignore[operator]
    ha.on_command("cp-1", lambda line: "upload-certs" in line,
                  lambda: setattr(ha._node("cp-1"), "lost_exec_outputs", 1))
    run = k8slk("bootstrap", ha.inventory, "--json")
    assert run.code == 0, run.why()
    assert run.nodes["cp-2"]["outcome"] == "ok"
    assert ha.count("kubeadm init") == 1  # the upload was not repeated


def test_a_node_list_whose_output_was_lost_is_read_again(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    fleet.on_command("cp-1", lambda line: "get nodes" in line,
                     lambda: setattr(fleet._node("cp-1"), "lost_exec_outputs", 1))
    before = fleet.count("kubectl get")
    run = k8slk("status", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert all(node["details"]["registered"] for node in run.nodes.values())
    assert fleet.count("kubectl get") == before + 2
