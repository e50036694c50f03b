"""The etcd gate against the fleet: one member's cluster view first, each control plane only
when that member cannot give it; and, before an upgrade disrupts a control plane, the running
etcd versions read and held to what kubeadm of the target can take.

Three control planes bootstrapped at v1.30, the fleet serving v1.31; the fleet's etcd is 3.4.23
(as the lab's), which kubeadm 1.31 upgrades to 3.5: the roll goes on. ``etcd_versions`` puts a
member on another release (its mirror pod and its ``endpoint status`` both say so)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk
from tests.unit.test_upgrade_fleet import OLD, bumped, versions

GATE_ONLY = """name: etcd-gate
description: the etcd health gate alone
requiresCluster: true
stages:
  - name: gate
    hosts: primary
    steps:
      - etcd-healthy: {}
"""


def set_etcd(fleet: InProcessFleet, member: str, version: str) -> None:
    fleet.call(lambda: fleet.fleet.cluster.etcd_versions.__setitem__(member, version))


def etcd_execs(fleet: InProcessFleet, name: str) -> int:
    """Sessions in the node's kubelet container other than kubeadm and kubectl: here, crictl
    finding the etcd pod and running etcdctl in it."""
    return fleet.node_commands(name).get("exec", 0)


def gate(tmp_path: Path) -> Path:
    book = tmp_path / "gate.yml"
    book.write_text(GATE_ONLY)
    return book


def test_one_member_answers_for_the_cluster(
    fleet_factory: object, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = fleet_factory(3, 3)  # type: ignore[operator]
    assert k8slk("bootstrap", fleet.inventory, "--json").code == 0
    before = {n: etcd_execs(fleet, n) for n in ("cp-1", "cp-2", "cp-3")}
    run = k8slk("run", gate(tmp_path), fleet.inventory, "--json")
    assert run.code == 0, run.why()
    after = {n: etcd_execs(fleet, n) - before[n] for n in before}
    assert after["cp-1"] > 0 and after["cp-2"] == after["cp-3"] == 0, after


def test_a_silent_member_is_named_through_the_cluster_view(
    fleet_factory: object, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = fleet_factory(3, 3)  # type: ignore[operator]
    assert k8slk("bootstrap", fleet.inventory, "--json").code == 0
    fleet.stop_etcd("cp-3")
    before = {n: etcd_execs(fleet, n) for n in ("cp-2", "cp-3")}
    run = k8slk("run", gate(tmp_path), fleet.inventory, "--json")
    assert run.code == 1
    message = run.nodes["cp-1"]["message"]
    assert "cp-3: did not answer endpoint status at https://" in message, message
    assert {n: etcd_execs(fleet, n) - before[n] for n in before} == {"cp-2": 0, "cp-3": 0}


def test_when_the_asked_member_is_down_each_control_plane_is_asked(
    fleet_factory: object, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = fleet_factory(3, 3)  # type: ignore[operator]
    assert k8slk("bootstrap", fleet.inventory, "--json").code == 0
    fleet.stop_etcd("cp-1")  # the primary's: it cannot give the view; two of three keep quorum
    before = {n: etcd_execs(fleet, n) for n in ("cp-2", "cp-3")}
    run = k8slk("run", gate(tmp_path), fleet.inventory, "--json")
    assert run.code == 1
    message = run.nodes["cp-1"]["message"]
    assert "cp-1: no running etcd container on cp-1" in message, message
    assert "cp-2" not in message and "cp-3" not in message
    assert all(etcd_execs(fleet, n) > before[n] for n in before)


def test_the_roll_reports_the_etcd_it_read_and_goes_on(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 3, kubernetes_version=OLD)  # type: ignore[operator]
    inventory = bumped(fleet, k8slk, accept=True)
    pods = json.loads(fleet.call(lambda: fleet.fleet.cluster.static_pods_json("cp-2")))
    assert {c["image"] for p in pods["items"] for c in p["spec"]["containers"]
            if p["metadata"]["name"] == "etcd-cp-2"} == {"registry.k8s.io/etcd:3.4.23-0"}
    run = k8slk("upgrade", inventory, "--yes", "--json")
    assert run.code == 0, run.why()
    said = "etcd 3.4.23 on cp-1, cp-2, cp-3; kubeadm 1.31 deploys 3.5.15 (read through cp-1 (--cluster))"
    assert said in run.log, run.log[-3000:]


def test_a_member_two_minors_behind_stops_the_roll_before_anything_and_force_goes_on(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 3, kubernetes_version=OLD)  # type: ignore[operator]
    inventory = bumped(fleet, k8slk, accept=True)
    set_etcd(fleet, "cp-2", "3.3.27")
    run = k8slk("upgrade", inventory, "--yes", "--json")
    assert run.code == 1, run.why()
    message = run.nodes["cp-1"]["message"]
    assert "refusing the upgrade, cp-1 not disrupted: cp-2 runs etcd 3.3.27" in message, message
    assert "needs 3.4 or newer" in message and "--force" in message
    assert [fleet.boots(n) for n in ("cp-1", "cp-2", "cp-3")] == [1, 1, 1]
    assert not any(unschedulable for _, unschedulable in versions(fleet).values())
    forced = k8slk("upgrade", inventory, "--yes", "--force", "--json")
    assert forced.code == 0, forced.why()
    assert "cp-2 runs etcd 3.3.27" in forced.log and "going on because of --force" in forced.log


def test_members_on_two_minors_are_a_half_done_etcd_upgrade(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 3, kubernetes_version=OLD)  # type: ignore[operator]
    inventory = bumped(fleet, k8slk, accept=True)
    set_etcd(fleet, "cp-3", "3.5.12")
    run = k8slk("upgrade", inventory, "--yes", "--json")
    assert run.code == 1, run.why()
    message = run.nodes["cp-1"]["message"]
    assert "disagree on the minor (cp-1 3.4.23, cp-2 3.4.23, cp-3 3.5.12)" in message, message
    assert [fleet.boots(n) for n in ("cp-1", "cp-2", "cp-3")] == [1, 1, 1]
