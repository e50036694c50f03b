"""Pod networking after init, end to end on a strict lab (NotReady until a CNI config exists).

One module-scoped lab whose inventory starts without addons: bootstrap inits and joins, then
fails the ready stage with kubelet's reason and a hint; status shows the reason. The tests then
run in file order on that cluster: the lab's CNI manifest added as cluster.addons makes every
node Ready; a second run applies nothing; a changed manifest is applied again. Two more labs
check ``kubeProxy: false`` on a v1beta4 and a v1beta2 release.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli, kubectl_nodes
from tests.lab import inventory as lab_inventory

pytestmark = pytest.mark.lab

BOOTSTRAP = Path(__file__).resolve().parents[2] / "playbooks" / "bootstrap.yml"


def add_cluster_keys(path: Path, *lines: str) -> None:
    text = path.read_text()
    path.write_text(text.replace("cluster:\n", "cluster:\n" + "".join(
        f"  {line}\n" for line in lines), 1))


def daemonsets(lab: Any) -> set[str]:
    out = lab.kubelet_exec("cp-1", ["kubectl", "get", "ds", "-n", "kube-system", "-o", "json"])
    assert out.returncode == 0, out.stderr
    return {i["metadata"]["name"] for i in json.loads(out.stdout)["items"]}


@pytest.fixture(scope="module")
def cluster(lab_factory_module: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    lab = lab_factory_module(nodes=3, control_planes=1, pod_network_addon=False)
    work = tmp_path_factory.mktemp("network")
    quick = work / "bootstrap-quick.yml"  # the ready stage gives up after 20 s, not 5 m
    quick.write_text(BOOTSTRAP.read_text().replace("wait-ready: {timeout: 5m}",
                                                   "wait-ready: {timeout: 20s}"))
    plan = cli("plan", "bootstrap", str(lab.inventory_path), log_file=work / "plan.log")
    boot = cli("run", str(quick), str(lab.inventory_path), "--json",
               log_file=work / "boot.log")
    status = cli("status", str(lab.inventory_path), log_file=work / "status.log")
    return {"lab": lab, "work": work, "plan": plan, "boot": boot, "status": status}


def test_the_plan_warns_that_no_pod_network_is_configured(cluster: dict[str, Any]) -> None:
    plan = cluster["plan"]
    assert plan.code == 0, plan.stderr
    assert "WARNING: no cluster.addons in the inventory" in plan.stdout + plan.stderr


def test_without_addons_every_node_fails_ready_with_the_network_reason(
    cluster: dict[str, Any],
) -> None:
    boot = cluster["boot"]
    assert boot.code == 1, boot.stderr
    nodes = {n["name"]: n for n in boot.report["nodes"]}
    assert set(kubectl_nodes(cluster["lab"])) == {"cp-1", "w-1", "w-2"}  # init and joins done
    for name, node in nodes.items():
        assert (node["outcome"], node["phase"]) == ("failed", "ready"), name
        assert "NetworkPluginNotReady" in node["message"], node["message"]
        assert "cni plugin not initialized" in node["message"]
    assert any("no pod network is installed" in m and "cluster.addons" in m
               for m in boot.report["messages"])
    assert "NotReady: KubeletNotReady: container runtime network not ready" in boot.log


def test_status_shows_not_ready_with_the_reason(cluster: dict[str, Any]) -> None:
    status = cluster["status"]
    shown = status.stdout + status.stderr
    assert status.code == 0, shown
    assert shown.count("NotReady") >= 3
    assert "NetworkPluginNotReady" in shown and "no pod network is installed" in shown


def test_the_cni_addon_makes_every_node_ready(cluster: dict[str, Any]) -> None:
    lab, work = cluster["lab"], cluster["work"]
    addons = lab_inventory.copy_cni(lab.inventory_path.parent)
    add_cluster_keys(lab.inventory_path, f"addons: [{', '.join(addons)}]")
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=work / "cni.log")
    assert run.code == 0, run.stderr
    assert run.report["changed"] is True
    assert {n["name"]: n["outcome"] for n in run.report["nodes"]}["cp-1"] == "ok"
    assert all(n["ready"] for n in kubectl_nodes(lab).values())
    assert "lab-cni" in daemonsets(lab)
    assert lab.exists("w-1", "/var/node/etc/cni/net.d/10-lab-cni.conflist")


def test_a_second_run_applies_nothing_and_says_so(cluster: dict[str, Any]) -> None:
    lab, work = cluster["lab"], cluster["work"]
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=work / "again.log")
    assert run.code == 0, run.stderr
    assert run.report["changed"] is False
    assert {n["outcome"] for n in run.report["nodes"]} == {"unchanged"}
    assert "addons applied already (1 manifest(s) unchanged)" in run.log


def test_a_changed_manifest_is_applied_again_as_a_change(cluster: dict[str, Any]) -> None:
    lab, work = cluster["lab"], cluster["work"]
    manifest = lab.inventory_path.parent / "cni" / "lab-cni.yaml"
    manifest.write_text(manifest.read_text().replace("  labels:\n    k8s-app: lab-cni\n",
                                                     "  labels:\n    k8s-app: lab-cni\n"
                                                     "    revision: two\n", 1))
    run = cli("add-node", str(lab.inventory_path), "--json", log_file=work / "changed.log")
    assert run.code == 0, run.stderr
    assert run.report["changed"] is True
    assert "applied cni/lab-cni.yaml" in run.log
    out = lab.kubelet_exec("cp-1", ["kubectl", "get", "configmap", "-n", "kube-system",
                                    "lab-cni-cfg", "-o", "jsonpath={.metadata.labels.revision}"])
    assert out.stdout == "two", out.stderr


@pytest.mark.parametrize("version", ["v1.31.3", "v1.21.14"])
def test_kube_proxy_false_installs_no_kube_proxy(
    lab_factory: Any, tmp_path: Path, version: str
) -> None:
    lab = lab_factory(nodes=2, control_planes=1, kubernetes_version=version)
    add_cluster_keys(lab.inventory_path, "kubeProxy: false")
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert run.code == 0, run.stderr
    assert daemonsets(lab) == {"lab-cni"}
    out = lab.kubelet_exec("cp-1", ["kubectl", "get", "configmap", "-n", "kube-system",
                                    "kube-proxy", "--ignore-not-found"])
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr


REFUSED = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: kube-router
  namespace: kube-system
  annotations:
    install: 'cp x ${TMP}; mv ${TMP} y'
---
apiVersion: extensions/v1beta1
kind: DaemonSet
metadata:
  name: kube-router
  namespace: kube-system
spec: {}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
"""


