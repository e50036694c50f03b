"""A control plane lost for good, against the fleet: ``remove-node --force`` takes its etcd
member out through a healthy member, ``add-node`` joins a blank machine at its address as a new
member, and refuses (naming the command) while the old member is still listed."""

from __future__ import annotations

import pytest

from k8slk_ops.cluster import etcdmembers
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory


@pytest.fixture
def ha(fleet_factory: FleetFactory, k8slk: K8slk) -> InProcessFleet:
    """cp-1..cp-3 and w-1, bootstrapped, every node Ready."""
    fleet = fleet_factory(4, 3)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    return fleet


@pytest.fixture
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A member without a leader is not asked again (the fleet's quorum does not come back)."""
    monkeypatch.setattr(etcdmembers, "ETCD_SETTLE", 0.0)


def _all_ready(fleet: InProcessFleet, names: set[str]) -> bool:
    members = fleet.members()
    return set(members) == names and all(fleet.call(
        lambda m=m: fleet.fleet.cluster.ready(m)) for m in members.values())


def test_dead_control_plane_leaves_etcd_and_a_blank_machine_takes_its_place(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    ha.power_off("cp-3")
    run = k8slk("remove-node", ha.inventory, "cp-3", "--force", "--yes", "--json")
    assert run.code == 0, run.why()
    assert ha.etcd_members() == {"cp-1", "cp-2"}
    assert "cp-3" not in ha.members()
    removed = run.report["data"]["etcdMembersRemoved"]
    assert [(r["node"], r["name"], r["through"], r["membersLeft"]) for r in removed] == [
        ("cp-3", "cp-3", "cp-1", 2)]
    assert any("etcd member" in m and "removed through cp-1" in m
               for m in run.report["messages"]), run.report["messages"]

    ha.replace("cp-3")
    ha.rewrite_known_hosts()
    run = k8slk("add-node", ha.inventory, "--node", "cp-3", "--json")
    assert run.code == 0, run.why()
    assert ha.etcd_members() == {"cp-1", "cp-2", "cp-3"}
    assert _all_ready(ha, {"cp-1", "cp-2", "cp-3", "w-1"})


def test_replaced_before_remove_node_add_node_refuses_and_names_the_command(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    ha.power_off("cp-3")
    ha.replace("cp-3")
    ha.rewrite_known_hosts()
    run = k8slk("add-node", ha.inventory, "--node", "cp-3", "--json")
    assert run.code == 1, run.why()
    said = run.nodes["cp-1"]["message"]
    assert f"remove-node {ha.inventory} cp-3 --force --yes" in said, said
    assert ha.etcd_members() == {"cp-1", "cp-2", "cp-3"}  # nothing removed by add-node
    assert ha.file("cp-3", "/run/node/kubeadm-run") is None  # no join was started

    run = k8slk("remove-node", ha.inventory, "cp-3", "--force", "--yes", "--json")
    assert run.code == 0, run.why()
    assert ha.etcd_members() == {"cp-1", "cp-2"}
    run = k8slk("add-node", ha.inventory, "--node", "cp-3", "--json")
    assert run.code == 0, run.why()
    assert ha.etcd_members() == {"cp-1", "cp-2", "cp-3"}
    assert _all_ready(ha, {"cp-1", "cp-2", "cp-3", "w-1"})


def test_a_member_that_still_answers_is_never_removed(ha: InProcessFleet, k8slk: K8slk) -> None:
    ha.unreachable("cp-3")  # SSH is gone, its etcd still runs
    run = k8slk("remove-node", ha.inventory, "cp-3", "--force", "--yes", "--json")
    assert run.code == 1, run.why()
    assert "still answers" in run.nodes["cp-3"]["message"], run.nodes["cp-3"]
    assert ha.etcd_members() == {"cp-1", "cp-2", "cp-3"}
    assert "cp-3" in ha.members()  # the Node stays with its member


def test_no_member_is_removed_when_etcd_has_no_quorum(
    ha: InProcessFleet, k8slk: K8slk, no_settle: None
) -> None:
    ha.power_off("cp-2")
    ha.power_off("cp-3")
    run = k8slk("remove-node", ha.inventory, "cp-3", "--force", "--yes", "--json")
    assert run.code != 0, run.why()
    assert ha.etcd_members() == {"cp-1", "cp-2", "cp-3"}


def test_etcd_status_lists_stale_members_with_the_command_that_removes_them(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    ha.power_off("cp-3")
    run = k8slk("etcd", "status", ha.inventory, "--json")
    stale = [m for m in run.report["messages"] if m.startswith("stale etcd member")]
    assert len(stale) == 1, run.report["messages"]
    assert "its node cp-3 is unreachable" in stale[0]
    assert f"remove-node {ha.inventory} cp-3 --force --yes" in stale[0]

    partial = ha.inventory_of(["cp-1", "cp-2", "w-1"])  # cp-3 no longer in the inventory
    run = k8slk("etcd", "status", partial, "--json")
    stale = [m for m in run.report["messages"] if m.startswith("stale etcd member")]
    assert len(stale) == 1 and "no control plane of the inventory" in stale[0], stale
    assert "member remove" in stale[0]


def test_add_node_refuses_a_control_plane_join_while_another_member_is_silent(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(4, 4)
    first = fleet.inventory_of(["cp-1", "cp-2", "cp-3"])
    run = k8slk("bootstrap", first, "--json")
    assert run.code == 0, run.why()
    fleet.power_off("cp-2")
    run = k8slk("add-node", fleet.inventory, "--node", "cp-4", "--json")
    assert run.code == 1, run.why()
    said = run.nodes["cp-1"]["message"]
    assert "check-etcd" in said and f"remove-node {fleet.inventory} cp-2 --force --yes" in said
    assert fleet.etcd_members() == {"cp-1", "cp-2", "cp-3"}
