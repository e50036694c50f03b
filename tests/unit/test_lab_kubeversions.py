"""The doubles follow the Kubernetes minor they claim: kubeadm's control-plane labels and
taints, CoreDNS's tolerations, and the group versions the API serves (kubeversions' table).

The expected texts are real kubeadm's and real kubectl's: the ``[mark-control-plane]`` lines of
v1.21, v1.24 and v1.25 inits, and kubectl's ``no matches for kind`` refusal, which the real
kubectl prints here from the API double's discovery.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from k8slk_ops.kubeadm import parse_nodes_json
from tests.fleet import kubeadm as fleet_kubeadm
from tests.fleet.inprocess import InProcessFleet
from tests.lab.image import real_kubectl
from tests.unit.clirun import K8slk
from tests.unit.test_lab_doubles import Node, nodes, wait_for  # noqa: F401 - fixtures

DOUBLES = Path(__file__).resolve().parents[1] / "lab" / "doubles"
if str(DOUBLES) not in sys.path:
    sys.path.insert(0, str(DOUBLES))

from k8sdouble import kubeversions, objects, resources, rest  # noqa: E402
from k8sdouble.apiserver import Request  # noqa: E402
from k8sdouble.nodes import node_json  # noqa: E402

MASTER = "node-role.kubernetes.io/master"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"
KUBECTL = os.environ.get("LAB_KUBECTL") or real_kubectl("v1.31.3")  # another: LAB_KUBECTL


# --- the table ------------------------------------------------------------------------------

@pytest.mark.parametrize(("minor", "labels", "taints"), [
    (21, (MASTER, CONTROL_PLANE, EXCLUDE), (MASTER,)),
    (23, (MASTER, CONTROL_PLANE, EXCLUDE), (MASTER,)),
    (24, (CONTROL_PLANE, EXCLUDE), (MASTER, CONTROL_PLANE)),
    (25, (CONTROL_PLANE, EXCLUDE), (CONTROL_PLANE,)),
    (31, (CONTROL_PLANE, EXCLUDE), (CONTROL_PLANE,)),
])
def test_control_plane_labels_and_taints_per_minor(
    minor: int, labels: tuple[str, ...], taints: tuple[str, ...]
) -> None:
    assert kubeversions.control_plane_labels(minor) == labels
    assert kubeversions.control_plane_taints(minor) == taints


def test_mark_control_plane_lines_are_kubeadms() -> None:
    head = "[mark-control-plane] Marking the node cp-1 as control-plane by adding"
    assert kubeversions.mark_control_plane_lines(19, "cp-1") == (
        f"{head} the label \"node-role.kubernetes.io/master=''\"",
        f"{head} the taints [node-role.kubernetes.io/master:NoSchedule]")
    assert kubeversions.mark_control_plane_lines(21, "cp-1") == (
        f"{head} the labels: [node-role.kubernetes.io/master(deprecated) "
        "node-role.kubernetes.io/control-plane "
        "node.kubernetes.io/exclude-from-external-load-balancers]",
        f"{head} the taints [node-role.kubernetes.io/master:NoSchedule]")
    assert kubeversions.mark_control_plane_lines(24, "cp-1") == (
        f"{head} the labels: [node-role.kubernetes.io/control-plane "
        "node.kubernetes.io/exclude-from-external-load-balancers]",
        f"{head} the taints [node-role.kubernetes.io/master:NoSchedule "
        "node-role.kubernetes.io/control-plane:NoSchedule]")
    assert kubeversions.mark_control_plane_lines(25, "cp-1")[1] == (
        f"{head} the taints [node-role.kubernetes.io/control-plane:NoSchedule]")


def test_coredns_tolerates_master_until_1_26() -> None:
    keys = {m: [t["key"] for t in kubeversions.coredns_tolerations(m)] for m in (21, 25, 26)}
    assert keys[21] == keys[25] == ["CriticalAddonsOnly", MASTER, CONTROL_PLANE]
    assert keys[26] == ["CriticalAddonsOnly", CONTROL_PLANE]


def test_upgrade_migrates_the_marks_in_kep_2067s_stages() -> None:
    at_23 = ({MASTER: "", CONTROL_PLANE: "", EXCLUDE: "", "team": "a"},
             [{"key": MASTER, "effect": "NoSchedule"}])
    labels, taints = kubeversions.upgraded_marks(24, *at_23)
    assert labels == {CONTROL_PLANE: "", EXCLUDE: "", "team": "a"}
    assert [t["key"] for t in taints] == [MASTER, CONTROL_PLANE]
    labels, taints = kubeversions.upgraded_marks(25, labels, taints)
    assert [t["key"] for t in taints] == [CONTROL_PLANE]
    # A taint the operator removed is not put back by an upgrade that does not introduce it.
    assert kubeversions.upgraded_marks(26, labels, [])[1] == []
    assert kubeversions.upgraded_marks(22, *at_23) == at_23


@pytest.mark.parametrize(("minor", "served", "gone"), [
    (15, ["extensions/v1beta1 DaemonSet", "apps/v1beta2 Deployment"], ["policy/v1 PodDisruptionBudget"]),
    (21, ["rbac.authorization.k8s.io/v1beta1 ClusterRole", "batch/v1beta1 CronJob",
          "batch/v1 CronJob", "policy/v1beta1 PodSecurityPolicy", "policy/v1 PodDisruptionBudget"],
     ["extensions/v1beta1 DaemonSet", "apps/v1beta2 DaemonSet", "apps/v1beta1 Deployment"]),
    (22, ["batch/v1beta1 CronJob", "policy/v1beta1 PodDisruptionBudget"],
     ["rbac.authorization.k8s.io/v1beta1 Role", "coordination.k8s.io/v1beta1 Lease"]),
    (25, ["batch/v1 CronJob", "policy/v1 PodDisruptionBudget"],
     ["batch/v1beta1 CronJob", "policy/v1beta1 PodSecurityPolicy",
      "policy/v1beta1 PodDisruptionBudget"]),
])
def test_group_versions_served_per_minor(minor: int, served: list[str], gone: list[str]) -> None:
    for item in served:
        assert kubeversions.serves(minor, *item.split()), item
    for item in gone:
        assert not kubeversions.serves(minor, *item.split()), item


# --- the API double's discovery and REST paths ----------------------------------------------

def test_discovery_of_a_v1_21_server_lists_the_beta_versions_it_still_serves() -> None:
    groups = {g["name"]: g for g in resources.api_group_list(21)["groups"]}
    assert [v["version"] for v in groups["rbac.authorization.k8s.io"]["versions"]] == [
        "v1", "v1beta1"]
    assert groups["batch"]["preferredVersion"]["version"] == "v1"
    assert "extensions" not in groups
    crons = resources.discovery(["apis", "batch", "v1beta1"], "x", 21)
    assert crons is not None and [r["kind"] for r in crons["resources"]] == ["CronJob"]
    core = resources.discovery(["api", "v1"], "x", 21)
    assert core is not None
    eviction = next(r for r in core["resources"] if r["name"] == "pods/eviction")
    assert (eviction["group"], eviction["version"]) == ("policy", "v1beta1")
    assert rest.parse(["apis", "rbac.authorization.k8s.io", "v1beta1", "clusterroles"], 21)


def test_a_v1_25_server_no_longer_has_them() -> None:
    groups = {g["name"]: g for g in resources.api_group_list(25)["groups"]}
    assert [v["version"] for v in groups["rbac.authorization.k8s.io"]["versions"]] == ["v1"]
    assert [v["version"] for v in groups["batch"]["versions"]] == ["v1"]
    assert resources.discovery(["apis", "batch", "v1beta1"], "x", 25) is None
    assert rest.parse(["apis", "batch", "v1beta1", "namespaces", "d", "cronjobs"], 25) is None
    assert rest.parse(["apis", "batch", "v1", "namespaces", "d", "cronjobs"], 25) is not None
    core = resources.discovery(["api", "v1"], "x", 25)
    assert core is not None
    eviction = next(r for r in core["resources"] if r["name"] == "pods/eviction")
    assert (eviction["group"], eviction["version"]) == ("policy", "v1")


def test_one_storage_for_every_version_each_read_in_the_version_asked() -> None:
    store = objects.Objects({}, 0.0)
    beta = rest.parse(["apis", "rbac.authorization.k8s.io", "v1beta1", "clusterroles"], 21)
    ga = rest.parse(["apis", "rbac.authorization.k8s.io", "v1", "clusterroles", "r"], 21)
    assert beta is not None and ga is not None
    view = rest.Views(store, [], {})
    code, made = rest.serve(Request("POST", "/", "admin", {"metadata": {"name": "r"}}),
                            beta, store, view)
    assert (code, made["apiVersion"]) == (201, "rbac.authorization.k8s.io/v1beta1")
    code, read = rest.serve(Request("GET", "/", "admin", None), ga, store, view)
    assert (code, read["apiVersion"], read["kind"]) == (
        200, "rbac.authorization.k8s.io/v1", "ClusterRole")


def test_a_nodes_taints_are_the_ones_kubeadm_stored() -> None:
    node = {"name": "cp-1", "labels": {MASTER: "", CONTROL_PLANE: ""},
            "taints": [{"key": MASTER, "effect": "NoSchedule"}]}
    shown = node_json(node, "True", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z")
    assert shown["spec"]["taints"] == [{"key": MASTER, "effect": "NoSchedule"}]
    worker = node_json({"name": "w-1"}, "False", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z")
    assert [t["key"] for t in worker["spec"]["taints"]] == ["node.kubernetes.io/not-ready"]


@pytest.mark.parametrize("minor", [19, 21, 24, 25, 31])
def test_the_tool_knows_a_control_plane_by_the_labels_of_every_minor(minor: int) -> None:
    """k8slk-ops reads control planes from ``kubectl get nodes``: master alone (before 1.20),
    both (1.20-1.23) and control-plane alone (1.24 on) all say control plane."""
    stamp = "2024-01-01T00:00:00Z"
    cp = node_json({"name": "cp-1", "labels": {
        key: "" for key in kubeversions.control_plane_labels(minor)}}, "True", stamp, stamp)
    worker = node_json({"name": "w-1"}, "True", stamp, stamp)
    found = parse_nodes_json(json.dumps({"kind": "List", "items": [cp, worker]}))
    assert [(n.name, n.control_plane) for n in found] == [("cp-1", True), ("w-1", False)]


# --- kubeadm init and the real kubectl against a v1.21 and a v1.25 control plane ------------

def init_config(node: Node, version: str) -> str:
    api = "v1beta2" if kubeversions.minor(version) < 22 else "v1beta3"
    return f"""apiVersion: kubeadm.k8s.io/{api}
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {node.address}
  bindPort: 6443
