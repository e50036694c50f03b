"""Report rows against the in-process fleet: each command's own columns, and the next step a
failed or unreachable node's row ends with, in the JSON report, the table and the log file."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import CliRun, K8slk
from tests.unit.conftest import FleetFactory


def table_row(run: CliRun, node: str) -> str:
    """The node's row of the report table the run printed (plain, on stderr)."""
    rows = [line for line in run.stderr.splitlines() if line.startswith(f"{node} ")]
    assert rows, run.why()
    return rows[-1]


def header(run: CliRun) -> list[str]:
    lines = [line for line in run.stderr.splitlines() if line.startswith("NODE ")]
    assert lines, run.why()
    return lines[0].split()


@pytest.fixture
def ha(fleet_factory: FleetFactory, k8slk: K8slk) -> InProcessFleet:
    """Three control planes and a worker, bootstrapped."""
    fleet = fleet_factory(4, 3)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    return fleet


def test_remove_node_force_of_an_unreachable_control_plane_reports_the_others_as_they_are(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    ha.power_off("cp-3")  # dead for good: no SSH, its etcd member silent too
    run = k8slk("remove-node", ha.inventory, "cp-3", "--force", "--yes", "--json")
    assert run.code == 0, run.why()
    assert header(run)[:3] == ["NODE", "ROLE", "RESULT"]
    assert "REACHABLE" not in run.stderr
    for name in ("cp-1", "cp-2", "w-1"):
        assert run.nodes[name]["outcome"] == "unchanged"
        assert run.nodes[name]["details"] == {} and run.nodes[name]["next"] is None
        assert " no " not in f" {table_row(run, name)} "
    assert run.outcomes["cp-3"] == "ok"  # removed while unreachable: nothing left to do
    assert run.nodes["cp-3"]["next"] is None
    assert "cp-3" not in ha.members()


def test_etcd_status_with_a_control_plane_down_shows_the_members_and_what_to_do(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    ha.unreachable("cp-3")
    run = k8slk("etcd", "status", ha.inventory, "--json")
    assert run.code == 1, run.why()
    assert header(run) == ["NODE", "ROLE", "RESULT", "MEMBER", "LEADER", "DB", "BYTES", "ETCD",
                           "VER", "MEMBERS", "HEALTH", "NEXT"]
    assert "REACHABLE" not in run.stderr
    for name in ("cp-1", "cp-2"):
        assert run.nodes[name]["details"]["etcd"]["healthy"] is True
        assert run.nodes[name]["next"] is None
        assert "healthy" in table_row(run, name).split()
    assert run.outcomes["cp-3"] == "unreachable"
    step = run.nodes["cp-3"]["next"]
    assert step["command"] == shlex.join(["k8slk-ops", "etcd", "status", str(ha.inventory)])
    assert f"`{step['command']}`" in step["action"]
    address = ha.address("cp-3")
    assert f"root@{address}` must log in" in step["action"]
    assert table_row(run, "cp-3").endswith(step["action"])


def test_a_failed_preflight_names_the_fix_the_reboot_and_the_add_node(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.fail_kubeadm("w-2")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    assert run.outcomes["w-2"] == "failed"
    step = run.nodes["w-2"]["next"]
    add = shlex.join(["k8slk-ops", "add-node", str(fleet.inventory), "--node", "w-2"])
    assert step["command"] == add
    assert step["action"] == (
        "give the node more memory (the system RAM (621 MB) is less than the minimum 1700 MB); "
        "reboot the node (kubeadm runs once per boot on a LinuxKit node), then run "
        f"`{add}`"
    )
    assert run.nodes["w-1"]["next"] is None and run.nodes["cp-1"]["next"] is None
    assert header(run)[-1] == "NEXT"
    assert table_row(run, "w-2").endswith(step["action"])
    assert "result w-2 failed phase=join " in run.log
    assert f"; next: {step['action']}" in run.log


def test_a_node_whose_kubeadm_already_ran_this_boot_must_be_reset_and_rebooted(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.fail_kubeadm("w-2")
    assert k8slk("bootstrap", fleet.inventory).code == 1
    fleet.fail_kubeadm("w-2", failing=False)  # the node has its memory now, but no new boot
    run = k8slk("add-node", fleet.inventory, "--node", "w-2", "--json")
    assert run.code == 1, run.why()
    assert "kubeadm already ran and failed on this node" in run.nodes["w-2"]["message"]
    step = run.nodes["w-2"]["next"]
    inventory = str(fleet.inventory)
    reset = shlex.join(["k8slk-ops", "reset", inventory, "--node", "w-2"])
    add = shlex.join(["k8slk-ops", "add-node", inventory, "--node", "w-2"])
    assert step == {
        "action": f"reset the node (`{reset}`) and reboot the node (kubeadm runs once per boot "
                  f"on a LinuxKit node), then run `{add}`",
        "command": add,
    }


def test_a_changed_host_key_names_the_exact_ssh_keygen_and_how_to_accept_the_key_once(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    fleet.change_host_key("w-1")
    run = k8slk("status", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    assert run.nodes["w-1"]["details"] == {"reachable": False, "hostKey": "mismatch",
                                          "error": "host key mismatch"}
    for name in ("cp-1", "w-2"):
        assert run.nodes[name]["details"]["reachable"] is True
        assert table_row(run, name).split()[2] == "yes"
    step = run.nodes["w-1"]["next"]
    entry = f"[{fleet.address('w-1')}]:{fleet_port(fleet, 'w-1')}"
    known_hosts = fleet.directory / "known_hosts"
    forget = f"ssh-keygen -R '{entry}' -f {known_hosts}"
    assert step["command"] == forget
    assert f"forget the old key: `{forget}`" in step["action"]
    assert "ssh.hostKeyPolicy: accept-new" in step["action"]
    assert "ssh.hostKeyAfterReboot: accept" in step["action"]
    status = shlex.join(["k8slk-ops", "status", str(fleet.inventory)])
    assert f"run `{status}`" in step["action"]
    # What it says works: forget the key, accept the new one once, and the node answers.
    _run(forget)
    set_policy(fleet.inventory, "accept-new")
    again = k8slk("status", fleet.inventory, "--json")
    assert again.code == 0, again.why()
    assert again.nodes["w-1"]["details"]["reachable"] is True
    assert all(n["next"] is None for n in again.report["nodes"])


def test_nodes_left_undone_when_the_lock_is_lost_say_to_let_the_other_run_end(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    ha.hold_drain("w-1")

    def steal() -> None:
        lease = ha.fleet.cluster.leases[("kube-system", "k8slk-ops-lock")]
        lease["spec"]["holderIdentity"] = "someone else"
        ha.fleet.cluster.drain_gates.pop("w-1").set()

    ha.on_command("cp-1", lambda line: "drain" in line, steal)
    run = k8slk("remove-node", ha.inventory, "w-1", "--json")
    assert run.code == 3, run.why()
    assert run.outcomes["w-1"] == "skipped"
    assert run.nodes["w-1"]["message"] == "not started: the cluster lock was lost to another run"
    again = shlex.join(["k8slk-ops", "remove-node", str(ha.inventory), "w-1"])
    assert run.nodes["w-1"]["next"] == {
        "action": "another run holds the cluster lock: let it end (if it is gone, add "
                  f"--break-lock), then run `{again}`",
        "command": again,
    }


# -- helpers -------------------------------------------------------------------------------------


def fleet_port(fleet: InProcessFleet, name: str) -> int:
    """The node's SSH port, as the fleet's inventory gives it."""
    import yaml

    inventory = yaml.safe_load(fleet.inventory.read_text())
    for node in inventory["nodes"]:
        if node["name"] == name:
            return int(node.get("ssh", {}).get("port") or inventory["ssh"]["port"])
    raise AssertionError(name)


def set_policy(inventory: Path, policy: str) -> None:
    text = inventory.read_text()
    assert "hostKeyPolicy: strict" in text, text
    inventory.write_text(text.replace("hostKeyPolicy: strict", f"hostKeyPolicy: {policy}"))


def _run(command: str) -> None:
    import subprocess

    subprocess.run(shlex.split(command), check=True, capture_output=True)

