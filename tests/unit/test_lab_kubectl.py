"""The real kubectl against the lab's API double, kubelet and kubeadm (no containers).

Simulated nodes as in test_lab_doubles; the client is the host's real kubectl (the one the lab
puts into its nodes), so these tests hold the doubles to what a real client needs and prints.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from k8slk_ops.cluster.addonrecord import explain_failure
from k8slk_ops.inventory.addons import Addon
from tests.fleet import objects as fleet_objects
from tests.lab.image import real_kubectl, real_kubectls
from tests.unit.test_lab_doubles import Node, cluster, init_config, nodes, wait_for  # noqa: F401 - fixtures

KUBECTL = os.environ.get("LAB_KUBECTL") or real_kubectl("v1.31.3")  # another client: LAB_KUBECTL
CNI = Path(__file__).resolve().parents[1] / "lab" / "cni" / "lab-cni.yaml"
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no real kubectl on this host")
NETWORK_MESSAGE = ("container runtime network not ready: NetworkReady=false "
                   "reason:NetworkPluginNotReady message:Network plugin returns error: "
                   "cni plugin not initialized")


def kubectl(node: Node, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run([KUBECTL, "--kubeconfig", str(node.file("/etc/kubernetes/admin.conf")),
                           *args], capture_output=True, text=True, input=stdin, timeout=120)


def pods(node: Node) -> list[dict[str, Any]]:
    out = kubectl(node, "get", "pods", "-A", "-o", "json")
    assert out.returncode == 0, out.stderr
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def ready_condition(node: Node, name: str) -> dict[str, str]:
    out = kubectl(node, "get", "node", name, "-o", "json")
    assert out.returncode == 0, out.stderr
    return next(c for c in json.loads(out.stdout)["status"]["conditions"] if c["type"] == "Ready")


def test_tables_and_addons(cluster: Any) -> None:  # noqa: F811
    cp = cluster[0]
    assert wait_for(lambda: any(p["metadata"]["name"].startswith("kube-proxy-")
                                and p["status"]["phase"] == "Running" for p in pods(cp)))
    wide = kubectl(cp, "get", "nodes", "-o", "wide")
    assert wide.returncode == 0, wide.stderr
    header, row = wide.stdout.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    assert row.split()[:3] == ["cp-1", "Ready", "control-plane"]
    assert cp.address in row
    ds = kubectl(cp, "get", "ds", "-n", "kube-system")
    assert ds.stdout.splitlines()[0].split()[:3] == ["NAME", "DESIRED", "CURRENT"]
    assert ds.stdout.splitlines()[1].split()[:4] == ["kube-proxy", "1", "1", "1"]
    listing = kubectl(cp, "get", "pods", "-A", "-o", "wide").stdout
    assert listing.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "READY"]
    mirrors = {line.split()[1] for line in listing.splitlines()[1:]
               if line.split()[1].endswith("-cp-1")}
    assert mirrors == {"etcd-cp-1", "kube-apiserver-cp-1", "kube-controller-manager-cp-1",
                       "kube-scheduler-cp-1"}  # the static pods' mirror pods
    coredns = [line for line in listing.splitlines() if " coredns-" in line]
    assert len(coredns) == 2
    deploy = kubectl(cp, "get", "deploy", "coredns", "-n", "kube-system")
    assert deploy.returncode == 0 and deploy.stdout.split()[5:7] in (["coredns", "0/2"],
                                                                     ["coredns", "1/2"],
                                                                     ["coredns", "2/2"])


def test_kube_proxy_skipped(nodes: Any) -> None:  # noqa: F811
    cp = nodes("cp-1", "control-plane")
    cp.start_kubelet()
    extra = "skipPhases: [addon/kube-proxy]\n"
    path = cp.write("/run/kubeadm.yaml", init_config(cp, extra))
    out = cp.run("kubeadm", "init", "--config", path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[addons] Applied essential addon: CoreDNS" in out.stdout
    assert "kube-proxy" not in out.stdout
    gone = kubectl(cp, "get", "ds", "kube-proxy", "-n", "kube-system")
    assert gone.returncode == 1
    assert gone.stderr.strip() == 'Error from server (NotFound): daemonsets.apps "kube-proxy" not found'


def test_cordon_drain_and_delete(cluster: Any) -> None:  # noqa: F811
    cp = cluster[0]
    assert wait_for(lambda: any(p["metadata"]["name"].startswith("kube-proxy-") for p in pods(cp)))
    assert wait_for(lambda: any(p["metadata"]["name"].startswith("coredns-")
                                and p["status"]["phase"] == "Running" for p in pods(cp)))
    assert kubectl(cp, "cordon", "cp-1").stdout.strip() == "node/cp-1 cordoned"
    assert "Ready,SchedulingDisabled" in kubectl(cp, "get", "nodes").stdout
    refused = kubectl(cp, "drain", "cp-1", "--timeout=20s")
    assert refused.returncode == 1
    assert "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): " \
           "kube-system/kube-proxy-" in refused.stderr
    drained = kubectl(cp, "drain", "cp-1", "--ignore-daemonsets", "--delete-emptydir-data",
                      "--timeout=60s")
    assert drained.returncode == 0, drained.stderr
    # kubectl v1.20 ends with "evicted" when it evicted pods, later ones with "drained".
    assert drained.stdout.strip().splitlines()[-1] in ("node/cp-1 drained", "node/cp-1 evicted")
    assert "pod/coredns-" in drained.stdout  # the CoreDNS pods this node ran were evicted
    assert "ignoring DaemonSet-managed Pods: kube-system/kube-proxy-" in drained.stderr
    assert "kube-apiserver-cp-1" not in drained.stdout + drained.stderr  # a mirror pod stays
    assert "kube-apiserver-cp-1" in {p["metadata"]["name"] for p in pods(cp)}
    assert kubectl(cp, "uncordon", "cp-1").stdout.strip() == "node/cp-1 uncordoned"
    missing = kubectl(cp, "delete", "node", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): nodes "nope" not found'


def test_drain_blocked_by_disruption_budget(cluster: Any) -> None:  # noqa: F811
    cp = cluster[0]
    assert wait_for(lambda: any(p["metadata"]["name"].startswith("kube-proxy-") for p in pods(cp)))
    cp.write("/lab/faults/drain-block-cp-1", "default/web-5d8f7c9b6-q2x7k\n")
    out = kubectl(cp, "drain", "cp-1", "--ignore-daemonsets", "--timeout=3s")
    assert out.returncode == 1
    assert ('error when evicting pods/"web-5d8f7c9b6-q2x7k" -n "default" (will retry after 5s): '
            "Cannot evict pod as it would violate the pod's disruption budget.") in out.stderr
    assert "global timeout reached: 3s" in out.stderr


def test_apply_create_unchanged_configured(cluster: Any, tmp_path: Path) -> None:  # noqa: F811
    cp = cluster[0]
    first = kubectl(cp, "apply", "-f", str(CNI))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "serviceaccount/lab-cni created", "clusterrole.rbac.authorization.k8s.io/lab-cni created",
        "clusterrolebinding.rbac.authorization.k8s.io/lab-cni created",
        "configmap/lab-cni-cfg created", "daemonset.apps/lab-cni created"]
    again = kubectl(cp, "apply", "-f", "-", stdin=CNI.read_text())
    assert again.returncode == 0, again.stderr
    assert all(line.endswith(" unchanged") for line in again.stdout.splitlines())
    changed = CNI.read_text().replace('"portmap"', '"tuning"')
    third = kubectl(cp, "apply", "-f", "-", stdin=changed)
    assert "configmap/lab-cni-cfg configured" in third.stdout.splitlines()
    cm = json.loads(kubectl(cp, "get", "cm", "lab-cni-cfg", "-n", "kube-system",
                            "-o", "json").stdout)
    assert '"tuning"' in cm["data"]["cni-conf.json"]
    bad = kubectl(cp, "apply", "-f", "-", stdin="apiVersion: v1\nkind: Widget\n"
                  "metadata: {name: w}\n")
    assert bad.returncode == 1
    assert 'no matches for kind "Widget" in version "v1"' in bad.stderr


def test_strict_network_until_a_cni_is_applied(nodes: Any) -> None:  # noqa: F811
    cp = nodes("cp-1", "control-plane", strict_network=True)
    cp.start_kubelet()
    path = cp.write("/run/kubeadm.yaml", init_config(cp))
    assert cp.run("kubeadm", "init", "--config", path).returncode == 0
    assert wait_for(lambda: ready_condition(cp, "cp-1")["message"] == NETWORK_MESSAGE)
    cond = ready_condition(cp, "cp-1")
    assert (cond["status"], cond["reason"]) == ("False", "KubeletNotReady")
    assert "NotReady" in kubectl(cp, "get", "nodes").stdout
    assert all(p["status"]["phase"] == "Pending" for p in pods(cp)
               if p["metadata"]["name"].startswith("coredns-"))
    assert kubectl(cp, "apply", "-f", str(CNI)).returncode == 0
    assert wait_for(lambda: ready_condition(cp, "cp-1")["status"] == "True")
    conf = cp.file("/etc/cni/net.d/10-lab-cni.conflist")
    assert json.loads(conf.read_text())["name"] == "lab-cni"
    assert wait_for(lambda: any(p["status"]["phase"] == "Running" for p in pods(cp)
                                if p["metadata"]["name"].startswith("coredns-")))


def test_unknown_paths_answer_like_the_real_server(cluster: Any) -> None:  # noqa: F811
    cp = cluster[0]
    out = kubectl(cp, "get", "--raw", "/apis/example.com/v1/widgets")
    assert out.returncode == 1
    assert out.stderr.strip() == "Error from server (NotFound): the server could not find " \
                                 "the requested resource"
    out = kubectl(cp, "get", "widgets")
    assert out.stderr.strip().endswith('error: the server doesn\'t have a resource type '
                                       '"widgets"')


def test_watch_wait_and_rollout_status(cluster: Any) -> None:  # noqa: F811
    cp = cluster[0]
    assert KUBECTL is not None
    watch = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(cp.file("/etc/kubernetes/admin.conf")), "get", "ds", "-A",
         "-w", "--request-timeout=8s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    assert wait_for(lambda: kubectl(cp, "get", "ds", "kube-proxy", "-n",
                                    "kube-system").returncode == 0)
    assert kubectl(cp, "apply", "-f", str(CNI)).returncode == 0
    out, _ = watch.communicate(timeout=60)
    assert any(line.split()[:2] == ["kube-system", "lab-cni"] for line in out.splitlines())
    none = kubectl(cp, "get", "nodes", "--field-selector", "metadata.name=nope")
    assert (none.stdout, none.stderr.strip()) == ("", "No resources found")
    only = kubectl(cp, "get", "nodes", "--field-selector", "metadata.name=cp-1", "-o", "name")
    assert only.stdout == "node/cp-1\n"
    ready = kubectl(cp, "wait", "--for=condition=Ready", "node/cp-1", "--timeout=30s")
    assert ready.stdout.strip() == "node/cp-1 condition met", ready.stderr
    rolled = kubectl(cp, "rollout", "status", "ds/lab-cni", "-n", "kube-system", "--timeout=30s")
    assert rolled.stdout.strip().endswith('daemon set "lab-cni" successfully rolled out'), \
        rolled.stderr


def test_daemonset_pods_follow_their_template(cluster: Any) -> None:  # noqa: F811
    """A changed DaemonSet template replaces the node's pod (rollout status waits for it); a
    DaemonSet that no longer fits the node, or is gone, takes its pod away."""
    cp = cluster[0]
    assert kubectl(cp, "apply", "-f", str(CNI)).returncode == 0

    def cni_pods() -> list[str]:
        return [p["metadata"]["name"] for p in pods(cp)
                if p["metadata"]["name"].startswith("lab-cni-")]

    assert wait_for(lambda: len(cni_pods()) == 1)
    first = cni_pods()[0]
    changed = CNI.read_text().replace("busybox:1.36", "busybox:1.37")
    assert kubectl(cp, "apply", "-f", "-", stdin=changed).returncode == 0
    rolled = kubectl(cp, "rollout", "status", "ds/lab-cni", "-n", "kube-system", "--timeout=30s")
    assert rolled.returncode == 0, rolled.stderr
    assert wait_for(lambda: cni_pods() not in ([], [first]))
    assert len(cni_pods()) == 1
    windows = changed.replace("      hostNetwork: true\n",
                              "      hostNetwork: true\n      nodeSelector: {kubernetes.io/os: "
                              "windows}\n")
    assert kubectl(cp, "apply", "-f", "-", stdin=windows).returncode == 0
    assert wait_for(lambda: cni_pods() == [])
    ds = kubectl(cp, "get", "ds", "lab-cni", "-n", "kube-system").stdout.splitlines()[1].split()
    assert ds[1:3] == ["0", "0"]


def lease_manifest(holder: str, version: str = "") -> str:
    meta: dict[str, Any] = {"name": "k8slk-ops-lock", "namespace": "kube-system"}
    if version:
        meta["resourceVersion"] = version
    return json.dumps({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                       "spec": {"holderIdentity": holder, "leaseDurationSeconds": 120}})


def test_leases_create_if_absent_and_replace_by_version(cluster: Any) -> None:  # noqa: F811
    """What the cluster lock relies on: 409 AlreadyExists on create, 409 Conflict on a replace
    of a version that changed meanwhile, delete."""
    cp = cluster[0]
    made = kubectl(cp, "create", "-f", "-", "-o", "json", stdin=lease_manifest("a"))
    assert made.returncode == 0, made.stderr
    version = json.loads(made.stdout)["metadata"]["resourceVersion"]
    again = kubectl(cp, "create", "-f", "-", stdin=lease_manifest("b"))
    assert again.returncode == 1
    assert again.stderr == ('Error from server (AlreadyExists): error when creating "STDIN": '
                            'leases.coordination.k8s.io "k8slk-ops-lock" already exists\n')
    renewed = kubectl(cp, "replace", "-f", "-", "-o", "json", stdin=lease_manifest("a", version))
    assert renewed.returncode == 0, renewed.stderr
    stale = kubectl(cp, "replace", "-f", "-", stdin=lease_manifest("a", version))
    assert stale.returncode == 1
    assert stale.stderr == ('Error from server (Conflict): error when replacing "STDIN": Operation '
                            'cannot be fulfilled on leases.coordination.k8s.io "k8slk-ops-lock": '
                            'the object has been modified; please apply your changes to the '
                            'latest version and try again\n')
    got = kubectl(cp, "get", "lease", "k8slk-ops-lock", "-n", "kube-system", "-o", "json")
    assert json.loads(got.stdout)["spec"]["holderIdentity"] == "a"
    gone = kubectl(cp, "delete", "lease", "k8slk-ops-lock", "-n", "kube-system")
    assert gone.stdout == 'lease.coordination.k8s.io "k8slk-ops-lock" deleted\n', gone.stderr
    missing = kubectl(cp, "get", "lease", "k8slk-ops-lock", "-n", "kube-system")
    assert missing.stderr == ('Error from server (NotFound): leases.coordination.k8s.io '
                              '"k8slk-ops-lock" not found\n')


FAILING_APPLY = {  # manifest -> the documents kubectl cannot map
    "one": ("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: kube-router\n"
            "  namespace: kube-system\n---\napiVersion: extensions/v1beta1\nkind: DaemonSet\n"
            "metadata:\n  name: kube-router\n  namespace: kube-system\nspec: {}\n"),
    "two": ("apiVersion: extensions/v1beta1\nkind: DaemonSet\nmetadata:\n  name: kube-router\n"
            "  namespace: kube-system\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"
            "  name: fine\n  namespace: kube-system\n---\napiVersion: example.com/v1\n"
            "kind: Widget\nmetadata:\n  name: w\n"),
}
ENDS = sorted({min(real_kubectls(), default=0), max(real_kubectls(), default=0)} - {0})


@pytest.mark.parametrize("minor", ENDS)
def test_a_failed_apply_prints_what_the_fleet_double_prints_and_is_explained(
    cluster: Any, minor: int, tmp_path: Path,  # noqa: F811
) -> None:
    """The oldest and newest real kubectl: the fleet's double prints the same texts, and the
    tool names each object kubectl could not map, at its file line."""
    cp = cluster[0]
    for case, text in FAILING_APPLY.items():
        real = subprocess.run(
            [real_kubectls()[minor], "--kubeconfig", str(cp.file("/etc/kubernetes/admin.conf")),
             "apply", "-f", "-"], capture_output=True, input=text.encode(), timeout=120)
        double, _ = fleet_objects.apply({}, text.encode(), "v1.31.3")  # the cluster fixture's
        assert (real.returncode, real.stderr) == (double.status, double.stderr), case
        path = tmp_path / f"{case}.yaml"
        path.write_text(text)
        addon = Addon(path, path.name, text, "")
        failure = explain_failure(path.name, real.returncode, real.stdout, real.stderr, addon)
        assert failure.lines == tuple(real.stderr.decode().splitlines())
        labels = [(f.label, f.where) for f in failure.failed]
        if case == "one":
            assert real.stdout.decode().splitlines() == ["serviceaccount/kube-router created"]
            assert labels == [("DaemonSet kube-system/kube-router", "one.yaml:7, document 2")]
        else:
            assert real.stdout.decode().splitlines() == ["configmap/fine created"]
            assert labels == [("DaemonSet kube-system/kube-router", "two.yaml:1, document 1"),
                              ("Widget w", "two.yaml:13, document 3")]
        assert failure.not_applied == () and failure.unplaced == ()