nodeRegistration:
  name: {node.name}
---
apiVersion: kubeadm.k8s.io/{api}
kind: ClusterConfiguration
kubernetesVersion: {version}
controlPlaneEndpoint: {node.address}:6443
"""


def kubectl(node: Node, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run([KUBECTL, "--kubeconfig", str(node.file("/etc/kubernetes/admin.conf")),
                           *args], capture_output=True, text=True, input=stdin, timeout=120)


def init(nodes: Any, version: str) -> tuple[Node, str]:  # noqa: F811
    cp = nodes("cp-1", "control-plane", version)
    cp.start_kubelet()
    path = cp.write("/run/kubeadm.yaml", init_config(cp, version))
    out = cp.run("kubeadm", "init", "--config", path)
    assert out.returncode == 0, out.stdout + out.stderr
    return cp, out.stdout


def node_object(cp: Node) -> dict[str, Any]:
    out = kubectl(cp, "get", "node", "cp-1", "-o", "json")
    assert out.returncode == 0, out.stderr
    found: dict[str, Any] = json.loads(out.stdout)
    return found


CRON = """apiVersion: batch/{v}
kind: CronJob
metadata: {{name: nightly, namespace: default}}
spec:
  schedule: "0 3 * * *"
  jobTemplate: {{spec: {{template: {{spec: {{restartPolicy: Never, containers: [{{name: c, image: busybox}}]}}}}}}}}
