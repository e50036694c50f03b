"""``drift`` on the lab, through the nodes' real kubectl: a fresh cluster has none; a flag edited
by hand in one control plane's kube-apiserver manifest is named with its node; an apiServer
extraArgs changed in the inventory names the flag, both control planes and what to run; the
metrics file is read with prometheus_client.

One module-scoped lab (two control planes, a worker) bootstrapped with an apiServer extraArgs
in the inventory, so that kubeadm's double keeps it in kubeadm-config and writes it into both
control planes' manifests, as real kubeadm does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from k8slk_ops.drift import KINDS
from tests.e2e.helpers import CliRun, cli
from tests.e2e.test_lab_kubectl import host_kubectl, run
from tests.lab.fixture import require_doubles

pytestmark = pytest.mark.lab

MANIFEST = "/var/node/etc/kubernetes/manifests/kube-apiserver.yaml"
OVERRIDE = ('  kubeadm: {ClusterConfiguration: {apiServer: {extraArgs: '
            '{audit-log-maxage: "30"}}}}\n')
REWRITE = ("ctr -n services.linuxkit tasks exec --exec-id k8slk-drift kubelet kubeadm upgrade "
           "node phase control-plane --certificate-renewal=false")


def with_override(inventory: Path, target: Path, value: str) -> Path:
    text = inventory.read_text().replace("cluster:\n", "cluster:\n" + OVERRIDE.replace(
        '"30"', f'"{value}"'), 1)
    target.write_text(text)
    return target


@pytest.fixture(scope="module")
def cluster(lab_factory_module: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_doubles()
    host_kubectl()
    lab = lab_factory_module(nodes=3, control_planes=2)
    work = tmp_path_factory.mktemp("drift")
    inventory = with_override(lab.inventory_path, lab.inventory_path, "30")
    kubeconfig = work / "admin.kubeconfig"
    boot = cli("bootstrap", str(inventory), "--kubeconfig-out", str(kubeconfig),
               log_file=work / "boot.log", timeout=600)
    assert boot.code == 0, boot.stderr
    return {"lab": lab, "work": work, "inventory": inventory, "kubeconfig": kubeconfig}


def drift(cluster: dict[str, Any], inventory: Path, name: str) -> tuple[CliRun, Path]:
    metrics = cluster["work"] / f"{name}.prom"
    ran = cli("drift", str(inventory), "--json", "--metrics-file", str(metrics),
              log_file=cluster["work"] / f"{name}.log")
    return ran, metrics


def items(ran: CliRun) -> list[dict[str, Any]]:
    return list(ran.report["data"]["drift"]["items"])


def drift_metrics(path: Path) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        if family.name == "k8slk_ops_drift_items":
            out.update({s.labels["kind"]: s.value for s in family.samples})
    return out


def test_kubeadm_keeps_its_configuration_as_real_kubeadm_does(cluster: dict[str, Any]) -> None:
    """The double's upload-config: kubeadm-config and kubelet-config, read with the host's
    kubectl; and the extraArgs in both control planes' manifests."""
    got = run(cluster["kubeconfig"], "get", "configmaps", "-n", "kube-system", "kubeadm-config",
              "kubelet-config", "-o", "json")
    assert got.returncode == 0, got.stderr
    data = {i["metadata"]["name"]: i["data"] for i in json.loads(got.stdout)["items"]}
    config = yaml.safe_load(data["kubeadm-config"]["ClusterConfiguration"])
    assert config["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert config["apiServer"]["extraArgs"] == [{"name": "audit-log-maxage", "value": "30"}]
    assert config["kubernetesVersion"] == "v1.31.3"
    assert config["certificatesDir"] == "/etc/kubernetes/pki"  # kubeadm's defaults beside it
    kubelet = yaml.safe_load(data["kubelet-config"]["kubelet"])
    assert kubelet["cgroupDriver"] == "cgroupfs"
    for cp in ("cp-1", "cp-2"):
        assert b"- --audit-log-maxage=30\n" in cluster["lab"].read(cp, MANIFEST), cp


def test_a_fresh_cluster_has_no_drift(cluster: dict[str, Any]) -> None:
    ran, metrics = drift(cluster, cluster["inventory"], "fresh")
    assert ran.code == 0, ran.stderr
    assert items(ran) == []
    assert drift_metrics(metrics) == dict.fromkeys(KINDS, 0.0)
    assert "no drift: the cluster matches what the inventory renders" in ran.stderr


def test_a_flag_edited_by_hand_names_the_flag_and_the_node_and_its_fix_works(
    cluster: dict[str, Any]
) -> None:
    lab = cluster["lab"]
    before = lab.read("cp-2", MANIFEST)
    edit = lab.ssh("cp-2", f"sed -i 's/--audit-log-maxage=30/--audit-log-maxage=7/' {MANIFEST}")
    assert edit.returncode == 0, edit.stderr
    try:
        ran, metrics = drift(cluster, cluster["inventory"], "by-hand")
        assert ran.code == 1, ran.stderr
        [item] = items(ran)
        assert (item["kind"], item["where"], item["what"], item["expected"], item["found"]) == (
            "static-pods", "cp-2", "kube-apiserver --audit-log-maxage", "30", "7")
        assert item["fix"]["command"] == REWRITE
        assert item["fix"]["action"].startswith("rewrite cp-2's static pod manifests")
        assert drift_metrics(metrics) == dict.fromkeys(KINDS, 0.0) | {"static-pods": 1.0}
        row = next(line for line in ran.stderr.splitlines() if line.startswith("static-pods"))
        assert row.split()[:5] == ["static-pods", "cp-2", "kube-apiserver",
                                   "--audit-log-maxage", "30"]
        # The command drift names, run as given on cp-2: kubeadm writes the manifest again
        # from kubeadm-config and the kubelet restarts the API server with it.
        fixed = lab.ssh("cp-2", item["fix"]["command"], timeout=180)
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "kube-apiserver" in fixed.stdout
        assert b"- --audit-log-maxage=30\n" in lab.read("cp-2", MANIFEST)
        again, _ = drift(cluster, cluster["inventory"], "fixed")
        assert again.code == 0, again.stderr
        assert items(again) == []
    finally:
        if b"--audit-log-maxage=7" in lab.read("cp-2", MANIFEST):
            lab.ssh("cp-2", f"cat > {MANIFEST}", input=before.decode())


def test_an_inventory_change_names_the_flag_the_control_planes_and_what_to_run(
    cluster: dict[str, Any]
) -> None:
    inventory = cluster["inventory"]  # beside it: its relative paths hold
    changed = inventory.parent / "changed.yml"
    changed.write_text(inventory.read_text().replace('"30"', '"60"'))
    ran, metrics = drift(cluster, changed, "changed")
    assert ran.code == 1, ran.stderr
    found = {(i["kind"], i["where"], i["what"], i["expected"], i["found"]) for i in items(ran)}
    assert found == {
        ("cluster-config", "ConfigMap kube-system/kubeadm-config",
         "apiServer.extraArgs.audit-log-maxage", "60", "30"),
        ("static-pods", "cp-1", "kube-apiserver --audit-log-maxage", "60", "30"),
        ("static-pods", "cp-2", "kube-apiserver --audit-log-maxage", "60", "30"),
    }
    fixes = {i["where"]: i["fix"] for i in items(ran)}
    assert fixes["ConfigMap kube-system/kubeadm-config"]["command"] == (
        "kubectl -n kube-system edit configmap kubeadm-config")
    for cp in ("cp-1", "cp-2"):
        assert fixes[cp]["command"] == REWRITE
        assert fixes[cp]["action"].startswith("first set the flag in the kubeadm-config "
                                               "ConfigMap")
    assert drift_metrics(metrics) == dict.fromkeys(KINDS, 0.0) | {"cluster-config": 1.0,
                                                                   "static-pods": 2.0}
