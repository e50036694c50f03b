"""Render the kubeadm configuration file for one node, for the API version its kubeadm speaks.

``render_init`` gives InitConfiguration + ClusterConfiguration + KubeletConfiguration (and any
other component configuration the user overrides); ``render_join`` gives a JoinConfiguration,
whose discovery always pins the CA. The user's overrides (the inventory's ``cluster.kubeadm``)
are merged per kind after conversion to the target version's style; what comes out is checked
again, so no override can switch the CA check off or add a field the version lacks.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from k8slk_ops.kubeadm.args import ARG_PATHS, merge_pairs, render_pairs, to_pairs
from k8slk_ops.kubeadm.capin import is_ca_cert_hash
from k8slk_ops.kubeadm.errors import RenderError
from k8slk_ops.kubeadm.fields import check_fields, check_overrides, convert_overrides
from k8slk_ops.kubeadm.merge import deep_merge, get_path, pop_path, set_path
from k8slk_ops.kubeadm.spec import BootstrapTokenSpec, InitSpec, JoinSpec, Overrides
from k8slk_ops.kubeadm.versions import ConfigApi
from k8slk_ops.kubeadm.yamlout import dump_all

KUBELET_API = "kubelet.config.k8s.io/v1beta1"
KUBE_PROXY_API = "kubeproxy.config.k8s.io/v1alpha1"
SKIP_KUBE_PROXY = "addon/kube-proxy"
KUBEADM_KINDS = ("InitConfiguration", "ClusterConfiguration", "JoinConfiguration")
# Component configurations kubeadm accepts next to its own kinds, with their API versions.
COMPONENT_KINDS = {"KubeletConfiguration": KUBELET_API, "KubeProxyConfiguration": KUBE_PROXY_API}


def _api_version(kind: str, api: ConfigApi) -> str:
    return COMPONENT_KINDS.get(kind) or api.group_version


def _labels_arg(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    for key, value in labels.items():
        if not key or any(c in f"{key}{value}" for c in ",= \t\n"):
            raise RenderError(f"a node label cannot contain ',', '=' or spaces: {key}={value}")
    if not labels:
        return []
    return [("node-labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items())))]


def _copy_overrides(overrides: Overrides) -> dict[str, dict[str, Any]]:
    """The user's overrides, copied, with ``apiVersion``/``kind`` checked and removed.

    One set of overrides serves init and join alike (the inventory has one), so each renderer
    takes the kinds it writes and leaves the others.
    """
    known = (*KUBEADM_KINDS, *COMPONENT_KINDS)
    check_overrides(overrides)
    out: dict[str, dict[str, Any]] = {}
    for kind, body in overrides.items():
        if kind not in known:
            raise RenderError(
                f"unknown kind {kind!r} in the kubeadm overrides (known: {', '.join(known)})"
            )
        if not isinstance(body, Mapping):
            raise RenderError(f"the override of {kind} must be a mapping")
        doc = copy.deepcopy(dict(body))
        if doc.pop("kind", kind) != kind:
            raise RenderError(f"the override of {kind} names another kind")
        doc.pop("apiVersion", None)  # the node's kubeadm decides; any version is converted
        out[kind] = doc
    return out


def _finish(
    kind: str, base: dict[str, Any], override: Mapping[str, Any], api: ConfigApi
) -> dict[str, Any]:
    """Merge one kind: arguments by name, everything else deep; then version checks."""
    base = copy.deepcopy(base)
    theirs_doc: dict[str, Any] = copy.deepcopy(dict(override))
    args: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for path in ARG_PATHS.get(kind, ()):
        where = f"{kind}.{'.'.join(path)}"
        ours = to_pairs(pop_path(base, path), where)
        theirs = to_pairs(pop_path(theirs_doc, path), where)
        if ours or theirs:
            args[path] = merge_pairs(ours, theirs)
    doc = deep_merge(base, theirs_doc)
    for path, pairs in args.items():
        set_path(doc, path, render_pairs(pairs, api, f"{kind}.{'.'.join(path)}"))
    check_fields(kind, doc, api)
    head = {"apiVersion": _api_version(kind, api), "kind": kind}
    return {**head, **doc}


def _node_registration(
    name: str, node_ip: str, labels: Mapping[str, str], cri_socket: str
) -> dict[str, Any]:
    kubelet_args = dict([("node-ip", node_ip), *_labels_arg(labels)])
    return {"name": name, "criSocket": cri_socket, "kubeletExtraArgs": kubelet_args}


def init_documents(spec: InitSpec, api: str | ConfigApi) -> list[dict[str, Any]]:
    """The documents of an init file, as data (what ``render_init`` writes)."""
    api = ConfigApi.of(api)
    overrides = _copy_overrides(spec.overrides)
    convert_overrides(overrides, api)
    init: dict[str, Any] = {
        "nodeRegistration": _node_registration(
            spec.node_name, spec.kubelet_node_ip, spec.node_labels, spec.cri_socket
        ),
        "localAPIEndpoint": {
            "advertiseAddress": spec.advertise_address,
            "bindPort": spec.bind_port,
        },
    }
    if spec.bootstrap_tokens:
        init["bootstrapTokens"] = [_token(t) for t in spec.bootstrap_tokens]
    if spec.certificate_key is not None:
        init["certificateKey"] = spec.certificate_key
    if not spec.kube_proxy and api != ConfigApi.V1BETA2:
        # v1beta2 has no skipPhases: the init step deletes kube-proxy after init instead.
        init["skipPhases"] = [SKIP_KUBE_PROXY]
    networking: dict[str, Any] = {"dnsDomain": spec.dns_domain}
    if spec.pod_subnet:
        networking["podSubnet"] = spec.pod_subnet
    if spec.service_subnet:
        networking["serviceSubnet"] = spec.service_subnet
    cluster: dict[str, Any] = {
        "kubernetesVersion": str(spec.version),
        "clusterName": spec.cluster_name,
        "networking": networking,
    }
    if spec.control_plane_endpoint:
        cluster["controlPlaneEndpoint"] = spec.control_plane_endpoint
    if spec.cert_sans:
        cluster["apiServer"] = {"certSANs": list(spec.cert_sans)}
    kubelet: dict[str, Any] = {"cgroupDriver": "cgroupfs"}
    docs = [
        _finish("InitConfiguration", init, overrides.get("InitConfiguration", {}), api),
        _finish("ClusterConfiguration", cluster, overrides.get("ClusterConfiguration", {}), api),
        _finish("KubeletConfiguration", kubelet, overrides.get("KubeletConfiguration", {}), api),
    ]
    if "KubeProxyConfiguration" in overrides:
        proxy = overrides["KubeProxyConfiguration"]
        docs.append(_finish("KubeProxyConfiguration", {}, proxy, api))
    return docs


def _token(t: BootstrapTokenSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "token": t.token,
        "ttl": t.ttl,
        "usages": list(t.usages),
        "groups": list(t.groups),
    }
    if t.description:
        out["description"] = t.description
    return out


def join_documents(spec: JoinSpec, api: str | ConfigApi) -> list[dict[str, Any]]:
    """The documents of a join file, as data (what ``render_join`` writes).

    Only the JoinConfiguration: a joining node takes the cluster's kubelet and kube-proxy
    configuration from the cluster, and kubeadm join ignores other kinds.
    """
    api = ConfigApi.of(api)
    overrides = _copy_overrides(spec.overrides)
    convert_overrides(overrides, api)
    node_ip = spec.node_ip or spec.advertise_address
    registration = _node_registration(
        spec.node_name, node_ip or "", spec.node_labels, spec.cri_socket
    )
    if node_ip is None:
        del registration["kubeletExtraArgs"]["node-ip"]
    join: dict[str, Any] = {
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": spec.api_server_endpoint,
                "token": spec.token,
                "caCertHashes": list(spec.ca_cert_hashes),
                "unsafeSkipCAVerification": False,
            }
        },
        "nodeRegistration": registration,
    }
    if spec.discovery_timeout is not None:
        if api is ConfigApi.V1BETA4:
            join["timeouts"] = {"discovery": spec.discovery_timeout}
        else:
            join["discovery"]["timeout"] = spec.discovery_timeout
    if spec.control_plane:
        join["controlPlane"] = {
            "localAPIEndpoint": {
                "advertiseAddress": spec.control_plane_address,
                "bindPort": spec.bind_port,
            },
            "certificateKey": spec.certificate_key,
        }
    doc = _finish("JoinConfiguration", join, overrides.get("JoinConfiguration", {}), api)
    _check_pinned(doc)
    return [doc]


def _check_pinned(doc: Mapping[str, Any]) -> None:
    """After the merge: the CA is still pinned, and by nothing but valid pins."""
    discovery = doc.get("discovery")
    if not isinstance(discovery, Mapping) or "file" in discovery:
        raise RenderError("joins use bootstrap-token discovery with a CA pin, not discovery.file")
    if get_path(doc, ("discovery", "bootstrapToken", "unsafeSkipCAVerification")) is not False:
        raise RenderError("unsafeSkipCAVerification must stay false: the CA is always pinned")
    pins = get_path(doc, ("discovery", "bootstrapToken", "caCertHashes"))
    if not isinstance(pins, list) or not pins:
        raise RenderError("refusing to render a join without a CA pin (caCertHashes)")
    for pin in pins:
        if not isinstance(pin, str) or not is_ca_cert_hash(pin):
            raise RenderError(f"not a CA pin (sha256:<64 lowercase hex>): {pin!r}")


def render_init(spec: InitSpec, api: str | ConfigApi) -> str:
    """The init file (multi-document YAML) for a node whose kubeadm speaks ``api``."""
    return dump_all(init_documents(spec, api))


def render_join(spec: JoinSpec, api: str | ConfigApi) -> str:
    """The join file (one JoinConfiguration) for a node whose kubeadm speaks ``api``."""
    return dump_all(join_documents(spec, api))
