"""apply, end to end on one lab, checked with this machine's real kubectl: the cluster made from
fresh nodes (addons, labels) and a second apply with nothing to do; a label changed by hand set
back while one the inventory never set stays; a node added with a label while another gets a
taint and loses a label; a node marked ``remove: true`` drained, reset and deleted; a raised
``kubernetesVersion`` planned as a roll and rolled as ``upgrade`` rolls.

One lab (three nodes, bootstrapped at v1.30) for the whole story: each step starts from the
cluster the one before left, as an operator's inventory grows and changes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import CliRun, cli, secrets_of
from tests.lab.fixture import require_doubles
from tests.lab.image import real_kubectls

pytestmark = pytest.mark.lab

OLD, NEW = "v1.30.5", "v1.31.3"
OWNED_LABELS = "k8slk-ops.io/owned-labels"
OWNED_TAINTS = "k8slk-ops.io/owned-taints"


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    found = real_kubectls()
    if not found:
        pytest.skip("no real kubectl on this host")
    return subprocess.run([found[max(found)], "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def node_objects(kubeconfig: Path) -> dict[str, dict[str, Any]]:
    out = kubectl(kubeconfig, "get", "nodes", "-o", "json")
    assert out.returncode == 0, out.stderr
    return {i["metadata"]["name"]: i for i in json.loads(out.stdout)["items"]}


def labels(node: dict[str, Any]) -> dict[str, str]:
    return dict(node["metadata"].get("labels") or {})


def taints(node: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((t["key"], t.get("value", ""), t["effect"])
                  for t in node["spec"].get("taints") or [])


def write(lab: Any, name: str, *, nodes: dict[str, dict[str, Any]],
          version: str = OLD) -> Path:
    """The lab's inventory with only ``nodes`` (name -> extra fields), as NAME beside it."""
    doc = yaml.safe_load(lab.inventory_path.read_text())
    doc["cluster"]["kubernetesVersion"] = version
    doc["ssh"]["hostKeyAfterReboot"] = "accept"
    doc["nodes"] = [{**n, **nodes[n["name"]]} for n in doc["nodes"] if n["name"] in nodes]
    path = lab.inventory_path.parent / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def apply(inventory: Path, tmp_path: Path, name: str, *args: str) -> CliRun:
    return cli("apply", str(inventory), "--json", *args, log_file=tmp_path / f"{name}.log",
               timeout=900)


def drift(inventory: Path, tmp_path: Path, name: str) -> CliRun:
    return cli("drift", str(inventory), "--json", log_file=tmp_path / f"{name}.log")


def nothing_to_do(inventory: Path, tmp_path: Path, name: str) -> None:
    again = apply(inventory, tmp_path, name)  # no --yes: nothing to ask about
    assert again.code == 0, again.stdout + again.stderr
    assert again.report["changed"] is False
    assert "nothing to do: the cluster already matches" in again.report["messages"]