def test_a_refused_manifest_names_each_object_with_every_line_of_the_real_kubectl(
    lab_factory: Any, tmp_path: Path
) -> None:
    """The nodes' kubectl is the real one: its whole error reaches the report, the table and
    the log file, each object it refused named at its file line; ``${TMP}`` is applied as
    written."""
    lab = lab_factory(nodes=1, control_planes=1)
    (lab.inventory_path.parent / "cni" / "kube-router.yaml").write_text(REFUSED)
    text = lab.inventory_path.read_text()
    lab.inventory_path.write_text(text.replace("addons: [cni/lab-cni.yaml]",
                                               "addons: [cni/lab-cni.yaml, cni/kube-router.yaml]"))
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert run.code == 1, run.stderr
    (cp,) = run.report["nodes"]
    assert (cp["outcome"], cp["phase"]) == ("failed", "addons")
    assert cp["message"].startswith(
        "kubectl apply of cni/kube-router.yaml failed (exit 1): DaemonSet "
        "kube-system/kube-router (cni/kube-router.yaml:9, document 2): no matches for kind "
        '"DaemonSet" in version "extensions/v1beta1"; ensure CRDs are installed first; Widget w '
        "(cni/kube-router.yaml:16, document 3)")
    hint = "ensure CRDs are installed first"
    lines = [
        'resource mapping not found for name: "kube-router" namespace: "kube-system" from '
        '"STDIN": no matches for kind "DaemonSet" in version "extensions/v1beta1"', hint,
        'resource mapping not found for name: "w" namespace: "" from "STDIN": no matches for '
        'kind "Widget" in version "example.com/v1"', hint,
        "failed: DaemonSet kube-system/kube-router at cni/kube-router.yaml:9, document 2",
        "failed: Widget w at cni/kube-router.yaml:16, document 3"]
    assert cp["logTail"] == lines
    shown = "\n".join(f"  | {line}" for line in lines)
    assert shown in run.stderr and shown in run.log
    out = lab.kubelet_exec("cp-1", ["kubectl", "get", "sa", "-n", "kube-system", "kube-router",
                                    "-o", "jsonpath={.metadata.annotations.install}"])
    assert out.stdout == "cp x ${TMP}; mv ${TMP} y", out.stderr
