"""An inventory as plain data, for ``inventory check`` and the JSON report: what it says about
the cluster at a glance. Printing is the caller's business."""

from __future__ import annotations

from typing import Any

from k8slk_ops.inventory.checks import format_hostport
from k8slk_ops.inventory.model import ROLES, Inventory


def summarize(inventory: Inventory) -> dict[str, Any]:
    """Nodes per role, endpoint, versions and networks; JSON-serialisable, no secrets."""
    cluster = inventory.cluster
    nodes = []
    for node in inventory.nodes:
        ssh = inventory.ssh_for(node)
        nodes.append(
            {
                "name": node.name,
                "address": node.address,
                "role": node.role,
                "labels": dict(node.labels),
                "ssh": f"{ssh.user}@{format_hostport(node.address, ssh.port)}",
                "hostKeyPolicy": ssh.host_key_policy,
                "jumpHost": ssh.jump_host,
            }
        )
    return {
        "source": str(inventory.source),
        "cluster": cluster.name,
        "endpoint": inventory.endpoint,
        "firstControlPlane": inventory.first_control_plane.name,
        "kubernetesVersion": cluster.kubernetes_version or "from the nodes' kubeadm",
        "podSubnet": cluster.pod_subnet,
        "serviceSubnet": cluster.service_subnet,
        "dnsDomain": cluster.dns_domain,
        "certSANs": list(cluster.cert_sans),
        "kubeadmOverrides": list(cluster.kubeadm.as_mapping()),
        "counts": {role: sum(1 for n in inventory.nodes if n.role == role) for role in ROLES},
        "nodes": nodes,
    }
