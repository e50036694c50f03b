"""kubeadm's addon phase: the objects ``addon/coredns`` and ``addon/kube-proxy`` create.

CoreDNS is a Deployment of two replicas (with its ReplicaSet and two Pending pods, as the
controllers make them at once) that tolerates control planes; its pods stay Pending until a
node's kubelet has a pod network and binds them (see kubelet's ``Scheduler``). kube-proxy is
a ConfigMap and a DaemonSet that tolerates every taint, whose pods each kubelet runs. Both go
through the API as the admin client creates them, so ``kubectl get`` shows the real shapes.

An object that exists already (an init onto an etcd restored from a snapshot) is updated, as
kubeadm's ``apiclient.CreateOrUpdate*`` do; the CoreDNS ConfigMap is kept as it is
(``CreateOrRetainConfigMap``: a Corefile someone edited stays), and a Deployment that existed
keeps its ReplicaSet and pods.
"""

from __future__ import annotations

import hashlib
from typing import Any

from k8sdouble import kubeversions, rest
from k8sdouble.client import Client
from k8sdouble.cluster import call, out, version_tuple
from k8sdouble.errors import ApiError, CommandError

COREDNS_VERSION = "v1.11.3"
KUBE_PROXY_CONFIG = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: {pod_subnet}
mode: ""
"""


def registry(version: str) -> str:
    """kubeadm's default image repository: k8s.gcr.io before v1.25."""
    return "k8s.gcr.io" if version_tuple(version)[:2] < (1, 25) else "registry.k8s.io"


def _post(admin: Client, path: str, body: dict[str, Any], *,
          retain: bool = False) -> dict[str, Any]:
    """Create the object; one that exists is replaced (or, with ``retain``, kept)."""
    answer, _ = _create_or_update(admin, path, body, retain=retain)
    return answer


def _create_or_update(admin: Client, path: str, body: dict[str, Any], *,
                      retain: bool = False) -> tuple[dict[str, Any], bool]:
    """kubeadm's CreateOrUpdate (``retain``: CreateOrRetain): the object, and whether it is new."""
    try:
        return admin.request("POST", path, body), True
    except ApiError as exc:
        if exc.status == 0:
            raise CommandError(f'Get "{admin.server}{path}": {exc.message}') from None
        if exc.status != 409:
            raise CommandError(exc.message or f"the server answered {exc.status}") from None
    named = f"{path}/{body['metadata']['name']}"
    kept: dict[str, Any] = call(admin, "GET" if retain else "PUT", named,
                                None if retain else body)
    return kept, False


def kube_proxy(admin: Client, version: str, pod_subnet: str, server: str) -> None:
    ns = "/api/v1/namespaces/kube-system"
    _post(admin, f"{ns}/serviceaccounts", {"metadata": {"name": "kube-proxy"}})
    _post(admin, f"{ns}/configmaps", {
        "metadata": {"name": "kube-proxy", "labels": {"app": "kube-proxy"}},
        "data": {"config.conf": KUBE_PROXY_CONFIG.format(pod_subnet=pod_subnet),
                 "kubeconfig.conf": f"apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n"
                                    f"    server: {server}\n  name: default\n"}})
    labels = {"k8s-app": "kube-proxy"}
    _post(admin, "/apis/apps/v1/namespaces/kube-system/daemonsets", {
        "metadata": {"name": "kube-proxy", "labels": labels},
        "spec": {"selector": {"matchLabels": labels},
                 "updateStrategy": {"type": "RollingUpdate"},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "priorityClassName": "system-node-critical", "hostNetwork": True,
                     "serviceAccountName": "kube-proxy",
                     "nodeSelector": {"kubernetes.io/os": "linux"},
                     "tolerations": [{"operator": "Exists"}],
                     "containers": [{
                         "name": "kube-proxy", "image": f"{registry(version)}/kube-proxy:{version}",
                         "command": ["/usr/local/bin/kube-proxy",
                                     "--config=/var/lib/kube-proxy/config.conf",
                                     "--hostname-override=$(NODE_NAME)"],
                         "securityContext": {"privileged": True},
                         "volumeMounts": [{"mountPath": "/var/lib/kube-proxy",
                                           "name": "kube-proxy"}]}],
                     "volumes": [{"name": "kube-proxy",
                                  "configMap": {"name": "kube-proxy"}}]}}}})
    out("[addons] Applied essential addon: kube-proxy")