"""
OLD_DS = """apiVersion: extensions/v1beta1
kind: DaemonSet
metadata: {name: old-agent, namespace: kube-system}
spec: {template: {spec: {containers: [{name: c, image: busybox}]}}}
"""
BETA_ROLE = """apiVersion: rbac.authorization.k8s.io/v1beta1
kind: ClusterRole
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
"""


def refusal(kind: str, api: str, name: str, namespace: str) -> str:
    """kubectl's own words for a kind the server does not serve in that version."""
    return (f'error: resource mapping not found for name: "{name}" namespace: "{namespace}" '
            f'from "STDIN": no matches for kind "{kind}" in version "{api}"\n'
            "ensure CRDs are installed first\n")


@pytest.mark.skipif(KUBECTL is None, reason="no real kubectl on this host")
def test_a_v1_21_control_plane_is_tainted_master_and_serves_v1_21s_apis(
    nodes: Any,  # noqa: F811
) -> None:
    cp, output = init(nodes, "v1.21.14")
    assert "[mark-control-plane] Marking the node cp-1 as control-plane by adding the taints " \
           "[node-role.kubernetes.io/master:NoSchedule]\n" in output
    obj = node_object(cp)
    assert obj["spec"]["taints"][0] == {"key": MASTER, "effect": "NoSchedule"}
    assert CONTROL_PLANE not in {t["key"] for t in obj["spec"]["taints"]}
    assert {MASTER, CONTROL_PLANE, EXCLUDE} <= set(obj["metadata"]["labels"])
    roles = kubectl(cp, "get", "nodes", "--no-headers").stdout.split()
    assert roles[2] == "control-plane,master"
    coredns = kubectl(cp, "get", "deploy", "coredns", "-n", "kube-system", "-o", "json")
    tolerated = [t["key"] for t in json.loads(coredns.stdout)["spec"]["template"]["spec"][
        "tolerations"]]
    assert tolerated == ["CriticalAddonsOnly", MASTER, CONTROL_PLANE]

    made = kubectl(cp, "apply", "-f", "-", stdin=BETA_ROLE + "---\n" + CRON.format(v="v1beta1"))
    assert made.returncode == 0, made.stderr
    assert made.stdout == ("clusterrole.rbac.authorization.k8s.io/reader created\n"
                           "cronjob.batch/nightly created\n")
    read = kubectl(cp, "get", "clusterrole", "reader", "-o", "jsonpath={.apiVersion}")
    assert read.stdout == "rbac.authorization.k8s.io/v1"  # stored once, read as v1
    old = kubectl(cp, "apply", "-f", "-", stdin=OLD_DS)
    assert old.returncode == 1
    assert old.stderr == refusal("DaemonSet", "extensions/v1beta1", "old-agent", "kube-system")


