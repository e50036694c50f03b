"""The reboot record's annotation value and the boot ID, read in one place (rebootrecord.py)."""

from __future__ import annotations

from k8slk_ops.cluster.etcdctl import MemberHealth, MemberInfo
from k8slk_ops.cluster.membership import members_of
from k8slk_ops.node.rebootrecord import (
    ANNOTATION,
    RebootRecord,
    annotate_args,
    parse_record,
    remove_args,
)
from k8slk_ops.steps.etcdgate import unhealthy_members

BOOT = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def test_the_record_round_trips_and_a_foreign_value_is_ignored() -> None:
    record = RebootRecord("r-123", BOOT)
    assert parse_record(record.to_annotation()) == record
    assert parse_record("") is None
    assert parse_record('{"run": "r", "bootId": "not-a-uuid"}') is None
    assert parse_record("[1, 2]") is None
    assert annotate_args("w-1", record)[-1] == f"{ANNOTATION}={record.to_annotation()}"
    assert remove_args("w-1") == ("annotate", "node", "w-1", f"{ANNOTATION}-")


def test_members_carry_the_record_from_the_node_list() -> None:
    import json
    value = RebootRecord("r-1", BOOT).to_annotation()
    node = json.dumps({"kind": "Node", "metadata": {"name": "w-1", "annotations": {ANNOTATION: value}},
                       "spec": {}, "status": {}})
    assert members_of(node)["w-1"].reboot == RebootRecord("r-1", BOOT)


def test_unhealthy_members_names_the_member() -> None:
    ok = MemberHealth("cp-1", True, members=(MemberInfo(1, "cp-1", ()), MemberInfo(2, "cp-2", ()),
                                             MemberInfo(3, "cp-3", ())))
    down = MemberHealth("cp-2", False, "etcd is not listening on https://127.0.0.1:2379")
    bad = unhealthy_members([ok, down])
    assert bad[0].startswith("cp-2: etcd is not listening")
    assert bad[1].startswith("cp-3: listed by etcd")
    assert unhealthy_members([ok, MemberHealth("cp-2", True), MemberHealth("cp-3", True)]) == []
