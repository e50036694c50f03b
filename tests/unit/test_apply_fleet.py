"""apply in-process against the fleet: one command from inventory to cluster, and a second run
that has nothing to do.

Only the CLI's surface is used (flags, exit code, ``--json`` report) and the fleet's state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from k8slk_ops.cli import cliutil
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import CliRun, K8slk
from tests.unit.conftest import FleetFactory

OWNED_LABELS = "k8slk-ops.io/owned-labels"
OWNED_TAINTS = "k8slk-ops.io/owned-taints"
OLD, NEW = "v1.30.5", "v1.31.3"


def inventory(fleet: InProcessFleet, name: str, *, drop: tuple[str, ...] = (),
              extra: dict[str, str] | None = None, version: str | None = None) -> Path:
    """The fleet's inventory with nodes left out (``drop``) and fields added to a node's line
    (``extra``: node -> ``labels: {...}, taints: [...]`` text), written beside it as NAME."""
    lines = []
    for line in Path(fleet.inventory).read_text().splitlines():
        found = re.match(r"  - \{name: ([^,]+),", line)
        if found and found[1] in drop:
            continue
        if found and extra and found[1] in extra:
            line = line[:-1] + ", " + extra[found[1]] + "}"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    if version is not None:
        text = re.sub(r"kubernetesVersion: \S+", f"kubernetesVersion: {version}", text)
    path = Path(fleet.inventory).parent / name
    path.write_text(text)
    return path


def planned(run: CliRun) -> dict[str, list[tuple[str, str]]]:
    """stage -> (node, step) of every planned action."""
    return {
        s["stage"]: [(n["node"], a["step"]) for n in s["nodes"] for a in n["actions"]]
        for s in run.report["plan"]
    }


def changing(run: CliRun) -> list[tuple[str, str, str]]:
    """(stage, node, step) of planned actions whose step changes the cluster."""
    quiet = {"preflight", "unlisted-members", "etcd-member-check", "mint-credentials",
             "wait-ready", "fetch-kubeconfig", "upgrade-check", "etcd-snapshot",
             "removal-guard", "revoke-credentials", "uncordon", "persistent-disk",
             "upgrade-etcd-healthy", "wait-ssh", "health-gate"}
    return [(stage, node, step) for stage, actions in planned(run).items()
            for node, step in actions if step not in quiet]


def test_apply_makes_the_cluster_from_fresh_nodes_and_a_second_apply_changes_nothing(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    inv = inventory(fleet, "apply.yml", extra={
        "w-1": "labels: {zone: a}",
        "w-2": "taints: [{key: dedicated, value: gpu, effect: NoSchedule}]",
    })
    dry = k8slk("apply", inv, "--dry-run", "--json")
    assert dry.code == 0, dry.why()
    assert ("init", "cp-1", "init") in changing(dry) and fleet.members() == {}
    first = k8slk("apply", inv, "--json")  # nothing disrupts: no --yes needed
    assert first.code == 0, first.why()
    assert first.report["changed"] is True
    assert set(fleet.members()) == {"cp-1", "w-1", "w-2"}
    w1, w2 = fleet.members()["w-1"], fleet.members()["w-2"]
    assert w1.labels["zone"] == "a" and w1.annotations[OWNED_LABELS] == "zone"
    assert w2.extra_taints == [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    assert w2.annotations[OWNED_TAINTS] == "dedicated:NoSchedule"
    assert any(s["stage"] == "addons" and s["nodes"] for s in first.report["plan"])
    assert fleet.objects()  # the pod network manifest was applied

    again = k8slk("plan", "apply", inv, "--json")
    assert again.code == 0, again.why()
    assert changing(again) == []
    second = k8slk("apply", inv, "--json")
    assert second.code == 0, second.why()
    assert second.report["changed"] is False
    assert "nothing to do: the cluster already matches" in second.report["messages"]


def test_apply_joins_a_new_node_sets_labels_and_taints_and_never_touches_a_hand_label(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(4, 1)
    inv = inventory(fleet, "apply.yml", drop=("w-3",),
                    extra={"w-1": "labels: {zone: a, tier: web}"})
    assert k8slk("apply", inv).code == 0
    assert set(fleet.members()) == {"cp-1", "w-1", "w-2"}

    def by_hand() -> None:
        w1 = fleet.fleet.cluster.members["w-1"]
        w1.labels["zone"] = "b"  # changed by hand: set back
        w1.labels["team"] = "blue"  # never in the inventory: left alone
    fleet.call(by_hand)

    grown = inventory(fleet, "grown.yml", extra={
        "w-1": "labels: {zone: a}, taints: [{key: spot, effect: PreferNoSchedule}]",
        "w-3": "labels: {zone: c}",
    })
    plan = k8slk("plan", "apply", grown, "--json")
    assert plan.code == 0, plan.why()
    said = " ".join(a["summary"] for s in plan.report["plan"] for n in s["nodes"]
                    for a in n["actions"])
    assert "set label zone=a (was b)" in said and "remove label tier" in said
    assert "add taint spot:PreferNoSchedule" in said
    assert ("join-workers", "w-3", "join") in changing(plan)

    run = k8slk("apply", grown, "--json")
    assert run.code == 0, run.why()
    members = fleet.members()
    assert set(members) == {"cp-1", "w-1", "w-2", "w-3"}
    w1 = members["w-1"]
    assert (w1.labels.get("zone"), w1.labels.get("team"), "tier" in w1.labels) == (
        "a", "blue", False)
    assert w1.extra_taints == [{"key": "spot", "effect": "PreferNoSchedule"}]
    assert members["w-3"].labels["zone"] == "c"
    assert members["w-3"].annotations[OWNED_LABELS] == "zone"
    assert k8slk("apply", grown, "--json").report["changed"] is False


def test_a_node_marked_remove_is_asked_about_then_drained_reset_and_deleted(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("apply", fleet.inventory).code == 0
    marked = inventory(fleet, "marked.yml", extra={"w-2": "remove: true"})
    refused = k8slk("apply", marked)  # no terminal, no --yes: nothing touched
    assert refused.code == 2, refused.why()
    assert "needs --yes" in refused.stderr
    assert "w-2" in fleet.members()

    run = k8slk("apply", marked, "--yes", "--json")
    assert run.code == 0, run.why()
    steps = planned(run)
    assert ("w-2", "drain") in steps["remove-drain"]
    assert ("w-2", "kubeadm-reset") in steps["remove-reset"]
    assert set(fleet.members()) == {"cp-1", "w-1"}
    second = k8slk("apply", marked, "--json")
    assert second.code == 0 and second.report["changed"] is False, second.why()


def test_at_a_terminal_the_plan_is_printed_then_a_disruption_is_asked_about(
    fleet: InProcessFleet, k8slk: K8slk, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert k8slk("apply", fleet.inventory).code == 0
    monkeypatch.setattr(cliutil, "stdin_is_terminal", lambda: True)
    marked = inventory(fleet, "marked.yml", extra={"w-1": "remove: true"})
    prom = tmp_path / "apply.prom"
    no = k8slk("apply", marked, "--metrics-file", prom, input="n\n")
    assert no.code == 2, no.why()
    question = "Apply to fleet: drain, reset and delete w-1? Workloads on them will move"
    assert no.stdout.index("stage remove-drain:") < no.stdout.index(question)
    assert "w-1: kubectl drain w-1 (on cp-1)" in no.stdout
    assert "apply was not confirmed; nothing was touched" in no.stderr
    assert 'k8slk_ops_run_exit_code{command="apply",cluster="fleet"} 2' in prom.read_text()
    assert "w-1" in fleet.members() and not fleet.members()["w-1"].unschedulable

    yes = k8slk("apply", marked, input="y\n")  # the lock the refused run held is free again
    assert yes.code == 0, yes.why()
    assert set(fleet.members()) == {"cp-1", "w-2"}


def test_a_member_the_inventory_does_not_name_is_reported_and_left_alone(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("apply", fleet.inventory).code == 0
    shorter = inventory(fleet, "shorter.yml", drop=("w-2",))
    run = k8slk("apply", shorter, "--json")
    assert run.code == 0, run.why()
    assert run.report["changed"] is False
    [members] = [s for s in run.report["plan"] if s["stage"] == "members"]
    [action] = members["nodes"][0]["actions"]
    assert action["member"] == "w-2" and action["action"] == "none"
    assert "not in the inventory" in action["summary"]
    assert "w-2" in fleet.members()


def test_a_raised_version_is_planned_as_a_roll_and_rolled_as_upgrade_does(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(2, 1, kubernetes_version=OLD)
    assert k8slk("apply", fleet.inventory).code == 0
    fleet.serve_image(NEW)
    raised = inventory(fleet, "raised.yml", version=NEW)
    text = raised.read_text().replace("  hostKeyPolicy: strict\n",
                                      "  hostKeyPolicy: strict\n  hostKeyAfterReboot: accept\n")
    raised.write_text(text)
    plan = k8slk("plan", "apply", raised, "--json")
    assert plan.code == 0, plan.why()
    steps = planned(plan)
    assert ("cp-1", "reboot") in steps["roll-primary"]
    assert ("w-1", "reboot") in steps["roll-workers"]
    assert {m.kubelet_version for m in fleet.members().values()} == {OLD}

    run = k8slk("apply", raised, "--yes", "--json")
    assert run.code == 0, run.why()
    assert {(m.kubelet_version, m.unschedulable) for m in fleet.members().values()} == {
        (NEW, False)}
    second = k8slk("apply", raised, "--json")
    assert second.code == 0 and second.report["changed"] is False, second.why()


def test_control_planes_marked_remove_pass_the_quorum_guard_or_stay(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(4, 3)
    assert k8slk("apply", fleet.inventory).code == 0
    assert fleet.etcd_members() == {"cp-1", "cp-2", "cp-3"}
    two = inventory(fleet, "two.yml", extra={"cp-2": "remove: true", "cp-3": "remove: true"})
    refused = k8slk("apply", two, "--yes", "--json")
    assert refused.code == 1, refused.why()
    said = refused.stdout + refused.stderr
    assert "removing 2 of 3 control planes at once would break etcd quorum" in said
    assert f"Run `k8slk-ops remove-node {two} cp-2 cp-3 --force --force`" in said
    assert set(fleet.members()) == {"cp-1", "cp-2", "cp-3", "w-1"}
    assert fleet.etcd_members() == {"cp-1", "cp-2", "cp-3"}

    one = inventory(fleet, "one.yml", extra={"cp-3": "remove: true"})
    run = k8slk("apply", one, "--yes", "--json")
    assert run.code == 0, run.why()
    assert set(fleet.members()) == {"cp-1", "cp-2", "w-1"}
    assert fleet.etcd_members() == {"cp-1", "cp-2"}
    assert k8slk("apply", one, "--json").report["changed"] is False
