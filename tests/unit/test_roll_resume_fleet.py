"""A roll that stopped half way resumes by itself: the reboot record on the Node, the new host
key accepted only after the boot ID changed, the node finished; ``refuse`` says how to accept.

In-process against the fleet: bootstrapped at v1.30, the boot server serving v1.31; the worker's
reboot does not come back (``no_boot``) until the test powers it on, with a new host key."""

from __future__ import annotations

import json
from pathlib import Path

from k8slk_ops.engine.playbook import builtin_path
from k8slk_ops.node.rebootrecord import ANNOTATION
from tests.fleet.inprocess import InProcessFleet
from tests.fleet.node import BOOT_ID
from tests.unit.clirun import K8slk
from tests.unit.test_upgrade_fleet import NEW, bumped, versions


def short_wait(directory: Path) -> Path:
    """The upgrade playbook with a 2 s wait-ssh: the run stops at the node that stays down."""
    text = builtin_path("upgrade").read_text().replace("wait-ssh: {timeout: 10m}",
                                                       "wait-ssh: {timeout: 2s}")
    path = directory / "upgrade-short.yml"
    path.write_text(text)
    return path


def boot_id(fleet: InProcessFleet, name: str) -> str:
    return fleet.call(lambda: fleet._node(name).files[BOOT_ID].decode().strip())


def stopped_roll(fleet: InProcessFleet, k8slk: K8slk, inventory: Path) -> dict[str, str]:
    """Run the roll until w-1's reboot, which does not come back; the record it left."""
    before = boot_id(fleet, "w-1")
    fleet.no_boot("w-1")
    run = k8slk("run", short_wait(inventory.parent), inventory, "--json")
    assert run.code == 1, run.why()
    assert run.outcomes["w-1"] == "failed"
    record = json.loads(fleet.members()["w-1"].annotations[ANNOTATION])
    assert record["bootId"] == before and record["run"]
    assert versions(fleet)["w-1"] == ("v1.30.5", True)  # cordoned by the roll
    return record  # type: ignore[no-any-return]


def test_a_stopped_roll_resumes_after_the_node_boots_with_accept(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(2, 1, kubernetes_version="v1.30.5")  # type: ignore[operator]
    inventory = bumped(fleet, k8slk, accept=True)
    stopped_roll(fleet, k8slk, inventory)
    fleet.power_on("w-1")  # boots the served image, with a new host key
    known = fleet.directory / "known_hosts"
    wildcard = "[127.*]:* ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA" + "A" * 43
    known.write_text(known.read_text() + wildcard + "\n")
    run = k8slk("upgrade", inventory, "--yes", "--json")
    assert run.code == 0, run.why()
    assert versions(fleet) == {"cp-1": (NEW, False), "w-1": (NEW, False)}
    assert ANNOTATION not in fleet.members()["w-1"].annotations
    assert wildcard in known.read_text().splitlines()
    again = k8slk("upgrade", inventory, "--yes", "--json")
    assert again.code == 0, again.why()


def test_a_stopped_roll_under_refuse_names_the_run_and_the_command(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(2, 1, kubernetes_version="v1.30.5")  # type: ignore[operator]
    inventory = bumped(fleet, k8slk, accept=True)  # cp-1's own reboot goes through
    record = stopped_roll(fleet, k8slk, inventory)
    inventory.write_text(inventory.read_text().replace("  hostKeyAfterReboot: accept\n", ""))
    fleet.power_on("w-1")
    known = fleet.directory / "known_hosts"
    kept = known.read_text()
    run = k8slk("upgrade", inventory, "--yes", "--json")
    assert run.code == 3, run.why()
    said = run.stdout + run.stderr
    assert f"was rebooted by run {record['run']}" in said
    assert "ssh-keygen -R '[" in said and "hostKeyAfterReboot is refuse" in said
    assert known.read_text() == kept
    assert versions(fleet)["w-1"] == (NEW, True)


def test_a_new_key_without_a_reboot_is_refused_under_accept(
    fleet_factory: object, k8slk: K8slk
) -> None:
    """The record is there but the boot ID is the recorded one: the key is not explained by a
    reboot, known_hosts is not touched."""
    fleet = fleet_factory(2, 1, kubernetes_version="v1.30.5")  # type: ignore[operator]
    inventory = bumped(fleet, k8slk, accept=True)
    stopped_roll(fleet, k8slk, inventory)
    fleet.power_on("w-1")
    now = boot_id(fleet, "w-1")

    def same_boot() -> None:
        member = fleet.fleet.cluster.members["w-1"]
        member.annotations[ANNOTATION] = json.dumps({"run": "r-old", "bootId": now})

    fleet.call(same_boot)
    known = fleet.directory / "known_hosts"
    kept = known.read_text()
    run = k8slk("upgrade", inventory, "--yes", "--json")
    assert run.code == 3, run.why()
    assert "has not booted since" in run.stdout + run.stderr
    assert known.read_text() == kept


def test_certs_renew_refuses_while_an_etcd_member_is_down_and_force_goes_on(
    fleet_factory: object, k8slk: K8slk
) -> None:
    """One member of three stopped: quorum holds, so renewing (a restart of one more member)
    could end it; refused naming the member, nothing renewed; --force goes on with a warning."""
    fleet = fleet_factory(3, 3)  # type: ignore[operator]
    boot = k8slk("bootstrap", fleet.inventory, "--json")
    assert boot.code == 0, boot.why()
    fleet.stop_etcd("cp-3")
    run = k8slk("certs", "renew", fleet.inventory, "--yes", "--within-days", "all", "--json")
    assert run.code == 1, run.why()
    assert "etcd is not healthy, cp-1 not disrupted: cp-3:" in run.nodes["cp-1"]["message"]
    assert run.outcomes == {"cp-1": "failed", "cp-2": "skipped", "cp-3": "skipped"}
    forced = k8slk("certs", "renew", fleet.inventory, "--yes", "--within-days", "all",
                   "--force", "--json")
    assert "going on because of --force" in forced.stdout + forced.stderr + forced.log
    assert forced.code == 0 and set(forced.outcomes.values()) == {"ok"}, forced.why()


def test_upgrade_refuses_before_the_primary_while_an_etcd_member_is_down(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 3, kubernetes_version="v1.30.5")  # type: ignore[operator]
    inventory = bumped(fleet, k8slk, accept=True)
    fleet.stop_etcd("cp-2")
    run = k8slk("upgrade", inventory, "--yes", "--json")
    assert run.code == 1, run.why()
    assert "etcd is not healthy, cp-1 not disrupted: cp-2:" in run.nodes["cp-1"]["message"]
    assert "--force" in run.nodes["cp-1"]["message"]
    assert [fleet.boots(n) for n in ("cp-1", "cp-2", "cp-3")] == [1, 1, 1]
    assert not any(unschedulable for _, unschedulable in versions(fleet).values())
