"""apply --prune as data: the inventory's addons and the cluster's addon record in, the plan's
actions out (pure, no nodes); the deletes a prune makes, in order."""

from __future__ import annotations

from pathlib import Path

from k8slk_ops.cli.commands.apply import apply_playbook, disruption_question, due_text
from k8slk_ops.cluster.addonrecord import RecordedObject, RecordEntry
from k8slk_ops.engine.context import ClusterFacts, PlanContext
from k8slk_ops.engine.options import SharedOptions
from k8slk_ops.engine.plan import Plan, make_plan
from k8slk_ops.inventory import load_inventory
from k8slk_ops.node.facts import parse_facts
from k8slk_ops.steps.addonprune import delete_argv, delete_batches
from tests.unit.test_apply_plan import facts, inventory_text, member

NET = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: net, namespace: kube-system}\n"
DEMO = (RecordedObject("v1", "Namespace", "", "demo"),
        RecordedObject("v1", "ConfigMap", "demo", "settings"),
        RecordedObject("apps/v1", "Deployment", "demo", "web"),
        RecordedObject("rbac.authorization.k8s.io/v1", "ClusterRole", "", "demo-reader"))
NODES = ("cp-1", "cp-2", "cp-3", "w-1", "w-2")


def planned(tmp_path: Path, record: dict[str, RecordEntry], *, prune: bool,
            kube_proxy: bool = True) -> Plan:
    """apply's plan for an inventory listing ``cni/net.yaml``, on a cluster that matches it
    but for its addon record."""
    (tmp_path / "cni").mkdir(exist_ok=True)
    (tmp_path / "cni" / "net.yaml").write_text(NET)
    path = tmp_path / "inv.yml"
    path.write_text(inventory_text(None).replace(
        "cluster:\n", "cluster:\n  addons: [cni/net.yaml]\n"
        + ("" if kube_proxy else "  kubeProxy: false\n")))
    playbook, options = apply_playbook(path, SharedOptions(), "apply", prune=prune)
    inv = load_inventory(path)
    members = {n: member(n) for n in NODES}
    cluster = ClusterFacts(primary="cp-1", initialised=True, members=members, addons=record)
    ctx = PlanContext(inventory=inv, options=options,
                      facts={n: parse_facts(facts("v1.30.5", member=True)) for n in NODES},
                      unreachable={}, cluster=cluster)
    return make_plan(playbook, ctx)


def net_entry(tmp_path: Path) -> RecordEntry:
    """The record's entry of cni/net.yaml as apply writes it."""
    planned(tmp_path, {}, prune=False)  # writes the files
    [addon] = load_inventory(tmp_path / "inv.yml").addon_manifests
    return RecordEntry.of(addon)


def said(plan: Plan, stage: str = "addons-prune") -> list[tuple[str, str]]:
    """(step, summary) of every planned action in ``stage``."""
    return [(st.call.name, a.summary) for s in plan.stages if s.name == stage
            for n in s.nodes for st in n.steps for a in st.actions]


def test_an_addon_taken_out_is_left_and_said_without_prune(tmp_path: Path) -> None:
    record = {"cni__net.yaml": net_entry(tmp_path), "demo.yaml": RecordEntry("d" * 64, DEMO)}
    plan = planned(tmp_path, record, prune=False)
    assert said(plan) == [("unlisted-addons", (
        "demo.yaml: not in cluster.addons, left in the cluster (4 object(s)); "
        f"`k8slk-ops apply {tmp_path / 'inv.yml'} --prune` deletes them"))]
    assert not plan.changes and plan.disruptions() == []
    assert disruption_question(plan, "lab") is None
    assert due_text(plan).splitlines()[-1] == "nothing to change"