@pytest.mark.skipif(KUBECTL is None, reason="no real kubectl on this host")
def test_a_v1_25_control_plane_has_only_the_control_plane_taint_and_no_beta_cronjobs(
    nodes: Any,  # noqa: F811
) -> None:
    cp, output = init(nodes, "v1.25.16")
    assert "adding the taints [node-role.kubernetes.io/control-plane:NoSchedule]\n" in output
    obj = node_object(cp)
    assert [t["key"] for t in obj["spec"]["taints"] if t["key"].startswith("node-role")] == [
        CONTROL_PLANE]
    assert MASTER not in obj["metadata"]["labels"]
    beta = kubectl(cp, "apply", "-f", "-", stdin=CRON.format(v="v1beta1"))
    assert beta.returncode == 1
    assert beta.stderr == refusal("CronJob", "batch/v1beta1", "nightly", "default")
    role = kubectl(cp, "apply", "-f", "-", stdin=BETA_ROLE)
    assert role.stderr == refusal("ClusterRole", "rbac.authorization.k8s.io/v1beta1", "reader",
                                  "")
    ga = kubectl(cp, "apply", "-f", "-", stdin=CRON.format(v="v1"))
    assert ga.returncode == 0 and ga.stdout == "cronjob.batch/nightly created\n", ga.stderr


