"""``drift`` against the in-process fleet: exit codes, the JSON report, the metrics file, and
what the run reads (one command per control plane, one kubectl call for the ConfigMaps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from k8slk_ops.drift import KINDS
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory

APISERVER = "/var/node/etc/kubernetes/manifests/kube-apiserver.yaml"


def set_cluster(inventory: Path, *lines: str) -> None:
    """Add ``cluster:`` keys to a fleet inventory."""
    text = inventory.read_text()
    inventory.write_text(text.replace("cluster:\n", "cluster:\n" + "".join(
        f"  {line}\n" for line in lines), 1))


def items(run: Any) -> list[dict[str, Any]]:
    return list(run.report["data"]["drift"]["items"])


def drift_metrics(path: Path) -> dict[str, float]:
    """``k8slk_ops_drift_items`` per kind, as Prometheus reads the file."""
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        if family.name == "k8slk_ops_drift_items":
            for sample in family.samples:
                out[sample.labels["kind"]] = sample.value
    return out


def bootstrapped(fleet: InProcessFleet, k8slk: K8slk, *cluster: str) -> None:
    if cluster:
        set_cluster(fleet.inventory, *cluster)
    run = k8slk("bootstrap", fleet.inventory)
    assert run.code == 0, run.why()


def test_a_fresh_cluster_has_no_drift(fleet: InProcessFleet, k8slk: K8slk,
                                      tmp_path: Path) -> None:
    bootstrapped(fleet, k8slk,
                 "kubeadm: {ClusterConfiguration: {apiServer: {extraArgs: {audit-log-maxage: "
                 '"30"}}}}')
    metrics = tmp_path / "drift.prom"
    run = k8slk("drift", fleet.inventory, "--json", "--metrics-file", metrics)
    assert run.code == 0, run.why()
    assert items(run) == []
    assert run.report["data"]["drift"]["counts"] == dict.fromkeys(KINDS, 0)
    assert drift_metrics(metrics) == dict.fromkeys(KINDS, 0.0)
    assert "no drift: the cluster matches what the inventory renders" in run.report["messages"]


def test_changed_inventory_args_name_the_flag_the_control_planes_and_the_fix(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = fleet_factory(4, 2)
    bootstrapped(fleet, k8slk,
                 "kubeadm: {ClusterConfiguration: {apiServer: {extraArgs: {audit-log-maxage: "
                 '"30"}}}}')
    fleet.inventory.write_text(fleet.inventory.read_text().replace('"30"', '"60"'))
    metrics = tmp_path / "drift.prom"
    run = k8slk("drift", fleet.inventory, "--json", "--metrics-file", metrics)
    assert run.code == 1, run.why()
    found = {(i["kind"], i["where"], i["what"], i["expected"], i["found"]) for i in items(run)}
    assert found == {
        ("cluster-config", "ConfigMap kube-system/kubeadm-config",
         "apiServer.extraArgs.audit-log-maxage", "60", "30"),
        ("static-pods", "cp-1", "kube-apiserver --audit-log-maxage", "60", "30"),
        ("static-pods", "cp-2", "kube-apiserver --audit-log-maxage", "60", "30"),
    }
    fixes = {i["where"]: i["fix"] for i in items(run)}
    assert fixes["cp-2"]["command"].endswith(
        "kubeadm upgrade node phase control-plane --certificate-renewal=false")
    assert "kubeadm-config ConfigMap" in fixes["cp-2"]["action"]
    assert fixes["ConfigMap kube-system/kubeadm-config"]["command"] == (
        "kubectl -n kube-system edit configmap kubeadm-config")
    counts = dict.fromkeys(KINDS, 0.0) | {"cluster-config": 1.0, "static-pods": 2.0}
    assert drift_metrics(metrics) == counts
    text = metrics.read_text()
    assert 'k8slk_ops_run_exit_code{command="drift",cluster="fleet"} 1' in text


def test_a_flag_edited_by_hand_is_named_with_its_node(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 3)
    bootstrapped(fleet, k8slk,
                 "kubeadm: {ClusterConfiguration: {apiServer: {extraArgs: {audit-log-maxage: "
                 '"30"}}}}')
    manifest = fleet.file("cp-2", APISERVER)
    assert manifest is not None
    edited = manifest.replace(b"--audit-log-maxage=30", b"--audit-log-maxage=7")
    edited = edited.replace(b"--secure-port=6443", b"--secure-port=6443\n    - --v=5")
    fleet.write_file("cp-2", APISERVER, edited, 0o600)
    run = k8slk("drift", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    found = {(i["kind"], i["where"], i["what"], i["expected"], i["found"]) for i in items(run)}
    assert found == {
        ("static-pods", "cp-2", "kube-apiserver --audit-log-maxage", "30", "7"),
        ("static-pods", "cp-2", "kube-apiserver --v", "(absent)", "5"),
    }
    # The ConfigMap says what the inventory says: the fix is the roll alone.
    assert all("first set" not in i["fix"]["action"] for i in items(run))


def test_nodes_missing_and_unknown(fleet: InProcessFleet, k8slk: K8slk) -> None:
    bootstrapped(fleet, k8slk)
    text = fleet.inventory.read_text()
    w2 = next(line for line in text.splitlines() if "name: w-2" in line)
    text = text.replace(w2 + "\n", "") + "  - {name: w-9, address: 127.0.0.99, role: worker}\n"
    fleet.inventory.write_text(text)
    run = k8slk("drift", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    by_node = {i["where"]: i for i in items(run) if i["kind"] == "nodes"}
    assert set(by_node) == {"w-2", "w-9"}
    assert by_node["w-9"]["found"] == "(absent)"
    assert by_node["w-9"]["fix"]["command"] == f"k8slk-ops add-node {fleet.inventory} --node w-9"
    assert by_node["w-2"]["expected"] == "not in the inventory"
    assert by_node["w-2"]["fix"]["command"] == ""


def test_an_addon_changed_since_it_was_applied(fleet: InProcessFleet, k8slk: K8slk) -> None:
    bootstrapped(fleet, k8slk)
    manifest = fleet.directory / "pod-network.yaml"
    manifest.write_text(manifest.read_text() + "\n# changed\n")
    run = k8slk("drift", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    [item] = items(run)
    assert (item["kind"], item["where"]) == ("addons", "pod-network.yaml")
    assert item["fix"]["command"] == f"k8slk-ops add-node {fleet.inventory}"


def test_reads_once_per_control_plane_and_contacts_no_worker(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(4, 2)
    bootstrapped(fleet, k8slk)
    before = {n: fleet.node_commands(n) for n in fleet.names}
    run = k8slk("drift", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    after = {n: fleet.node_commands(n) for n in fleet.names}
    for worker in ("w-1", "w-2"):
        assert after[worker] == before[worker]
    for control_plane in ("cp-1", "cp-2"):
        read = after[control_plane].get("read-files", 0) - before[control_plane].get(
            "read-files", 0)
        assert read == 1, after[control_plane]
    gets = fleet.count("kubectl get configmaps")
    assert gets == 1, fleet.commands()


def test_json_is_one_document_and_drift_takes_no_lock(fleet: InProcessFleet,
                                                       k8slk: K8slk) -> None:
    bootstrapped(fleet, k8slk)
    run = k8slk("drift", fleet.inventory, "--json")
    json.loads(run.stdout)
    assert fleet.count("kubectl create") == 0 and fleet.count("kubectl replace") == 0


def test_without_a_cluster_it_cannot_start(fleet: InProcessFleet, k8slk: K8slk) -> None:
    run = k8slk("drift", fleet.inventory, "--json")
    assert run.code == 3, run.why()
    assert "bootstrap" in run.stderr + run.stdout


def test_an_unreachable_control_plane_is_named_and_the_rest_compared(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = fleet_factory(3, 2)
    bootstrapped(fleet, k8slk)
    fleet.unreachable("cp-2")
    metrics = tmp_path / "drift.prom"
    run = k8slk("drift", fleet.inventory, "--json", "--metrics-file", metrics)
    assert run.code == 1, run.why()
    assert run.outcomes["cp-2"] == "unreachable"
    assert run.nodes["cp-2"]["next"] is not None
    assert items(run) == []  # what could be read matches; cp-2's manifests were not read
    assert drift_metrics(metrics) == dict.fromkeys(KINDS, 0.0)
    assert 'k8slk_ops_run_exit_code{command="drift",cluster="fleet"} 1' in metrics.read_text()


def test_no_api_compares_nothing_and_says_why(fleet: InProcessFleet, k8slk: K8slk,
                                              tmp_path: Path) -> None:
    bootstrapped(fleet, k8slk)
    fleet.stop_etcd("cp-1")
    metrics = tmp_path / "drift.prom"
    run = k8slk("drift", fleet.inventory, "--json", "--metrics-file", metrics)
    assert run.code == 1, run.why()
    assert "drift" not in run.report["data"]
    assert any("the Kubernetes API does not answer" in m for m in run.report["messages"])
    assert drift_metrics(metrics) == {}
