"""The API objects the fleet's cluster keeps besides Nodes: what ``kubectl apply -f -``,
``get configmap`` and ``delete`` touch (addon manifests, the tool's record, kube-proxy).

Answers use kubectl's own words: ``<kind>[.<group>]/<name> created|configured|unchanged``,
``error: resource mapping not found ...`` for a kind the server does not serve, ``Error from
server (NotFound)`` for a missing object. A DaemonSet whose pods mount hostPath
``/etc/cni/net.d`` installs the pod network, as the lab's kubelet treats it.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from k8sdouble import kubeversions

from tests.fleet.result import Result

CNI_DIR = "/etc/cni/net.d"
NAMESPACED = {"ConfigMap", "ServiceAccount", "DaemonSet", "Deployment", "Role", "RoleBinding",
              "Secret", "Service", "CronJob"}
# The kinds the fleet stores; which group versions serve each in which minor is the lab's table
# (kubeversions.SERVED), as for the lab's API server.
SERVED = {  # kind -> (resource, group) as kubectl names them in its output
    "ConfigMap": ("configmap", ""),
    "ServiceAccount": ("serviceaccount", ""),
    "Secret": ("secret", ""),
    "Service": ("service", ""),
    "Namespace": ("namespace", ""),
    "DaemonSet": ("daemonset", "apps"),
    "Deployment": ("deployment", "apps"),
    "CronJob": ("cronjob", "batch"),
    "ClusterRole": ("clusterrole", "rbac.authorization.k8s.io"),
    "ClusterRoleBinding": ("clusterrolebinding", "rbac.authorization.k8s.io"),
    "Role": ("role", "rbac.authorization.k8s.io"),
    "RoleBinding": ("rolebinding", "rbac.authorization.k8s.io"),
}
Key = tuple[str, str, str]  # kind, namespace, name


def kube_proxy_objects() -> dict[Key, dict[str, Any]]:
    """What kubeadm's addon/kube-proxy phase creates."""
    meta = {"namespace": "kube-system", "name": "kube-proxy"}
    return {
        ("DaemonSet", "kube-system", "kube-proxy"): {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta},
        ("ConfigMap", "kube-system", "kube-proxy"): {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}},
    }


def with_kubeadm_defaults(cluster: dict[str, Any]) -> dict[str, Any]:
    """A ClusterConfiguration as kubeadm keeps it: what it was given, and its defaults for what
    it was not (the fields the tool never renders)."""
    out = dict(cluster)
    out.setdefault("certificatesDir", "/etc/kubernetes/pki")
    out.setdefault("imageRepository", "registry.k8s.io")
    out.setdefault("etcd", {"local": {"dataDir": "/var/lib/etcd"}})
    out.setdefault("apiServer", {})
    out.setdefault("controllerManager", {})
    out.setdefault("scheduler", {})
    out.setdefault("dns", {})
    return out


def kubeadm_configmaps(cluster: dict[str, Any], kubelet: dict[str, Any],
                       version: str) -> dict[Key, dict[str, Any]]:
    """kubeadm's upload-config phase: ``kubeadm-config`` (key ClusterConfiguration) and the
    kubelets' configuration (``kubelet-config``; ``kubelet-config-1.NN`` before 1.24), with
    kubeadm's defaults beside what it was given."""
    minor = int(version.lstrip("v").split(".")[1])
    kubelet_doc = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                   "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
                   "clusterDNS": ["10.96.0.10"], "clusterDomain": "cluster.local",
                   "rotateCertificates": True, "staticPodPath": "/etc/kubernetes/manifests",
                   **{k: v for k, v in kubelet.items() if k not in ("apiVersion", "kind")}}
    kubelet_name = "kubelet-config" if minor >= 24 else f"kubelet-config-1.{minor}"

    def configmap(name: str, key: str, doc: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "kube-system"},
                "data": {key: yaml.safe_dump(doc, sort_keys=True)}}

    return {
        ("ConfigMap", "kube-system", "kubeadm-config"):
            configmap("kubeadm-config", "ClusterConfiguration", cluster),
        ("ConfigMap", "kube-system", kubelet_name): configmap(kubelet_name, "kubelet", kubelet_doc),
    }


