"""The etcd version rule of a roll (kubeadm's table, one etcd minor at a time, one minor for
all members) and the cluster view one member gives of every member. Pure: values in, refusals
and problems out."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest

from k8slk_ops.cluster import etcdctl
from k8slk_ops.cluster.etcdctl import ClusterView, EndpointHealth, EndpointStatus, MemberInfo
from k8slk_ops.kubeadm.errors import VersionError
from k8slk_ops.kubeadm.etcdversions import (
    KUBEADM_ETCD,
    EtcdVersion,
    MemberEtcd,
    kubeadm_etcd,
    oldest_upgradable,
    refusal,
    summary,
)
from k8slk_ops.kubeadm.versions import KubeVersion
from k8slk_ops.steps.etcdgate import view_problems


def v(text: str) -> KubeVersion:
    return KubeVersion.parse(text)


@pytest.mark.parametrize(("text", "parsed"), [
    ("3.4.23", EtcdVersion(3, 4, 23)),
    ("3.5.15-0", EtcdVersion(3, 5, 15)),  # an image tag: the revision after the dash is not etcd's
    ("v3.6.4", EtcdVersion(3, 6, 4)),
])
def test_etcd_versions_parse_from_status_and_tags(text: str, parsed: EtcdVersion) -> None:
    assert EtcdVersion.parse(text) == parsed


@pytest.mark.parametrize("text", ["", "3.5", "3.5.x", "latest", "3.5.15-rc"])
def test_what_is_not_an_etcd_version_is_refused(text: str) -> None:
    with pytest.raises(VersionError):
        EtcdVersion.parse(text)


def test_minor_versions_compare_as_numbers() -> None:
    assert EtcdVersion.parse("3.10.0") > EtcdVersion.parse("3.9.9")


@pytest.mark.parametrize(("target", "wanted", "floor"), [
    ("v1.21.14", "3.4.13", "3.3"),
    ("v1.22.0", "3.5.0", "3.4"),
    ("v1.30.5", "3.5.12", "3.4"),
    ("v1.31.3", "3.5.15", "3.4"),
    ("v1.33.1", "3.5.21", "3.4"),
    ("v1.34.0", "3.6.4", "3.5"),
    ("v1.40.0", "3.6.4", "3.5"),  # past the table: its newest entry, as kubeadm does
    ("v1.10.0", "3.2.24", "3.1"),  # before it: its oldest
])
def test_kubeadm_wants_its_tables_etcd_and_takes_one_minor_below(
    target: str, wanted: str, floor: str
) -> None:
    assert str(kubeadm_etcd(v(target))) == wanted
    assert oldest_upgradable(v(target)).line == floor


def test_the_table_moves_one_etcd_minor_at_most_per_kubernetes_minor() -> None:
    """Each Kubernetes minor's etcd can be reached from the previous one's: a roll minor by
    minor never meets the floor with an etcd kubeadm itself put there."""
    minors = sorted(KUBEADM_ETCD)
    for before, after in itertools.pairwise(minors):
        old, new = EtcdVersion.parse(KUBEADM_ETCD[before]), EtcdVersion.parse(KUBEADM_ETCD[after])
        assert old <= new
        assert old >= oldest_upgradable(v(f"v1.{after}.0")), (before, after)


LAB = "3.4.23"  # Debian's etcd the lab runs


@pytest.mark.parametrize(("target", "members", "refused"), [
    # the lab: 3.4.23 everywhere, kubeadm 1.25-1.33 upgrades it to 3.5: accepted
    ("v1.31.3", [("cp-1", LAB, False), ("cp-2", LAB, False), ("cp-3", LAB, False)], ""),
    ("v1.25.0", [("cp-1", LAB, False)], ""),
    ("v1.33.1", [("cp-1", LAB, False)], ""),
    # kubeadm 1.34 writes etcd 3.6, which does not start on a 3.4 cluster's data
    ("v1.34.0", [("cp-1", LAB, False)], "cp-1 runs etcd 3.4.23"),
    ("v1.34.0", [("cp-1", "3.5.21", False)], ""),
    # one member two minors behind is named alone
    ("v1.31.3", [("cp-1", "3.5.15", False), ("cp-2", "3.3.27", False)], "cp-2 runs etcd 3.3.27"),
    # newer than kubeadm's: kept ("won't downgrade"), not refused
    ("v1.30.5", [("cp-1", "3.6.4", False), ("cp-2", "3.6.5", False)], ""),
    # patches differ, minor agrees
    ("v1.31.3", [("cp-1", "3.5.9", False), ("cp-2", "3.5.15", False)], ""),
    # minors differ with no control plane at the target: a half-done etcd upgrade
    ("v1.31.3", [("cp-1", LAB, False), ("cp-2", "3.5.15", False)], "disagree on the minor"),
    # minors differ as this roll leaves them: the upgraded control planes one minor ahead
    ("v1.31.3", [("cp-1", "3.5.15", True), ("cp-2", LAB, False), ("cp-3", LAB, False)], ""),
    # ...but an upgraded control plane behind the others is not the roll's doing
    ("v1.31.3", [("cp-1", LAB, True), ("cp-2", "3.5.15", False)], "disagree on the minor"),
    # ...nor are two minors among the control planes not yet upgraded
    ("v1.31.3", [("cp-1", "3.5.15", True), ("cp-2", LAB, False), ("cp-3", "3.5.15", False)],
     "disagree on the minor"),
    ("v1.31.3", [], ""),
])
def test_the_roll_is_refused_when_kubeadm_could_not_take_its_etcd(
    target: str, members: list[tuple[str, str, bool]], refused: str
) -> None:
    said = refusal(v(target), [MemberEtcd(n, EtcdVersion.parse(e), t) for n, e, t in members])
    if refused:
        assert refused in said
    else:
        assert said == ""


def test_a_refusal_names_the_member_its_version_and_what_to_do() -> None:
    said = refusal(v("v1.34.0"), [MemberEtcd("cp-2", EtcdVersion.parse(LAB)),
                                  MemberEtcd("cp-1", EtcdVersion.parse("3.5.21"))])
    assert said.startswith("cp-2 runs etcd 3.4.23: kubeadm 1.34 upgrades stacked etcd to 3.6.4")
    assert "needs 3.5 or newer" in said and "then run again" in said
    assert "cp-1" not in said
    mixed = refusal(v("v1.31.3"), [MemberEtcd("cp-2", EtcdVersion.parse("3.5.15")),
                                   MemberEtcd("cp-1", EtcdVersion.parse(LAB))])
    assert "(cp-1 3.4.23, cp-2 3.5.15)" in mixed and "k8slk-ops etcd status" in mixed


def test_the_summary_says_what_was_read_and_what_kubeadm_deploys() -> None:
    members = [MemberEtcd(n, EtcdVersion.parse(LAB)) for n in ("cp-2", "cp-1")]
    assert summary(v("v1.31.3"), members) == "etcd 3.4.23 on cp-1, cp-2; kubeadm 1.31 deploys 3.5.15"


# -- the cluster view -------------------------------------------------------------------------

A, B, C = 0xA1, 0xB2, 0xC3
MEMBERS = (
    MemberInfo(A, "cp-1", ("https://10.0.0.1:2380",), ("https://10.0.0.1:2379",)),
    MemberInfo(B, "cp-2", ("https://10.0.0.2:2380",), ("https://10.0.0.2:2379",)),
    MemberInfo(C, "cp-3", ("https://10.0.0.3:2380",), ("https://10.0.0.3:2379",)),
)
OWNERS = {f"cp-{i}": frozenset({f"10.0.0.{i}"}) for i in (1, 2, 3)}


def status(member: int, leader: int = A, version: str = LAB) -> EndpointStatus:
    n = {A: 1, B: 2, C: 3}[member]
    return EndpointStatus(member, leader, version, 20480, 2, f"https://10.0.0.{n}:2379")


def health(n: int, ok: bool = True, error: str = "") -> EndpointHealth:
    return EndpointHealth(f"https://10.0.0.{n}:2379", ok, error)


def view(statuses: tuple[EndpointStatus, ...], healths: tuple[EndpointHealth, ...],
         members: tuple[MemberInfo, ...] = MEMBERS) -> ClusterView:
    return ClusterView("cp-1", members, statuses, healths)


def test_a_healthy_cluster_view_has_no_problems() -> None:
    seen = view((status(A), status(B), status(C)), (health(1), health(2), health(3)))
    assert view_problems(seen, OWNERS) == []


def test_a_member_that_did_not_answer_is_named_with_etcdctls_reason() -> None:
    seen = view((status(A), status(C)),
                (health(1), health(2, False, "context deadline exceeded"), health(3)))
    assert view_problems(seen, OWNERS) == [
        "cp-2: did not answer endpoint status at https://10.0.0.2:2379: context deadline exceeded"
    ]


def test_without_a_leader_every_member_says_quorum_is_lost() -> None:
    seen = view((status(A, 0), status(B, 0), status(C, 0)),
                (health(1, False), health(2, False), health(3, False)))
    assert all("quorum lost" in p for p in view_problems(seen, OWNERS))
    assert len(view_problems(seen, OWNERS)) == 3


def test_members_and_control_planes_that_do_not_match_are_both_named() -> None:
    stray = MemberInfo(0xD4, "old-cp", ("https://10.0.0.9:2380",), ("https://10.0.0.9:2379",))
    unstarted = MemberInfo(0xE5, "", ("https://10.0.0.8:2380",))
    seen = view((status(A), status(B)), (health(1), health(2)),
                members=(MEMBERS[0], MEMBERS[1], stray, unstarted))
    assert view_problems(seen, OWNERS) == [
        "cp-3: no etcd member of it is listed",
        "old-cp: listed by etcd, no control plane of the inventory answers for it",
        "e5 (added, not started): listed by etcd, no control plane of the inventory answers for it",
    ]


def test_a_member_is_found_by_address_when_its_name_differs() -> None:
    renamed = MemberInfo(B, "machine-2", ("https://10.0.0.2:2380",), ("https://10.0.0.2:2379",))
    seen = view((status(A), status(B), status(C)), (health(1), health(2), health(3)),
                members=(MEMBERS[0], renamed, MEMBERS[2]))
    assert view_problems(seen, OWNERS) == []


def test_cluster_answers_parse_with_one_row_per_endpoint() -> None:
    statuses = json.dumps([
        {"Endpoint": f"https://10.0.0.{i}:2379",
         "Status": {"header": {"member_id": m, "raft_term": 2}, "version": ver, "dbSize": 20480,
                    "leader": A, "raftTerm": 2}}
        for i, m, ver in ((1, A, "3.4.23"), (3, C, "3.5.15"))
    ])
    parsed = etcdctl.parse_endpoint_statuses(statuses)
    assert [(s.endpoint, s.member_id, s.version) for s in parsed] == [
        ("https://10.0.0.1:2379", A, "3.4.23"), ("https://10.0.0.3:2379", C, "3.5.15")]
    assert etcdctl.parse_endpoint_status(statuses) == parsed[0]
    said = etcdctl.parse_endpoint_health(
        '[{"endpoint":"https://10.0.0.1:2379","health":true,"took":"1ms"},'
        '{"endpoint":"https://10.0.0.2:2379","health":false,"took":"5s",'
        '"error":"context deadline exceeded"}]\n')
    assert said == [health(1), health(2, False, "context deadline exceeded")]
    with pytest.raises(etcdctl.EtcdctlError):
        etcdctl.parse_endpoint_health('{"endpoint": "x"}')


def test_the_lab_kubeadm_double_wants_the_same_etcd_as_the_table() -> None:
    """The double's upgrade plan names kubeadm's etcd per minor: the same as the tool's table."""
    doubles = str(Path(__file__).resolve().parents[1] / "lab" / "doubles")
    if doubles not in sys.path:
        sys.path.insert(0, doubles)
    from k8sdouble.upgrade import ETCD

    assert {m: KUBEADM_ETCD[m] for m in ETCD} == ETCD
