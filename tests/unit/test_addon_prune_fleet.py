"""apply --prune in-process against the fleet: an addon taken out of ``cluster.addons`` is said
and left, then deleted with ``--prune`` (asked about first), its record entry last; a prune
that stopped halfway is run again; an entry of old is never pruned.

Only the CLI's surface is used (flags, exit code, ``--json`` report) and the fleet's state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fleet import layout
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import CliRun, K8slk

RECORD = ("ConfigMap", "kube-system", "k8slk-ops-addons")
DEMO = "demo.yaml"
DEMO_TEXT = """\
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo}
data: {greeting: hello}
"""
DEMO_OBJECTS = {("Namespace", "", "demo"), ("ConfigMap", "demo", "settings")}


def with_demo(fleet: InProcessFleet) -> tuple[Path, Path]:
    """The fleet's inventory with demo.yaml beside its pod network, and one without it."""
    (fleet.directory / DEMO).write_text(DEMO_TEXT)
    text = Path(fleet.inventory).read_text()
    both = fleet.directory / "both.yml"
    both.write_text(text.replace(f"addons: [{layout.POD_NETWORK}]",
                                 f"addons: [{layout.POD_NETWORK}, {DEMO}]"))
    return both, Path(fleet.inventory)


def record(fleet: InProcessFleet) -> dict[str, str]:
    return dict(fleet.objects()[RECORD]["data"])


def set_record(fleet: InProcessFleet, key: str, value: str) -> None:
    """An entry of the record as another hand (or another version of the tool) left it."""
    def change() -> None:
        fleet.fleet.cluster.objects[RECORD]["data"][key] = value
    fleet.call(change)


def stage_actions(run: CliRun, stage: str) -> list[dict[str, Any]]:
    return [a for s in run.report["plan"] if s["stage"] == stage
            for n in s["nodes"] for a in n["actions"]]