def test_prune_deletes_the_objects_last_first_and_is_asked_about(tmp_path: Path) -> None:
    record = {"cni__net.yaml": net_entry(tmp_path), "demo.yaml": RecordEntry("d" * 64, DEMO)}
    plan = planned(tmp_path, record, prune=True)
    [(step, summary)] = said(plan)
    assert step == "prune-addons"
    assert summary == ("delete the 4 object(s) of demo.yaml, last first, then its record entry "
                       "(ClusterRole demo-reader, Deployment demo/web, ConfigMap demo/settings, "
                       "Namespace demo)")
    [action] = [a for s in plan.stages for n in s.nodes for st in n.steps for a in st.actions
                if s.name == "addons-prune"]
    assert action.detail == {"addon": "demo.yaml", "delete": [
        "ClusterRole demo-reader", "Deployment demo/web", "ConfigMap demo/settings",
        "Namespace demo"]}
    assert plan.changes
    assert plan.disruptions() == [("cp-1", "addons-prune")]
    assert disruption_question(plan, "lab") == (
        "Apply to lab: delete the objects of demo.yaml (not in cluster.addons)? What they run "
        "will stop")
    assert "stage addons-prune:\n  cp-1: delete the 4 object(s) of demo.yaml" in due_text(plan)


def test_after_the_prune_the_plan_is_empty(tmp_path: Path) -> None:
    plan = planned(tmp_path, {"cni__net.yaml": net_entry(tmp_path)}, prune=True)
    assert said(plan) == [] and said(plan, "addons") == []
    assert not plan.changes
    assert "no addon left out of the inventory" in plan.to_text()


def test_an_entry_of_old_is_never_pruned_and_the_manual_commands_are_said(
    tmp_path: Path
) -> None:
    record = {"cni__net.yaml": net_entry(tmp_path), "old.yaml": RecordEntry("o" * 64)}
    for prune in (False, True):
        plan = planned(tmp_path, record, prune=prune)
        [(step, summary)] = said(plan)
        assert step == "unlisted-addons"
        assert summary.startswith("old.yaml: not in cluster.addons, left in the cluster; its "
                                  "record entry was written before the record kept objects, "
                                  "so --prune cannot delete it")
        assert "`kubectl delete --ignore-not-found -f FILE`" in summary
        assert summary.endswith(
            "`kubectl -n kube-system patch configmap k8slk-ops-addons --type json -p "
            "'[{\"op\": \"remove\", \"path\": \"/data/old.yaml\"}]'`")
        assert not plan.changes and plan.disruptions() == []


def test_kube_proxy_removed_is_never_pruned(tmp_path: Path) -> None:
    record = {"cni__net.yaml": net_entry(tmp_path), "kube-proxy-removed": RecordEntry("true")}
    plan = planned(tmp_path, record, prune=True, kube_proxy=False)
    assert said(plan) == [] and not plan.changes


def test_an_entry_of_old_still_listed_gains_its_objects_without_an_apply(tmp_path: Path) -> None:
    entry = net_entry(tmp_path)
    plan = planned(tmp_path, {"cni__net.yaml": RecordEntry(entry.sha256)}, prune=False)
    assert said(plan, "addons") == [("apply-addons", (
        "record the objects of cni/net.yaml in kube-system/k8slk-ops-addons (applied before "
        "the record kept them)"))]
    assert entry.objects == (RecordedObject("apps/v1", "DaemonSet", "kube-system", "net"),)


def test_the_deletes_are_last_first_one_call_per_run_of_a_namespace() -> None:
    batches = delete_batches(DEMO)
    assert [(ns, [o.name for o in objs]) for ns, objs in batches] == [
        ("", ["demo-reader"]), ("demo", ["web", "settings"]), ("", ["demo"])]
    assert [delete_argv(ns, objs) for ns, objs in batches] == [
        ["delete", "--ignore-not-found", "clusterrole.rbac.authorization.k8s.io/demo-reader"],
        ["delete", "--ignore-not-found", "-n", "demo", "deployment.apps/web",
         "configmap/settings"],
        ["delete", "--ignore-not-found", "namespace/demo"],
    ]
