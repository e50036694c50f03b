"""From inventory and facts to the kubeadm specs the pure renderer takes.

The Kubernetes version comes from the inventory when it pins one, else from the node's own
kubeadm: nothing is assumed about a node.
"""

from __future__ import annotations

from typing import Any

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import JoinCredentials, PlanContext
from k8slk_ops.inventory import checks
from k8slk_ops.node.facts import NodeFacts

KINDS = (
    "InitConfiguration",
    "ClusterConfiguration",
    "JoinConfiguration",
    "KubeletConfiguration",
    "KubeProxyConfiguration",
)


def api_for(facts: NodeFacts) -> kubeadm.ConfigApi:
    """The config API version the node's kubeadm speaks; NodeError when it cannot be told."""
    try:
        return kubeadm.config_api_version(facts.kubeadm_version)
    except kubeadm.KubeadmError as exc:
        shown = facts.kubeadm_version or "no version"
        raise NodeError(f"cannot use this node's kubeadm ({shown}): {exc}", phase="preflight") from None


def api_label(facts: NodeFacts) -> str:
    """For plans: the API version, or why there is none (the run will fail that node)."""
    try:
        return f"kubeadm.k8s.io/{kubeadm.config_api_version(facts.kubeadm_version)}"
    except kubeadm.KubeadmError:
        return f"kubeadm version unknown ({facts.kubeadm_version or 'none'})"


def overrides(ctx: PlanContext) -> dict[str, dict[str, Any]]:
    table = ctx.inventory.cluster.kubeadm
    return {kind: table.for_kind(kind) for kind in KINDS if table.for_kind(kind)}


def node_ip(ctx: PlanContext, node: str) -> str:
    """The IP kubeadm advertises for ``node`` and its kubelet registers (Cluster.node_ips)."""
    spec = ctx.inventory.node(node)
    found = ctx.node_ips.get(node) or spec.node_ip
    if found is None and checks.is_ip(spec.address):
        found = spec.address
    if found is None:
        address = spec.address
        raise NodeError(
            f"cannot tell the IP address of {node} ({address}): its SSH connection did not "
            "say; set nodeIP for it in the inventory",
            phase="render",
        )
    return found


def cert_sans(ctx: PlanContext) -> tuple[str, ...]:
    """The inventory's certSANs, and the endpoint's host when it is a name (every kubelet and
    kubeconfig reach the API server by it)."""
    sans = list(ctx.inventory.cluster.cert_sans)
    host = ctx.inventory.endpoint_host
    if not checks.is_ip(host) and host not in sans:
        sans.append(host)
    return tuple(sans)


def init_spec(ctx: PlanContext, node: str, *, token: str, run_id: str) -> kubeadm.InitSpec:
    return _init_spec(ctx, node, (
        kubeadm.BootstrapTokenSpec(
            token=token,
            ttl=kubeadm.format_duration(ctx.options.token_ttl),
            description=f"k8slk-ops run {run_id} (init)",
        ),
    ))


def cluster_config(ctx: PlanContext, node: str) -> str:
    """The cluster's own configuration as the init rendered it from the inventory, without a
    token: what kubeadm is given (``--config``) where it cannot read the ``kubeadm-config``
    ConfigMap (an API stopped by expired certificates) and would fall back to its defaults."""
    return kubeadm.render_init(_init_spec(ctx, node, ()), api_for(ctx.facts[node]))


def cluster_documents(ctx: PlanContext, node: str) -> list[dict[str, Any]]:
    """What init renders from the inventory for ``node``'s kubeadm, as data and without a
    token: what ``drift`` compares the cluster with."""
    return kubeadm.init_documents(_init_spec(ctx, node, ()), api_for(ctx.facts[node]))


def _init_spec(
    ctx: PlanContext, node: str, tokens: tuple[kubeadm.BootstrapTokenSpec, ...]
) -> kubeadm.InitSpec:
    inv = ctx.inventory
    spec = inv.node(node)
    version = inv.cluster.kubernetes_version or ctx.facts[node].kubeadm_version
    return kubeadm.InitSpec(
        node_name=spec.name,
        advertise_address=node_ip(ctx, node),
        kubernetes_version=version,
        cluster_name=inv.cluster.name,
        control_plane_endpoint=inv.endpoint,
        pod_subnet=inv.cluster.pod_subnet,
        service_subnet=inv.cluster.service_subnet,
        dns_domain=inv.cluster.dns_domain,
        cert_sans=cert_sans(ctx),
        bootstrap_tokens=tokens,
        node_labels=dict(spec.labels),
        overrides=overrides(ctx),
        kube_proxy=inv.cluster.kube_proxy,
    )


def join_spec(ctx: PlanContext, node: str, creds: JoinCredentials) -> kubeadm.JoinSpec:
    spec = ctx.inventory.node(node)
    control_plane = spec.role == "control-plane"
    return kubeadm.JoinSpec(
        node_name=spec.name,
        api_server_endpoint=creds.endpoint,
        token=creds.token,
        ca_cert_hashes=(creds.ca_cert_hash,),
        node_ip=node_ip(ctx, node),
        control_plane=control_plane,
        advertise_address=node_ip(ctx, node) if control_plane else None,
        certificate_key=creds.certificate_key if control_plane else None,
        node_labels=dict(spec.labels),
        overrides=overrides(ctx),
    )