def test_an_addon_taken_out_is_said_then_pruned_and_a_second_prune_changes_nothing(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    both, net_only = with_demo(fleet)
    first = k8slk("apply", both, "--json")
    assert first.code == 0, first.why()
    assert set(fleet.objects()) >= DEMO_OBJECTS
    entry = json.loads(record(fleet)["demo.yaml"])
    assert entry["objects"] == [["v1", "Namespace", "", "demo"],
                                ["v1", "ConfigMap", "demo", "settings"]]

    drifted = k8slk("drift", net_only, "--json")
    assert drifted.code == 1, drifted.why()
    [item] = drifted.report["data"]["drift"]["items"]
    assert (item["kind"], item["what"]) == ("addons", "manifest demo.yaml")
    assert item["fix"]["command"] == f"k8slk-ops apply {net_only} --prune"

    left = k8slk("apply", net_only, "--json")  # nothing asked: nothing is deleted
    assert left.code == 0, left.why()
    assert left.report["changed"] is False
    [said] = stage_actions(left, "addons-prune")
    assert said["step"] == "unlisted-addons" and said["addon"] == "demo.yaml"
    assert said["summary"] == ("demo.yaml: not in cluster.addons, left in the cluster (2 "
                               f"object(s)); `k8slk-ops apply {net_only} --prune` deletes them")
    assert said["summary"] in left.log
    assert set(fleet.objects()) >= DEMO_OBJECTS and "demo.yaml" in record(fleet)

    refused = k8slk("apply", net_only, "--prune")  # no terminal, no --yes: nothing touched
    assert refused.code == 2, refused.why()
    assert "needs --yes" in refused.stderr
    assert set(fleet.objects()) >= DEMO_OBJECTS and "demo.yaml" in record(fleet)

    shown = k8slk("plan", "apply", net_only, "--prune", "--json")
    assert shown.code == 0, shown.why()
    assert [a["step"] for a in stage_actions(shown, "addons-prune")] == ["prune-addons"]
    other = k8slk("plan", "bootstrap", net_only, "--prune")
    assert other.code == 2 and "--prune is apply's" in other.stderr, other.why()

    pruned = k8slk("apply", net_only, "--prune", "--yes", "--json")
    assert pruned.code == 0, pruned.why()
    assert pruned.report["changed"] is True
    [action] = stage_actions(pruned, "addons-prune")
    assert action["step"] == "prune-addons"
    assert action["delete"] == ["ConfigMap demo/settings", "Namespace demo"]
    assert not DEMO_OBJECTS & set(fleet.objects())
    assert set(record(fleet)) == {layout.POD_NETWORK}
    assert ("DaemonSet", "kube-system", "lab-cni") in fleet.objects()  # nothing else touched
    assert "pruned demo.yaml (2 object(s) deleted)" in pruned.log

    clean = k8slk("drift", net_only, "--json")
    assert clean.code == 0, clean.why()
    again = k8slk("apply", net_only, "--prune", "--json")  # nothing to ask about
    assert again.code == 0, again.why()
    assert again.report["changed"] is False
    assert stage_actions(again, "addons-prune") == []


def test_a_prune_that_stopped_halfway_keeps_the_entry_and_is_run_again(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    both, net_only = with_demo(fleet)
    assert k8slk("apply", both).code == 0
    kept = record(fleet)["demo.yaml"]
    # A type the server does not serve: kubectl refuses that batch, after the later objects
    # (deleted first) are gone; the entry stays.
    broken = json.loads(kept)
    broken["objects"].append(["example.com/v1", "Widget", "", "w"])
    set_record(fleet, "demo.yaml", json.dumps(broken))
    failed = k8slk("apply", net_only, "--prune", "--yes", "--json")
    assert failed.code == 1, failed.why()
    cp = failed.nodes["cp-1"]
    assert cp["phase"] == "addons"
    assert cp["message"].startswith("kubectl delete of demo.yaml's objects failed (exit 1): "
                                    "error: the server doesn't have a resource type")
    assert "its record entry is kept: run again once fixed" in cp["message"]
    assert "demo.yaml" in record(fleet)
    assert set(fleet.objects()) >= DEMO_OBJECTS  # the widget goes first: nothing else went

    # As a prune that died after its first delete leaves it: the ConfigMap gone, the entry kept.
    set_record(fleet, "demo.yaml", kept)
    fleet.call(lambda: fleet.fleet.cluster.objects.pop(("ConfigMap", "demo", "settings")))
    again = k8slk("apply", net_only, "--prune", "--yes", "--json")
    assert again.code == 0, again.why()
    assert not DEMO_OBJECTS & set(fleet.objects())
    assert set(record(fleet)) == {layout.POD_NETWORK}


def test_an_entry_of_old_is_said_with_the_manual_commands_and_never_pruned(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    both, net_only = with_demo(fleet)
    assert k8slk("apply", both).code == 0
    sha = json.loads(record(fleet)["demo.yaml"])["sha256"]
    set_record(fleet, "demo.yaml", sha)  # as a version that kept no objects wrote it
    set_record(fleet, layout.POD_NETWORK,
               json.loads(record(fleet)[layout.POD_NETWORK])["sha256"])
    run = k8slk("apply", net_only, "--prune", "--yes", "--json")
    assert run.code == 0, run.why()
    [said] = stage_actions(run, "addons-prune")
    assert said["step"] == "unlisted-addons"
    assert "--prune cannot delete it" in said["summary"]
    assert "kubectl -n kube-system patch configmap k8slk-ops-addons" in said["summary"]
    assert set(fleet.objects()) >= DEMO_OBJECTS and record(fleet)["demo.yaml"] == sha
    # The entry of old still listed gained its objects, with no apply of its manifest.
    assert [(a["step"], a.get("manifest"), a.get("record"))
            for a in stage_actions(run, "addons")] == [
        ("apply-addons", layout.POD_NETWORK, "objects")]
    net = json.loads(record(fleet)[layout.POD_NETWORK])
    assert ["apps/v1", "DaemonSet", "kube-system", "lab-cni"] in net["objects"]


def test_a_manifest_changed_and_one_pruned_in_one_run_both_reach_the_record(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    both, net_only = with_demo(fleet)
    assert k8slk("apply", both).code == 0
    before = json.loads(record(fleet)[layout.POD_NETWORK])["sha256"]
    manifest = fleet.directory / layout.POD_NETWORK
    manifest.write_text(manifest.read_text() + "\n---\napiVersion: v1\nkind: ConfigMap\n"
                        "metadata: {name: net-extra, namespace: kube-system}\n")
    run = k8slk("apply", net_only, "--prune", "--yes", "--json")
    assert run.code == 0, run.why()
    assert [a["step"] for a in stage_actions(run, "addons")] == ["apply-addons"]
    assert [a["step"] for a in stage_actions(run, "addons-prune")] == ["prune-addons"]
    after = json.loads(record(fleet)[layout.POD_NETWORK])
    assert set(record(fleet)) == {layout.POD_NETWORK}
    assert after["sha256"] != before
    assert ["v1", "ConfigMap", "kube-system", "net-extra"] in after["objects"]
    again = k8slk("apply", net_only, "--prune", "--json")
    assert again.code == 0 and again.report["changed"] is False, again.why()
