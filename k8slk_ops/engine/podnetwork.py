"""What the tool says when nodes lack a pod network.

kubelet keeps a Node NotReady (``NetworkPluginNotReady``) until a CNI configuration exists on
it, and kubeadm installs none. A bootstrap without ``cluster.addons`` would wait out its ready
timeout on every node: the plan warns before anything runs, and the report says why the nodes
stayed NotReady and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable

from k8slk_ops.cluster.membership import Member
from k8slk_ops.engine.context import PlanContext

HINT = (
    "add a pod network manifest (a CNI such as flannel's kube-flannel.yml or kube-router's "
    "daemonset from their releases) to cluster.addons in the inventory and run again"
)
PLAN_WARNING = (
    "WARNING: no cluster.addons in the inventory: nodes stay NotReady "
    "(NetworkPluginNotReady) until a pod network is installed; " + HINT
)
REPORT_MESSAGE = "no pod network is installed (kubelet: NetworkPluginNotReady); " + HINT


def plan_warnings(ctx: PlanContext) -> tuple[str, ...]:
    """The warning of a plan that waits for Ready nodes with no network to come: no addons,
    and the cluster is still to be made or some member already reports no network."""
    if ctx.inventory.addon_manifests:
        return ()
    members = ctx.cluster.members.values()
    if not ctx.cluster.initialised or any(m.network_missing for m in members):
        return (PLAN_WARNING,)
    return ()


def report_messages(has_addons: bool, members: Iterable[Member]) -> list[str]:
    """The report's explanation when members are NotReady for want of a network."""
    if has_addons or not any(m.network_missing for m in members):
        return []
    return [REPORT_MESSAGE]