def test_apply_makes_grows_labels_shrinks_and_rolls_the_cluster(
    lab_factory: Any, tmp_path: Path
) -> None:
    require_doubles()
    lab = lab_factory(nodes=3, control_planes=1, kubernetes_version=OLD)
    kubeconfig = lab.inventory_path.parent / "lab.kubeconfig"  # written by the first apply

    # Fresh nodes: the cluster, its addons and labels; w-2 is not in the inventory yet.
    first_inv = write(lab, "first.yml", nodes={
        "cp-1": {}, "w-1": {"labels": {"zone": "a", "tier": "web"}}})
    first = apply(first_inv, tmp_path, "first", "--yes")
    assert first.code == 0, first.stdout + first.stderr
    assert first.report["changed"] is True
    found = node_objects(kubeconfig)
    assert set(found) == {"cp-1", "w-1"}
    assert {"zone": "a", "tier": "web"}.items() <= labels(found["w-1"]).items()
    assert found["w-1"]["metadata"]["annotations"][OWNED_LABELS] == "tier,zone"
    ds = kubectl(kubeconfig, "get", "ds", "-n", "kube-system", "lab-cni")
    assert ds.returncode == 0, ds.stderr  # the inventory's addon
    nothing_to_do(first_inv, tmp_path, "first-again")
    clean = drift(first_inv, tmp_path, "drift-first")
    assert clean.code == 0, clean.stdout + clean.stderr

    # By hand: a label the inventory sets, changed; one it never set, added.
    for change in (["label", "node", "w-1", "zone=b", "--overwrite"],
                   ["label", "node", "w-1", "team=blue"]):
        out = kubectl(kubeconfig, *change)
        assert out.returncode == 0, out.stderr
    drifted = drift(first_inv, tmp_path, "drift-by-hand")
    assert drifted.code == 1, drifted.stdout + drifted.stderr
    items = drifted.report["data"]["drift"]["items"]
    assert [(i["kind"], i["where"], i["what"], i["expected"], i["found"]) for i in items] == [
        ("labels", "w-1", "label zone", "a", "b")]  # team=blue was never the inventory's
    assert items[0]["fix"]["command"] == f"k8slk-ops apply {first_inv}"

    # w-2 added with a label; w-1 gets a taint and loses its tier label; zone set back.
    grown_inv = write(lab, "grown.yml", nodes={
        "cp-1": {},
        "w-1": {"labels": {"zone": "a"},
                "taints": [{"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}]},
        "w-2": {"labels": {"zone": "c"}},
    })
    grown = apply(grown_inv, tmp_path, "grown", "--yes")
    assert grown.code == 0, grown.stdout + grown.stderr
    found = node_objects(kubeconfig)
    assert set(found) == {"cp-1", "w-1", "w-2"}
    w1 = labels(found["w-1"])
    assert (w1.get("zone"), w1.get("team"), "tier" in w1) == ("a", "blue", False)
    assert taints(found["w-1"]) == [("spot", "yes", "PreferNoSchedule")]
    assert found["w-1"]["metadata"]["annotations"][OWNED_TAINTS] == "spot:PreferNoSchedule"
    assert labels(found["w-2"])["zone"] == "c"
    assert taints(found["cp-1"]) == [("node-role.kubernetes.io/control-plane", "", "NoSchedule")]
    nothing_to_do(grown_inv, tmp_path, "grown-again")
    assert drift(grown_inv, tmp_path, "drift-grown").code == 0

    # w-1 marked remove: asked about (no terminal, no --yes: refused), then removed.
    marked_inv = write(lab, "marked.yml", nodes={
        "cp-1": {}, "w-1": {"remove": True}, "w-2": {"labels": {"zone": "c"}}})
    refused = apply(marked_inv, tmp_path, "refused")
    assert refused.code == 2
    assert "needs --yes" in refused.stderr
    assert "w-1" in node_objects(kubeconfig)
    marked = apply(marked_inv, tmp_path, "marked", "--yes")
    assert marked.code == 0, marked.stdout + marked.stderr
    assert set(node_objects(kubeconfig)) == {"cp-1", "w-2"}
    assert not lab.exists("w-1", "/var/node/etc/kubernetes/kubelet.conf")  # reset
    nothing_to_do(marked_inv, tmp_path, "marked-again")

    # A raised version: the plan shows the roll and changes nothing; apply rolls.
    lab.set_image(NEW)
    raised_inv = write(lab, "raised.yml", nodes={
        "cp-1": {}, "w-1": {"remove": True}, "w-2": {"labels": {"zone": "c"}}}, version=NEW)
    plan = cli("plan", "apply", str(raised_inv), "--json", log_file=tmp_path / "plan.log")
    assert plan.code == 0, plan.stdout + plan.stderr
    rolled = {s["stage"]: sorted({n["node"] for n in s["nodes"]})
              for s in plan.report["plan"] if s["stage"].startswith("roll-") and s["nodes"]}
    assert rolled["roll-primary"] == ["cp-1"] and rolled["roll-workers"] == ["w-2"]
    assert {n["status"]["nodeInfo"]["kubeletVersion"]
            for n in node_objects(kubeconfig).values()} == {OLD}
    roll = apply(raised_inv, tmp_path, "roll", "--yes")
    assert roll.code == 0, roll.stdout + roll.stderr
    found = node_objects(kubeconfig)
    assert {n: (o["status"]["nodeInfo"]["kubeletVersion"], bool(o["spec"].get("unschedulable")))
            for n, o in found.items()} == {"cp-1": (NEW, False), "w-2": (NEW, False)}
    assert labels(found["w-2"])["zone"] == "c"
    nothing_to_do(raised_inv, tmp_path, "roll-again")

    runs = (first, grown, refused, marked, plan, roll)
    text = "".join(r.stdout + r.stderr + r.log for r in runs)
    for secret in secrets_of(lab):
        assert secret not in text
