"""The real kubectl on the host against a lab cluster the tool bootstrapped, nodes as strict as
real ones: NotReady for want of a pod network until a CNI manifest is applied.

One module-scoped lab (strict, the default) whose inventory has no addons: ``bootstrap`` runs in the background and waits in
its ready stage while the nodes report NetworkPluginNotReady; the host's kubectl applies the
lab's CNI manifest with the control plane's admin.conf, the nodes turn Ready and the run
completes. The tests then use the kubeconfig ``bootstrap`` wrote.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import Background, cli, wait_until
from tests.lab.image import real_kubectls

pytestmark = pytest.mark.lab

CNI = Path(__file__).resolve().parents[1] / "lab" / "cni" / "lab-cni.yaml"
NETWORK_MESSAGE = ("container runtime network not ready: NetworkReady=false "
                   "reason:NetworkPluginNotReady message:Network plugin returns error: "
                   "cni plugin not initialized")


def host_kubectl() -> str:
    found = real_kubectls()
    if not found:
        pytest.skip("no real kubectl on this host")
    return found[max(found)]


def run(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([host_kubectl(), "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def ready_conditions(kubeconfig: Path) -> dict[str, dict[str, str]]:
    out = run(kubeconfig, "get", "nodes", "-o", "json")
    if out.returncode != 0:
        return {}
    return {i["metadata"]["name"]: next(c for c in i["status"]["conditions"]
                                        if c["type"] == "Ready")
            for i in json.loads(out.stdout)["items"]}


@pytest.fixture(scope="module")
def cluster(lab_factory_module: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    host_kubectl()
    lab = lab_factory_module(nodes=3, control_planes=1, pod_network_addon=False)
    work = tmp_path_factory.mktemp("kubectl")
    kubeconfig = work / "admin.kubeconfig"
    boot = Background("bootstrap", str(lab.inventory_path), "--json", "--kubeconfig-out",
                      str(kubeconfig), log_file=work / "boot.log", cache=work / "cache")
    admin = work / "cp-1-admin.conf"

    def joined_and_waiting() -> bool:
        if not lab.exists("cp-1", "/var/node/etc/kubernetes/admin.conf"):
            return False
        admin.write_bytes(lab.read("cp-1", "/var/node/etc/kubernetes/admin.conf"))
        conds = ready_conditions(admin)
        return len(conds) == 3

    wait_until(joined_and_waiting, timeout=120, what="all three nodes registered")
    waiting = ready_conditions(admin)
    applied = run(admin, "apply", "-f", str(CNI))
    result = boot.wait(timeout=300)
    return {"lab": lab, "work": work, "kubeconfig": kubeconfig, "boot": result,
            "waiting": waiting, "applied": applied}


def test_nodes_wait_for_a_pod_network_then_bootstrap_completes(cluster: dict[str, Any]) -> None:
    for name, cond in cluster["waiting"].items():
        assert (cond["status"], cond["reason"], cond["message"]) == (
            "False", "KubeletNotReady", NETWORK_MESSAGE), name
    applied = cluster["applied"]
    assert applied.returncode == 0, applied.stderr
    assert "daemonset.apps/lab-cni created" in applied.stdout.splitlines()
    boot = cluster["boot"]
    assert boot.code == 0, boot.stderr + boot.log[-2000:]
    assert {n: c["status"] for n, c in ready_conditions(cluster["kubeconfig"]).items()} == {
        "cp-1": "True", "w-1": "True", "w-2": "True"}
    conf = cluster["lab"].read("w-1", "/var/node/etc/cni/net.d/10-lab-cni.conflist")
    assert json.loads(conf)["name"] == "lab-cni"


def test_get_nodes_wide(cluster: dict[str, Any]) -> None:
    out = run(cluster["kubeconfig"], "get", "nodes", "-o", "wide")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"cp-1", "w-1", "w-2"}
    assert rows["cp-1"][1:3] == ["Ready", "control-plane"]
    assert rows["w-1"][1:3] == ["Ready", "<none>"]
    lab = cluster["lab"]
    assert rows["w-2"][5] == lab.node("w-2").address


def test_get_pods_and_daemonsets(cluster: dict[str, Any]) -> None:
    kubeconfig = cluster["kubeconfig"]

    def all_running() -> bool:
        ds = run(kubeconfig, "get", "ds", "-n", "kube-system")
        rows = {line.split()[0]: line.split()[1:6] for line in ds.stdout.splitlines()[1:]}
        return rows.get("kube-proxy") == ["3"] * 5 and rows.get("lab-cni") == ["3"] * 5

    wait_until(all_running, timeout=60, what="both DaemonSets running on every node")
    pods = run(kubeconfig, "get", "pods", "-A", "-o", "wide")
    assert pods.returncode == 0, pods.stderr
    lines = pods.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAMESPACE", "NAME", "READY", "STATUS"]
    per_node: dict[str, list[str]] = {}
    for line in lines[1:]:
        cells = line.split()
        per_node.setdefault(cells[7], []).append(cells[1].rsplit("-", 1)[0])
    for node in ("cp-1", "w-1", "w-2"):
        assert {"kube-proxy", "lab-cni"} <= set(per_node[node]), per_node
    coredns = [line.split() for line in lines[1:] if line.split()[1].startswith("coredns-")]
    assert len(coredns) == 2


def test_cordon_and_uncordon(cluster: dict[str, Any]) -> None:
    kubeconfig = cluster["kubeconfig"]
    assert run(kubeconfig, "cordon", "w-1").stdout.strip() == "node/w-1 cordoned"
    nodes = run(kubeconfig, "get", "nodes").stdout
    assert "Ready,SchedulingDisabled" in next(n for n in nodes.splitlines() if n.startswith("w-1"))
    assert run(kubeconfig, "uncordon", "w-1").stdout.strip() == "node/w-1 uncordoned"
    again = run(kubeconfig, "uncordon", "w-1")
    assert again.stdout.strip() == "node/w-1 already uncordoned"


def test_remove_node_drains_a_node_with_daemonset_pods(cluster: dict[str, Any]) -> None:
    kubeconfig = cluster["kubeconfig"]
    lab = cluster["lab"]
    removed = cli("remove-node", str(lab.inventory_path), "w-2", "--json",
                  log_file=cluster["work"] / "remove.log")
    assert removed.code == 0, removed.stderr + removed.log[-2000:]
    names = [line.split()[0] for line in run(kubeconfig, "get", "nodes").stdout.splitlines()[1:]]
    assert names == ["cp-1", "w-1"]
    pods = run(kubeconfig, "get", "pods", "-A", "-o", "wide").stdout
    assert " w-2 " not in pods  # its DaemonSet pods went with the node


def test_the_cni_config_survives_a_reboot(cluster: dict[str, Any]) -> None:
    kubeconfig, lab = cluster["kubeconfig"], cluster["lab"]
    lab.fault("w-1", "reboot")
    lab.rewrite_known_hosts()  # a reboot makes a new host key
    # The Node's Ready condition stays True from before the reboot until the kubelet posts
    # again, so it says nothing of the new boot: wait for the new kubelet container to run.
    wait_until(lambda: lab.kubelet_exec("w-1", ["true"]).returncode == 0,
               timeout=90, what="w-1's kubelet container running again after its reboot")
    wait_until(lambda: ready_conditions(kubeconfig).get("w-1", {}).get("status") == "True",
               timeout=90, what="w-1 Ready again after its reboot")
    out = lab.kubelet_exec("w-1", ["ls", "/etc/cni/net.d"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["10-lab-cni.conflist"]

def test_an_old_node_gets_the_nearest_kubectl(lab_factory: Any, tmp_path: Path) -> None:
    """A v1.15 node (kubeadm config v1beta2, no skipPhases) runs the nearest real kubectl; the
    tool's calls go through it against the old API, and kube-proxy is there."""
    lab = lab_factory(nodes=2, control_planes=1, kubernetes_version="v1.15.3")
    kubeconfig = tmp_path / "admin.kubeconfig"
    boot = cli("bootstrap", str(lab.inventory_path), "--json", "--kubeconfig-out",
               str(kubeconfig), log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr + boot.log[-2000:]
    found = real_kubectls()
    nearest = found[min(found, key=lambda m: (abs(m - 15), -m))]
    link = lab.kubelet_exec("w-1", ["readlink", "/lab/bin/kubectl"])
    assert link.stdout.strip() == nearest
    version = lab.kubelet_exec("cp-1", ["kubectl", "version", "-o", "json"])
    assert json.loads(version.stdout)["serverVersion"]["gitVersion"] == "v1.15.3"
    ds = run(kubeconfig, "get", "ds", "kube-proxy", "-n", "kube-system", "-o", "json")
    assert ds.returncode == 0, ds.stderr
    image = json.loads(ds.stdout)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "k8s.gcr.io/kube-proxy:v1.15.3"  # kubeadm's repository before v1.25
