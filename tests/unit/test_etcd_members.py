"""Which member belongs to which node and which are stale: pure, from a member list and an
inventory; and etcdctl's argv against another member's client URL."""

from __future__ import annotations

import json
from pathlib import Path

from k8slk_ops.cluster import etcdctl, etcdmembers
from k8slk_ops.cluster.etcdctl import MemberInfo
from k8slk_ops.engine.context import ClusterFacts, Member, PlanContext, RunOptions
from k8slk_ops.inventory import Inventory, load_inventory
from k8slk_ops.steps.etcdmember import checked

INVENTORY = """\
cluster:
  name: lab
  controlPlaneEndpoint: lb.example:6443
nodes:
  - {name: cp-1, address: 10.0.0.11, role: control-plane}
  - {name: cp-2, address: 10.0.0.12, role: control-plane}
  - {name: cp-3, address: cp-3.example, nodeIP: 10.0.0.13, role: control-plane}
  - {name: w-1, address: 10.0.0.21, role: worker}
"""


def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    return load_inventory(path)


def member(i: int, name: str, host: str, started: bool = True) -> MemberInfo:
    return MemberInfo(i, name, (f"https://{host}:2380",),
                      (f"https://{host}:2379",) if started else ())


def test_member_list_keeps_client_urls_and_hosts() -> None:
    text = json.dumps({"members": [
        {"ID": 10, "name": "cp-1", "peerURLs": ["https://10.0.0.11:2380"],
         "clientURLs": ["https://10.0.0.11:2379"]},
        {"ID": 11, "peerURLs": ["https://10.0.0.13:2380"]},  # added, never started
    ]})
    first, unstarted = etcdctl.parse_member_list(text)
    assert first.client_urls == ("https://10.0.0.11:2379",)
    assert first.hosts == {"10.0.0.11"}
    assert unstarted.name == "" and unstarted.client_urls == ()
    assert unstarted.hosts == {"10.0.0.13"}


def test_argv_at_another_member_replaces_the_endpoint_rather_than_adding_one() -> None:
    argv = etcdctl.client_argv_at("https://10.0.0.13:2379", "endpoint", "status",
                                  dial_timeout="3s")
    assert [a for a in argv if a.startswith("--endpoints=")] == ["--endpoints=https://10.0.0.13:2379"]
    assert [a for a in argv if a.startswith("--dial-timeout=")] == ["--dial-timeout=3s"]
    assert etcdctl.member_remove_args(0x8E9E05C52164694D) == (
        "member", "remove", "8e9e05c52164694d")


def test_a_node_s_member_by_name_else_by_any_of_its_addresses(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    addresses = etcdmembers.addresses_of(inv, {}, "cp-3")
    assert addresses == {"cp-3.example", "10.0.0.13"}
    renamed = member(3, "old-name", "10.0.0.13")
    assert etcdmembers.member_of([member(1, "cp-1", "10.0.0.11"), renamed], "cp-3",
                                 addresses) == renamed
    assert etcdmembers.member_of([member(1, "cp-1", "10.0.0.11")], "cp-3", addresses) is None
    assert etcdmembers.node_of(renamed, inv, {}) == "cp-3"
    assert etcdmembers.node_of(member(9, "cp-9", "10.0.0.99"), inv, {}) is None


def test_stale_members_are_those_without_a_node_or_with_an_unreachable_one(
    tmp_path: Path
) -> None:
    inv = inventory(tmp_path)
    members = (member(1, "cp-1", "10.0.0.11"), member(3, "cp-3", "10.0.0.13"),
               member(9, "", "10.0.0.99", started=False))
    stale = etcdmembers.stale_members(members, inv, {}, {"cp-3": "connection refused"})
    assert [(s.member.member_id, s.node) for s in stale] == [(3, "cp-3"), (9, None)]
    assert stale[0].remedy == f"k8slk-ops remove-node {inv.source} cp-3 --force --yes"
    assert "member remove 9" in stale[1].remedy
    assert "not started" in stale[1].line()
    assert etcdmembers.stale_members(members[:2], inv, {}, {}) == []


def _context(tmp_path: Path, selected: tuple[str, ...], members: dict[str, bool]) -> PlanContext:
    cluster = ClusterFacts(primary="cp-1", initialised=True)
    for name, ready in members.items():
        cluster.members[name] = Member(name, ready, name.startswith("cp"))
    return PlanContext(inventory=inventory(tmp_path),
                       options=RunOptions(run_id="r1", selected=selected),
                       facts={}, unreachable={}, cluster=cluster)


def test_add_node_checks_control_planes_it_joins_and_those_named(
    tmp_path: Path
) -> None:
    all_in = {"cp-1": True, "cp-2": True, "cp-3": True, "w-1": True}
    assert checked(_context(tmp_path, (), all_in)) == []
    assert checked(_context(tmp_path, (), {"cp-1": True, "w-1": True})) == ["cp-2", "cp-3"]
    assert checked(_context(tmp_path, ("cp-3",), {"cp-1": True, "w-1": True})) == ["cp-3"]
    assert checked(_context(tmp_path, ("w-1",), {"cp-1": True})) == []
    # Named members are looked at, Ready or not: a Node stays Ready for a while after its
    # machine is gone. Unnamed members are not (a broken one must not block other joins).
    assert checked(_context(tmp_path, ("cp-3",), all_in)) == ["cp-3"]
    not_ready = dict(all_in, **{"cp-3": False})
    assert checked(_context(tmp_path, (), not_ready)) == []
