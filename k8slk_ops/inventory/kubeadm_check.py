"""The inventory's kubeadm overrides, checked when it loads rather than when init runs.

Two checks, both without a node: overrides of what the tool decides itself (the join's CA
pinning, the run's token and certificate key, node names) are refused at their key; and the
init and join files are rendered once, with placeholder credentials and addresses, so that an
override kubeadm's configuration cannot take is reported by ``inventory check``, not after the
first control plane was initialised. Without a pinned ``kubernetesVersion`` the node's kubeadm
will choose the API version, so the render only fails when no supported version can take it.
"""

from __future__ import annotations

import re
from typing import Any

from k8slk_ops import kubeadm
from k8slk_ops.inventory.model import Inventory, Problem
from k8slk_ops.kubeadm.fields import forbidden_overrides

PREFIX = ("cluster", "kubeadm")
# Placeholders: documentation addresses (RFC 5737) and credentials of the right shape.
_ADDRESS = "192.0.2.10"
_TOKEN = "abcdef.0123456789abcdef"
_PIN = "sha256:" + "0" * 64
_KEY = "0" * 64
# A release per config API, to render for when the inventory pins no version.
_RELEASE_OF = {
    kubeadm.ConfigApi.V1BETA4: "v1.31.0",
    kubeadm.ConfigApi.V1BETA3: "v1.30.0",
    kubeadm.ConfigApi.V1BETA2: "v1.21.0",
}
_KIND_PATH = re.compile(
    r"\b(InitConfiguration|ClusterConfiguration|JoinConfiguration|KubeletConfiguration"
    r"|KubeProxyConfiguration)((?:\.[A-Za-z][\w-]*)*)"
)


def kubeadm_problems(inventory: Inventory) -> list[Problem]:
    """Refused overrides at their keys, else the render error (if any), at the nearest key."""
    overrides = inventory.cluster.kubeadm.as_mapping()
    refused: list[Problem] = [
        ((*PREFIX, kind, *path), why) for kind, path, why in forbidden_overrides(overrides)
    ]
    if refused:
        return refused
    error = _render_error(inventory, overrides)
    return [] if error is None else [error]


def _render_error(inventory: Inventory, overrides: dict[str, dict[str, Any]]) -> Problem | None:
    pinned = inventory.cluster.kubernetes_version
    if pinned is not None:
        try:
            releases = [(kubeadm.config_api_version(pinned), pinned)]
        except kubeadm.KubeadmError as exc:
            return ("cluster", "kubernetesVersion"), str(exc)
    else:
        releases = list(_RELEASE_OF.items())
    failures = []
    for api, release in releases:
        try:
            kubeadm.render_init(_init_spec(inventory, release, overrides), api)
            kubeadm.render_join(_join_spec(inventory, overrides, control_plane=True), api)
            kubeadm.render_join(_join_spec(inventory, overrides, control_plane=False), api)
            return None
        except kubeadm.KubeadmError as exc:
            failures.append((api, str(exc)))
    api, message = failures[0]
    return _located(message), f"cannot be rendered for kubeadm.k8s.io/{api}: {message}"


def _located(message: str) -> tuple[str, ...]:
    """The override a render error names (``ClusterConfiguration.apiServer.extraArgs``)."""
    m = _KIND_PATH.search(message)
    if m is None:
        return PREFIX
    return (*PREFIX, m.group(1), *(p for p in m.group(2).split(".") if p))


def _init_spec(
    inventory: Inventory, release: str, overrides: dict[str, dict[str, Any]]
) -> kubeadm.InitSpec:
    cluster = inventory.cluster
    first = inventory.first_control_plane
    return kubeadm.InitSpec(
        node_name=first.name,
        advertise_address=_ADDRESS,
        kubernetes_version=release,
        cluster_name=cluster.name,
        control_plane_endpoint=inventory.endpoint,
        pod_subnet=cluster.pod_subnet,
        service_subnet=cluster.service_subnet,
        dns_domain=cluster.dns_domain,
        cert_sans=tuple(cluster.cert_sans),
        bootstrap_tokens=(kubeadm.BootstrapTokenSpec(token=_TOKEN, ttl="30m"),),
        node_labels=dict(first.labels),
        overrides=overrides,
        kube_proxy=cluster.kube_proxy,
    )


def _join_spec(
    inventory: Inventory, overrides: dict[str, dict[str, Any]], *, control_plane: bool
) -> kubeadm.JoinSpec:
    return kubeadm.JoinSpec(
        node_name=inventory.first_control_plane.name,
        api_server_endpoint=inventory.endpoint,
        token=_TOKEN,
        ca_cert_hashes=(_PIN,),
        node_ip=_ADDRESS,
        control_plane=control_plane,
        advertise_address=_ADDRESS if control_plane else None,
        certificate_key=_KEY if control_plane else None,
        overrides=overrides,
    )