def listed(objects: dict[Key, dict[str, Any]], kind: str, namespace: str) -> Result:
    """``kubectl get KINDs -n NAMESPACE -o json``: a List of every such object there."""
    items = [obj for (k, ns, _), obj in sorted(objects.items()) if (k, ns) == (kind, namespace)]
    return Result.ok(json.dumps({"apiVersion": "v1", "items": items, "kind": "List",
                                 "metadata": {"resourceVersion": ""}}, indent=4) + "\n")


def _label(kind: str) -> str:
    resource, group = SERVED[kind]
    return f"{resource}.{group}" if group else resource


def apply(objects: dict[Key, dict[str, Any]], stdin: bytes,
          version: str) -> tuple[Result, bool]:
    """``kubectl apply -f -`` against a cluster of ``version``: the result, and whether a pod
    network DaemonSet was applied.

    As kubectl does, every document is read first and those it cannot map (an unknown kind,
    no kind, a kind in a group version that minor does not serve: ``extensions/v1beta1``
    DaemonSets, ``batch/v1beta1`` CronJobs from 1.25...) are errors; the others are applied;
    then the errors are printed, one as ``error: <message>``, several each on its own lines
    without the prefix."""
    minor = kubeversions.minor(version)
    docs: list[Any] = []
    errors: list[str] = []
    try:
        for doc in yaml.safe_load_all(stdin.decode()):
            if doc is not None:
                docs.append(doc)
    except yaml.YAMLError as exc:
        errors.append(f"error parsing STDIN: {exc}")
    out, network, ready = [], False, []
    for doc in docs:
        kind, api = doc.get("kind"), doc.get("apiVersion")
        meta = doc.get("metadata") or {}
        if not kind or not api:
            missing = "kind" if not kind else "apiVersion"
            errors.append('error validating "STDIN": error validating data: '
                          f"{missing} not set; if you choose to ignore these errors, "
                          "turn validation off with --validate=false")
        elif kind not in SERVED or not kubeversions.serves(minor, str(api), str(kind)):
            errors.append(f'resource mapping not found for name: "{meta.get("name", "")}" '
                          f'namespace: "{meta.get("namespace", "")}" from "STDIN": no matches '
                          f'for kind "{kind}" in version "{api}"\nensure CRDs are installed first')
        else:
            ready.append(doc)
    for doc in ready:
        kind, meta = doc["kind"], doc.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default") if kind in NAMESPACED else ""
        key = (kind, namespace, str(meta.get("name")))
        before = objects.get(key)
        objects[key] = doc
        verb = "created" if before is None else "unchanged" if before == doc else "configured"
        out.append(f"{_label(kind)}/{key[2]} {verb}\n")
        network = network or (kind == "DaemonSet" and _mounts_cni(doc))
    if not errors:
        return Result.ok("".join(out)), network
    stderr = f"error: {errors[0]}\n" if len(errors) == 1 else "".join(f"{e}\n" for e in errors)
    return Result(1, "".join(out).encode(), stderr.encode()), network


def _mounts_cni(doc: dict[str, Any]) -> bool:
    volumes = (((doc.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes")
    return any((v.get("hostPath") or {}).get("path") == CNI_DIR for v in volumes or [])


def get(objects: dict[Key, dict[str, Any]], kind: str, namespace: str, name: str,
        ignore_missing: bool) -> Result:
    """``kubectl get KIND NAME -o json`` (``--ignore-not-found``: nothing when missing)."""
    obj = objects.get((kind, namespace, name))
    if obj is None:
        if ignore_missing:
            return Result.ok("")
        return Result.error(1, f'Error from server (NotFound): {SERVED[kind][0]}s "{name}" not '
                               "found\n")
    return Result.ok(json.dumps(obj, indent=4) + "\n")


def delete(objects: dict[Key, dict[str, Any]], refs: list[str], namespace: str,
           ignore_missing: bool) -> Result:
    """``kubectl delete kind/name ...``"""
    kinds = {resource: kind for kind, (resource, _) in SERVED.items()}
    out = []
    for ref in refs:
        resource, _, name = ref.partition("/")
        kind = kinds.get(resource.split(".")[0])
        if kind is None:
            return Result.error(1, f'error: the server doesn\'t have a resource type "{resource}"\n')
        key = (kind, namespace if kind in NAMESPACED else "", name)
        if objects.pop(key, None) is None:
            if ignore_missing:
                continue
            return Result.error(1, f'Error from server (NotFound): {resource}s "{name}" not '
                                   "found\n")
        out.append(f'{_label(kind)} "{name}" deleted\n')
    return Result.ok("".join(out))
