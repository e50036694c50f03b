"""apply --prune, end to end on one lab, checked with this machine's real kubectl: a cluster made
with two addons (the lab's CNI manifest and a namespace with a ConfigMap); the second taken out
of the inventory is named by drift, left by ``apply --yes`` (which says so), deleted by ``apply
--yes --prune``; then drift finds nothing and a second ``apply --prune`` changes nothing.

One lab of one control plane: an addon's objects need no worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import CliRun
from tests.e2e.test_lab_apply import apply, drift, kubectl
from tests.lab.fixture import require_doubles

pytestmark = pytest.mark.lab

DEMO = "demo.yaml"
DEMO_TEXT = """\
apiVersion: v1
kind: Namespace
metadata: {name: prune-demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: prune-demo}
data: {greeting: hello}
"""


def write(lab: Any, name: str, *, demo: bool) -> Path:
    """The lab's inventory, its addons with or without demo.yaml, as NAME beside it."""
    doc = yaml.safe_load(lab.inventory_path.read_text())
    addons = [a for a in doc["cluster"]["addons"] if a != DEMO]
    doc["cluster"]["addons"] = [*addons, DEMO] if demo else addons
    path = lab.inventory_path.parent / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def prune_stage(run: CliRun) -> list[dict[str, Any]]:
    return [a for s in run.report["plan"] if s["stage"] == "addons-prune"
            for n in s["nodes"] for a in n["actions"]]


def test_an_addon_taken_out_is_named_left_then_pruned(lab_factory: Any, tmp_path: Path) -> None:
    require_doubles()
    lab = lab_factory(nodes=1, control_planes=1)
    kubeconfig = lab.inventory_path.parent / "lab.kubeconfig"  # written by the first apply
    (lab.inventory_path.parent / DEMO).write_text(DEMO_TEXT)
    both = write(lab, "both.yml", demo=True)
    net_only = write(lab, "net-only.yml", demo=False)

    first = apply(both, tmp_path, "first", "--yes")
    assert first.code == 0, first.stdout + first.stderr
    for args in (["get", "namespace", "prune-demo"],
                 ["get", "configmap", "-n", "prune-demo", "settings"],
                 ["get", "daemonset", "-n", "kube-system", "lab-cni"]):
        out = kubectl(kubeconfig, *args)
        assert out.returncode == 0, out.stderr

    drifted = drift(net_only, tmp_path, "drift-out")
    assert drifted.code == 1, drifted.stdout + drifted.stderr
    [item] = drifted.report["data"]["drift"]["items"]
    assert (item["kind"], item["what"], item["expected"]) == (
        "addons", "manifest demo.yaml", "(not in cluster.addons)")
    assert item["fix"]["command"] == f"k8slk-ops apply {net_only} --prune"

    left = apply(net_only, tmp_path, "left", "--yes")
    assert left.code == 0, left.stdout + left.stderr
    assert left.report["changed"] is False
    [said] = prune_stage(left)
    assert said["step"] == "unlisted-addons"
    assert said["summary"] == ("demo.yaml: not in cluster.addons, left in the cluster (2 "
                               f"object(s)); `k8slk-ops apply {net_only} --prune` deletes them")
    assert said["summary"] in left.log  # said while it runs, not only in the plan
    out = kubectl(kubeconfig, "get", "configmap", "-n", "prune-demo", "settings")
    assert out.returncode == 0, out.stderr

    pruned = apply(net_only, tmp_path, "pruned", "--yes", "--prune")
    assert pruned.code == 0, pruned.stdout + pruned.stderr
    assert pruned.report["changed"] is True
    [action] = prune_stage(pruned)
    assert action["step"] == "prune-addons"
    assert action["delete"] == ["ConfigMap prune-demo/settings", "Namespace prune-demo"]
    for args in (["get", "namespace", "prune-demo"],
                 ["get", "configmap", "-n", "prune-demo", "settings"]):
        gone = kubectl(kubeconfig, *args)
        assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stdout + gone.stderr
    cni = kubectl(kubeconfig, "get", "daemonset", "-n", "kube-system", "lab-cni")
    assert cni.returncode == 0, cni.stderr  # the addon still listed is untouched
    record = kubectl(kubeconfig, "get", "configmap", "-n", "kube-system", "k8slk-ops-addons",
                     "-o", "yaml")
    assert record.returncode == 0 and "demo.yaml" not in record.stdout, record.stdout

    clean = drift(net_only, tmp_path, "drift-clean")
    assert clean.code == 0, clean.stdout + clean.stderr
    again = apply(net_only, tmp_path, "again", "--prune")  # no --yes: nothing to ask about
    assert again.code == 0, again.stdout + again.stderr
    assert again.report["changed"] is False
    assert prune_stage(again) == []
