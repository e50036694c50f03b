"""What kubeadm keeps in the cluster, and the flags it writes into the control plane's manifests.

Real kubeadm's upload-config phase (init, and upgrade apply) stores the ClusterConfiguration it
ran with, its defaults filled in and converted to its own newest API version, under the key
``ClusterConfiguration`` of ``kube-system/kubeadm-config``, and the KubeletConfiguration under
``kubelet`` of ``kube-system/kubelet-config`` (``kubelet-config-1.NN`` before Kubernetes 1.24).
A joining node reads both from there (its bootstrap token may), and every control plane's static
pod manifests get kubeadm's own flags, overridden by the configuration's ``extraArgs`` of the
same name, sorted by name (kubeadm's ``ArgumentsToCommand``).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from k8sdouble import config
from k8sdouble.client import Client
from k8sdouble.errors import ApiError, CommandError

NAMESPACE_PATH = "/api/v1/namespaces/kube-system/configmaps"
KUBEADM_CONFIG = "kubeadm-config"
# Where a ClusterConfiguration keeps each static pod's flags.
ARG_SECTIONS = {
    "kube-apiserver": ("apiServer",),
    "kube-controller-manager": ("controllerManager",),
    "kube-scheduler": ("scheduler",),
    "etcd": ("etcd", "local"),
}


def kubelet_config_name(version: str) -> str:
    """``kubelet-config`` from Kubernetes 1.24 on, ``kubelet-config-1.NN`` before."""
    minor = config._minor(version)
    return "kubelet-config" if minor >= 24 else f"kubelet-config-1.{minor}"


def _merge(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def arg_pairs(value: Any) -> list[tuple[str, str]]:
    """extraArgs in either style: a map (before v1beta4) or a list of {name, value}."""
    if isinstance(value, dict):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [(str(a.get("name")), str(a.get("value", ""))) for a in value if isinstance(a, dict)]
    return []


def kept_cluster_configuration(given: dict[str, Any], kube_version: str,
                               kubernetes_version: str) -> dict[str, Any]:
    """The ClusterConfiguration as kubeadm ``kube_version`` uploads it: defaults filled in, in
    its newest API version (extraArgs as a list from v1beta4 on)."""
    api = config.default_api_version(kube_version)
    minor = config._minor(kube_version)
    defaults: dict[str, Any] = {
        "apiServer": {}, "certificatesDir": "/etc/kubernetes/pki",
        "clusterName": config.DEFAULT_CLUSTER_NAME, "controllerManager": {}, "dns": {},
        "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
        "imageRepository": "registry.k8s.io" if minor >= 25 else "k8s.gcr.io",
        "networking": {"dnsDomain": "cluster.local",
                       "serviceSubnet": config.DEFAULT_SERVICE_SUBNET},
        "scheduler": {},
    }
    if api.endswith("/v1beta4"):
        defaults.update({"caCertificateValidityPeriod": "87600h0m0s",
                         "certificateValidityPeriod": "8760h0m0s",
                         "encryptionAlgorithm": "RSA-2048", "proxy": {}})
    else:
        defaults["apiServer"] = {"timeoutForControlPlane": "4m0s"}
    if api.endswith("/v1beta2"):
        defaults["dns"] = {"type": "CoreDNS"}
    body = {k: v for k, v in given.items() if k not in ("apiVersion", "kind")}
    doc = _merge(defaults, body)
    doc["kubernetesVersion"] = kubernetes_version
    for section in ARG_SECTIONS.values():
        holder: Any = doc
        for part in section:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and "extraArgs" in holder:
            pairs = arg_pairs(holder["extraArgs"])
            holder["extraArgs"] = ([{"name": n, "value": v} for n, v in pairs]
                                   if api.endswith("/v1beta4") else dict(pairs))
    return {"apiVersion": api, "kind": "ClusterConfiguration", **dict(sorted(doc.items()))}


def kept_kubelet_configuration(given: dict[str, Any], cluster_dns: str,
                               domain: str) -> dict[str, Any]:
    """The KubeletConfiguration kubeadm uploads and writes to /var/lib/kubelet/config.yaml:
    what it was given over its defaults."""
    defaults: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False},
                           "webhook": {"cacheTTL": "0s", "enabled": True},
                           "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
        "authorization": {"mode": "Webhook",
                          "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"}},
        "cgroupDriver": "systemd", "clusterDNS": [cluster_dns], "clusterDomain": domain,
        "healthzBindAddress": "127.0.0.1", "healthzPort": 10248, "rotateCertificates": True,
        "staticPodPath": "/etc/kubernetes/manifests",
    }
    body = {k: v for k, v in given.items() if k not in ("apiVersion", "kind")}
    return _merge(defaults, body)


def _put(client: Client, name: str, data: dict[str, str]) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "kube-system"}, "data": data}
    try:
        client.request("POST", NAMESPACE_PATH, body)
    except ApiError as exc:
        if exc.status != 409:
            raise CommandError(f"error uploading configuration: {exc.message}") from None
        try:
            client.request("PUT", f"{NAMESPACE_PATH}/{name}", body)
        except ApiError as again:
            raise CommandError(f"error uploading configuration: {again.message}") from None


def upload(client: Client, cluster_config: dict[str, Any], kubelet: dict[str, Any],
           version: str) -> None:
    """The upload-config phase: both ConfigMaps, created or replaced."""
    _put(client, KUBEADM_CONFIG,
         {"ClusterConfiguration": yaml.safe_dump(cluster_config, sort_keys=False)})
    _put(client, kubelet_config_name(version),
         {"kubelet": yaml.safe_dump(kubelet, sort_keys=False)})


def download(client: Client, name: str, key: str) -> dict[str, Any]:
    """A configuration kubeadm keeps in the cluster (CommandError as kubeadm words it)."""
    try:
        found = client.request("GET", f"{NAMESPACE_PATH}/{name}")
    except ApiError as exc:
        raise CommandError(f"unable to fetch the {name} ConfigMap: {exc.message}") from None
    text = (found.get("data") or {}).get(key)
    doc = yaml.safe_load(text) if isinstance(text, str) else None
    if not isinstance(doc, dict):
        raise CommandError(f"unexpected error when reading {name} ConfigMap: {key} key value "
                           "pair missing")
    return doc


def flags(component: str, own: list[str], cluster_config: dict[str, Any] | None) -> list[str]:
    """The component's command flags: kubeadm's own (``--name=value``), each overridden by an
    extraArgs entry of the same name, sorted by name (repeats kept in their order)."""
    holder: Any = cluster_config or {}
    for part in ARG_SECTIONS[component]:
        holder = holder.get(part) if isinstance(holder, dict) else None
    extra = arg_pairs(holder.get("extraArgs") if isinstance(holder, dict) else None)
    names = {n for n, _ in extra}
    base = [tuple(a[2:].split("=", 1)) for a in own]
    merged = [(n, v) for n, v in base if n not in names] + extra
    return [f"--{n}={v}" for n, v in sorted(merged, key=lambda p: p[0])]