def upgrade_kube_proxy(admin: Client, version: str) -> None:
    """``kubeadm upgrade apply``: the kube-proxy DaemonSet (if the cluster has one) runs the
    new version's image."""
    path = "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy"
    try:
        admin.request("GET", path)
    except ApiError as exc:
        if exc.status == 404:
            return
        raise CommandError(exc.message) from None
    call(admin, "PATCH", path, {"spec": {"template": {"spec": {"containers": [
        {"name": "kube-proxy", "image": f"{registry(version)}/kube-proxy:{version}"}]}}}},
         "application/strategic-merge-patch+json")


def coredns(admin: Client, dns_ip: str, domain: str, version: str) -> None:
    ns = "/api/v1/namespaces/kube-system"
    labels = {"k8s-app": "kube-dns"}
    _post(admin, f"{ns}/serviceaccounts", {"metadata": {"name": "coredns"}})
    _post(admin, f"{ns}/configmaps", {"metadata": {"name": "coredns"}, "data": {
        "Corefile": f".:53 {{\n    errors\n    health\n    kubernetes {domain} in-addr.arpa "
                    "ip6.arpa\n    forward . /etc/resolv.conf\n    cache 30\n}\n"}}, retain=True)
    _post(admin, f"{ns}/services", {
        "metadata": {"name": "kube-dns", "labels": labels},
        "spec": {"clusterIP": dns_ip, "selector": labels, "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}})
    template = {"metadata": {"labels": labels}, "spec": {
        "priorityClassName": "system-cluster-critical", "serviceAccountName": "coredns",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": kubeversions.coredns_tolerations(kubeversions.minor(version)),
        "containers": [{"name": "coredns",
                        "image": f"registry.k8s.io/coredns/coredns:{COREDNS_VERSION}",
                        "args": ["-conf", "/etc/coredns/Corefile"]}]}}
    deploy, new = _create_or_update(admin, "/apis/apps/v1/namespaces/kube-system/deployments", {
        "metadata": {"name": "coredns", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template}})
    if new:
        start_replicas(admin, deploy)
    out("[addons] Applied essential addon: CoreDNS")


def start_replicas(admin: Client, deploy: dict[str, Any]) -> None:
    """What the Deployment and ReplicaSet controllers do for a new Deployment: one
    ReplicaSet, and its pods, Pending until something binds them to a node."""
    meta, spec = deploy["metadata"], deploy["spec"]
    ns = meta["namespace"]
    digest = hashlib.sha256(repr(spec["template"]).encode()).hexdigest()
    pod_hash = "".join(c for c in digest if c in "bcdf5678")[:10] or digest[:10]
    labels = dict(spec["template"]["metadata"].get("labels", {}), **{
        "pod-template-hash": pod_hash})
    rs_name = f"{meta['name']}-{pod_hash}"
    rs = _post(admin, f"/apis/apps/v1/namespaces/{ns}/replicasets", {
        "metadata": {"name": rs_name, "labels": labels, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"replicas": spec.get("replicas", 1), "selector": {"matchLabels": labels},
                 "template": dict(spec["template"], metadata={"labels": labels})}})
    for _ in range(spec.get("replicas", 1)):
        _post(admin, f"/api/v1/namespaces/{ns}/pods", {
            "metadata": {"name": f"{rs_name}-{rest.suffix()}", "labels": labels,
                         "ownerReferences": [{
                             "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                             "uid": rs["metadata"]["uid"], "controller": True,
                             "blockOwnerDeletion": True}]},
            "spec": spec["template"]["spec"], "status": {"phase": "Pending"}})
