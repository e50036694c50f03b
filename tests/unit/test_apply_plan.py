"""apply's plan as data: inventory and facts in, stages of actions out (pure, no nodes); and
the inventory's new fields (taints, remove) checked with file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from k8slk_ops.cli.commands.apply import apply_playbook, disruption_question, due_text
from k8slk_ops.cluster.nodemeta import OwnedKeys
from k8slk_ops.engine.context import ClusterFacts, Member, PlanContext
from k8slk_ops.engine.options import SharedOptions
from k8slk_ops.engine.plan import Plan, make_plan
from k8slk_ops.inventory import InventoryError, load_inventory
from k8slk_ops.inventory.summary import at_a_glance, summarize
from k8slk_ops.kubeadm.kubectl import Taint
from k8slk_ops.node.facts import parse_facts
from k8slk_ops.node.rebootrecord import RebootRecord

V_OLD, V_NEW = "v1.30.5", "v1.31.3"


def inventory_text(version: str | None = V_OLD, *, w2: str = "", w3: bool = False) -> str:
    version_line = f"  kubernetesVersion: {version}\n" if version else ""
    return (
        "cluster:\n  name: lab\n  controlPlaneEndpoint: 127.0.9.11:6443\n" + version_line
        + "nodes:\n"
        "  - {name: cp-1, address: 127.0.9.11, role: control-plane}\n"
        "  - {name: cp-2, address: 127.0.9.12, role: control-plane}\n"
        "  - {name: cp-3, address: 127.0.9.13, role: control-plane}\n"
        "  - {name: w-1, address: 127.0.9.21, role: worker, labels: {zone: a},"
        " taints: [{key: gpu, value: 'yes', effect: NoSchedule}]}\n"
        f"  - {{name: w-2, address: 127.0.9.22, role: worker{w2}}}\n"
        + ("  - {name: w-3, address: 127.0.9.23, role: worker}\n" if w3 else "")
    )


def facts(version: str, *, member: bool) -> str:
    if member:
        return (f"marker=1\nadmin_conf=1\ntask kubelet 1 RUNNING\ntask kubeadm 2 STOPPED\n"
                f"kubeadm_version={version}\nvar_node=1\n")
    return (f"cpus=2\nmem_kb=4000000\ntask kubelet 1 RUNNING\ntask kubeadm 2 RUNNING\n"
            f"kubeadm_version={version}\nlog 2026-11-25T06:00:00Z kubeadm.out Waiting for "
            "/run/kubeadm-run to exist before running kubeadm commands\n")


def member(name: str, version: str = V_OLD) -> Member:
    """A member as apply leaves it: w-1 with its label and taint, recorded as owned."""
    if name == "w-1":
        return Member(name, True, False, kubelet_version=version, labels={"zone": "a"},
                      taints=(Taint("gpu", "NoSchedule", "yes"),),
                      owned=OwnedKeys(frozenset({"zone"}), frozenset({"gpu:NoSchedule"})))
    return Member(name, True, name.startswith("cp"), kubelet_version=version)


def planned(tmp_path: Path, text: str, members: dict[str, Member], version: str = V_OLD
            ) -> Plan:
    path = tmp_path / "inv.yml"
    path.write_text(text)
    playbook, options = apply_playbook(path, SharedOptions(), "apply")
    inv = load_inventory(path)
    cluster = ClusterFacts(primary="cp-1", initialised=bool(members), members=members)
    ctx = PlanContext(
        inventory=inv, options=options,
        facts={n.name: parse_facts(facts(version, member=n.name in members)) for n in inv.nodes},
        unreachable={}, cluster=cluster,
    )
    return make_plan(playbook, ctx)


def due(plan: Plan) -> dict[str, list[str]]:
    """stage -> the nodes it has work on."""
    return {s.name: [n.node for n in s.nodes] for s in plan.stages if s.nodes}


def test_fresh_nodes_plan_the_cluster_its_labels_and_no_roll(tmp_path: Path) -> None:
    plan = planned(tmp_path, inventory_text(), {})
    stages = due(plan)
    assert stages["init"] == ["cp-1"]
    assert stages["join-control-planes"] == ["cp-2", "cp-3"]
    assert stages["join-workers"] == ["w-1", "w-2"]
    assert stages["labels"] == ["w-1"]  # once it has joined; the others list none
    assert stages["kubeconfig"] == ["cp-1"]
    assert not any(name.startswith(("roll-", "remove-")) for name in stages)
    assert plan.changes and plan.disruptions() == []


def test_a_cluster_that_matches_plans_no_change(tmp_path: Path) -> None:
    members = {n: member(n) for n in ("cp-1", "cp-2", "cp-3", "w-1", "w-2")}
    plan = planned(tmp_path, inventory_text(), members)
    assert not plan.changes
    assert plan.disruptions() == []
    assert disruption_question(plan, "lab") is None
    assert "w-1: nothing to do (labels and taints match the inventory)" in plan.to_text()
    assert "nothing changes after it: no snapshot needed" in plan.to_text()
    printed = due_text(plan).splitlines()  # what a run prints first: no line per idle node
    assert printed[0] == "plan: apply" and printed[-1] == "nothing to change"
    assert not any("nothing to do" in line for line in printed)


def test_a_new_version_a_removal_a_new_node_and_a_stranger_in_one_plan(tmp_path: Path) -> None:
    members = {n: member(n) for n in ("cp-1", "cp-2", "cp-3", "w-1", "w-2", "w-9")}
    text = inventory_text(V_NEW, w2=", remove: true", w3=True).replace(
        "labels: {zone: a}", "labels: {zone: b}")
    plan = planned(tmp_path, text, members, version=V_NEW)
    stages = due(plan)
    assert stages["join-workers"] == ["w-3"]
    assert stages["labels"] == ["w-1"]  # w-3 lists no labels or taints
    assert stages["remove-drain"] == ["w-2"] and stages["remove-delete"] == ["w-2"]
    assert stages["roll-snapshot"] == ["cp-1"]
    assert stages["roll-primary"] == ["cp-1"]
    assert stages["roll-control-planes"] == ["cp-2", "cp-3"]
    assert stages["roll-workers"] == ["w-1"]  # w-2 leaves, w-3 joins at the served version
    members_said = [a.summary for s in plan.stages if s.name == "members"
                    for n in s.nodes for st in n.steps for a in st.actions]
    assert members_said == [
        "w-9: not in the inventory: left alone (add it, or remove it with kubectl and kubeadm)"]
    labels = [a.summary for s in plan.stages if s.name == "labels" for n in s.nodes
              if n.node == "w-1" for st in n.steps for a in st.actions]
    assert labels == ["set label zone=b (was a) (kubectl patch on the primary)"]
    printed = due_text(plan)
    assert "stage labels:\n  w-1: set label zone=b (was a)" in printed
    assert "nothing to change" not in printed
    assert plan.disruptions() == [
        ("w-2", "remove-drain"), ("w-2", "remove-reset"), ("cp-1", "roll-primary"),
        ("cp-2", "roll-control-planes"), ("cp-3", "roll-control-planes"), ("w-1", "roll-workers")]
    question = disruption_question(plan, "lab")
    assert question == ("Apply to lab: drain, reset and delete w-2; drain and reboot cp-1, cp-2, "
                        "cp-3, w-1 into the new version, one at a time? Workloads on them will "
                        "move")
    # Ordered as docs/apply.md says: joins, labels, removals, then the roll.
    order = [s.name for s in plan.stages]
    assert order.index("join-workers") < order.index("labels") < order.index("remove-drain") \
        < order.index("roll-snapshot") < order.index("roll-primary")


def test_without_a_version_there_is_no_roll_to_plan(tmp_path: Path) -> None:
    members = {n: member(n) for n in ("cp-1", "cp-2", "cp-3", "w-1", "w-2")}
    plan = planned(tmp_path, inventory_text(None), members)
    assert not any(s.name.startswith("roll-") for s in plan.stages)
    assert not plan.changes


@pytest.mark.parametrize("taints, where, said", [
    ("[{key: gpu, effect: NoSchedul}]", "nodes[1].taints[0].effect",
     "must be 'NoSchedule', 'PreferNoSchedule' or 'NoExecute', got 'NoSchedul'"),
    ("[{key: 'a b', effect: NoSchedule}]", "nodes[1].taints[0].key", "label name"),
    ("[{key: gpu, effect: NoSchedule, colour: red}]", "nodes[1].taints[0].colour", "unknown"),
    ("[{key: gpu, effect: NoSchedule}, {key: gpu, value: x, effect: NoSchedule}]",
     "nodes[1].taints", "taint gpu:NoSchedule is listed twice"),
])
def test_a_bad_taint_is_refused_at_its_file_line_and_field(
    tmp_path: Path, taints: str, where: str, said: str
) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(textwrap.dedent(f"""\
        cluster: {{name: lab}}
        nodes:
          - {{name: cp-1, address: 10.0.0.11, role: control-plane}}
          - name: w-1
            address: 10.0.0.21
            role: worker
            taints: {taints}
        """))
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    [issue] = info.value.issues
    assert issue.line == 7 and issue.field == where
    assert said in issue.message


def test_remove_is_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("cluster: {name: lab}\nnodes:\n"
                    "  - {name: cp-1, address: 10.0.0.11, role: control-plane, remove: 'yes'}\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    [issue] = info.value.issues
    assert (issue.line, issue.field) == (3, "nodes[0].remove")


def test_inventory_check_names_the_nodes_marked_for_removal(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(inventory_text(w2=", remove: true"))
    lines = at_a_glance(load_inventory(path))
    assert "  to remove:      w-2 (remove: true; apply drains, resets and deletes them)" in lines
    [w1] = [n for n in summarize(load_inventory(path))["nodes"] if n["name"] == "w-1"]
    assert w1["taints"] == [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]


def test_a_node_that_cannot_join_now_gets_no_labels_planned(tmp_path: Path) -> None:
    members = {n: member(n) for n in ("cp-1", "cp-2", "cp-3", "w-2")}
    path = tmp_path / "inv.yml"
    path.write_text(inventory_text())
    playbook, options = apply_playbook(path, SharedOptions(), "apply")
    inv = load_inventory(path)
    ctx = PlanContext(
        inventory=inv, options=options,
        facts={n: parse_facts(facts(V_OLD, member=True)) for n in members},
        unreachable={"w-1": "connection refused"},
        cluster=ClusterFacts(primary="cp-1", initialised=True, members=members),
    )
    plan = make_plan(playbook, ctx)
    assert "w-1: nothing to do (unreachable: it has to join first)" in plan.to_text()
    assert not plan.changes


def test_a_node_cordoned_by_hand_at_the_target_is_not_rolled(tmp_path: Path) -> None:
    members = {n: member(n, V_NEW) for n in ("cp-1", "cp-2", "cp-3", "w-1", "w-2")}
    members["w-2"] = Member("w-2", True, False, unschedulable=True, kubelet_version=V_NEW)
    plan = planned(tmp_path, inventory_text(V_NEW), members, version=V_NEW)
    assert not plan.changes and plan.disruptions() == []
    # Cordoned by a roll that rebooted it and did not finish: rolled again, as upgrade does.
    members["w-2"] = Member("w-2", True, False, unschedulable=True, kubelet_version=V_NEW,
                            reboot=RebootRecord("20261207T0600-abc", "boot-1"))
    plan = planned(tmp_path, inventory_text(V_NEW), members, version=V_NEW)
    assert due(plan)["roll-workers"] == ["w-2"]
