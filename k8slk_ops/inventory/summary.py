"""An inventory as plain data, for ``inventory check`` and the JSON report: what it says about
the cluster at a glance. Printing is the caller's business; ``at_a_glance`` gives the lines
``inventory check`` ends with, so the operator sees the cluster as understood before any run."""

from __future__ import annotations

from collections.abc import Sequence
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
                "taints": [
                    {"key": t.key, "value": t.value, "effect": t.effect} for t in node.taints
                ],
                "remove": node.remove,
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


MAX_NAMES = 20  # names shown per role; a big cluster's list would bury the rest


def name_list(names: Sequence[str], limit: int = MAX_NAMES) -> str:
    """``cp-1, cp-2``; past ``limit`` names, ``..., w-20, ... and 5 more``; ``none``."""
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... and {len(names) - limit} more"
    return shown


def at_a_glance(inventory: Inventory) -> list[str]:
    """The cluster as the tool understood it: name, endpoint, node names by role, counts."""
    summary = summarize(inventory)
    by_role = {role: [n["name"] for n in summary["nodes"] if n["role"] == role] for role in ROLES}
    counts = summary["counts"]
    return [
        f"  cluster:        {summary['cluster']}",
        f"  endpoint:       {summary['endpoint']}",
        f"  control planes: {name_list(by_role['control-plane'])}",
        f"  workers:        {name_list(by_role['worker'])}",
        f"  nodes:          {len(summary['nodes'])} ({counts['control-plane']} control "
        f"plane{'s' if counts['control-plane'] != 1 else ''}, {counts['worker']} "
        f"worker{'s' if counts['worker'] != 1 else ''})",
        *([f"  to remove:      {name_list(leaving)} (remove: true; apply drains, resets and "
           "deletes them)"] if (leaving := [n["name"] for n in summary["nodes"] if n["remove"]])
          else []),
    ]