@pytest.mark.skipif(KUBECTL is None, reason="no real kubectl on this host")
def test_the_kubeadm_doubles_upgrade_apply_migrates_the_marks_to_1_24_then_1_25(
    nodes: Any,  # noqa: F811
) -> None:
    cp, _ = init(nodes, "v1.23.17")
    assert [t["key"] for t in node_object(cp)["spec"]["taints"]] == [MASTER]
    kubectl(cp, "label", "node", "cp-1", "team=infra")
    for version in ("v1.24.17", "v1.25.16"):
        data = json.loads(cp.file("/lab/node.json").read_text())
        data["kubernetesVersion"] = version  # the node's kubeadm is now that release
        cp.file("/lab/node.json").write_text(json.dumps(data))
        out = cp.run("kubeadm", "upgrade", "apply", version, "--yes")
        assert out.returncode == 0, out.stdout + out.stderr
        obj = node_object(cp)
        marks = [t["key"] for t in obj["spec"].get("taints", []) if t["key"].startswith("node-r")]
        assert MASTER not in obj["metadata"]["labels"]
        assert obj["metadata"]["labels"]["team"] == "infra"
        assert marks == ([MASTER, CONTROL_PLANE] if version == "v1.24.17" else [CONTROL_PLANE])


# --- the in-process fleet ------------------------------------------------------------------

def test_the_fleet_marks_a_v1_21_control_plane_master_and_the_tool_sees_it(
    fleet_factory: Any, k8slk: K8slk
) -> None:
    fleet: InProcessFleet = fleet_factory(2, 1, kubernetes_version="v1.21.14")
    old = fleet.directory / "old.yaml"
    old.write_text(OLD_DS)
    cron = fleet.directory / "cron.yaml"
    cron.write_text(CRON.format(v="v1beta1"))
    text = fleet.inventory.read_text()
    fleet.inventory.write_text(text.replace("addons: [pod-network.yaml]",
                                            "addons: [pod-network.yaml, cron.yaml]"))
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    cp = fleet.members()["cp-1"]
    assert {MASTER, CONTROL_PLANE} <= set(cp.labels) and cp.taints == (MASTER,)
    assert fleet.members()["w-1"].taints == ()
    assert ("CronJob", "default", "nightly") in fleet.objects()
    status = k8slk("status", fleet.inventory, "--json")
    assert status.code == 0, status.why()
    fleet.inventory.write_text(fleet.inventory.read_text().replace(
        "cron.yaml]", "cron.yaml, old.yaml]"))
    refused = k8slk("add-node", fleet.inventory, "--json")
    assert refused.code == 1
    assert 'no matches for kind "DaemonSet" in version "extensions/v1beta1"' in \
        refused.nodes["cp-1"]["message"]


def test_the_fleets_upgrade_apply_to_1_25_takes_the_master_taint_off(
    fleet_factory: Any, k8slk: K8slk
) -> None:
    fleet: InProcessFleet = fleet_factory(2, 1, kubernetes_version="v1.24.17")
    boot = k8slk("bootstrap", fleet.inventory, "--json")
    assert boot.code == 0, boot.why()
    assert fleet.members()["cp-1"].taints == (MASTER, CONTROL_PLANE)
    assert MASTER not in fleet.members()["cp-1"].labels

    def upgrade_apply() -> Any:
        node = fleet._node("cp-1")
        node.version = "v1.25.16"  # booted the v1.25 image, as a reboot into it does
        return fleet_kubeadm.cli(node, ["kubeadm", "upgrade", "apply", "v1.25.16", "--yes"])

    result = fleet.call(upgrade_apply)
    assert "SUCCESS! Your cluster was upgraded" in result.stdout.decode(), result
    assert fleet.members()["cp-1"].taints == (CONTROL_PLANE,)
    assert fleet.members()["w-1"].taints == ()
