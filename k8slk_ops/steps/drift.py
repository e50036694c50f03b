"""drift-read and drift-compare: read the cluster once, then compare it with the inventory.

``drift-read`` runs on every control plane at once: one command reads the node's static pod
manifests; on the primary, one ``kubectl get configmaps`` reads kube-system's ConfigMaps
(kubeadm's ``kubeadm-config`` and ``kubelet-config``, the addon record). The node list is the
one the run found its primary with (``ClusterFacts.members``): it is not read again.
``drift-compare`` then runs on the primary alone, once every control plane has been read: it
renders what the inventory wants with the tool's own renderer and hands both to the pure
comparisons of ``k8slk_ops.drift``. Nothing is written anywhere.
"""

from __future__ import annotations

from k8slk_ops import drift, kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster import nodemeta
from k8slk_ops.cluster.membership import NODE_LIST_TIMEOUT, request_timeout
from k8slk_ops.drift.read import parse_configmaps, parse_static_pod
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.node.linuxkit import NodeCommandError, certain_read
from k8slk_ops.ssh import CommandTimeout
from k8slk_ops.steps.render import cluster_documents

PHASE = "drift"


def _configmaps_wanted(ctx: PlanContext, node: str) -> bool:
    return node == ctx.cluster.primary and not ctx.cluster.api_error


class DriftRead(Step[NoOptions]):
    name = "drift-read"
    phase = PHASE
    changes = False
    read_only = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        what = "read the static pod manifests in one command"
        if _configmaps_wanted(ctx, node):
            what += "; `kubectl get configmaps -n kube-system -o json`"
        return do(Action(what))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        files = {c: drift.manifest_path(c) for c in drift.COMPONENTS}
        try:
            read = await lk.read_files(list(files.values()))
        except NodeCommandError as exc:
            raise NodeError(f"{exc}; check that the node answers (`k8slk-ops status`), then "
                            "run drift again", phase=PHASE) from None
        ctx.state.drift_pods[node] = {
            c: parse_static_pod(c, path, read[path]) for c, path in files.items()
        }
        if _configmaps_wanted(ctx.plan, node):
            ctx.state.drift_configmaps = await self._configmaps(ctx, node)
        return False

    @staticmethod
    async def _configmaps(ctx: RunContext, node: str) -> drift.ConfigMaps:
        lk = await ctx.node(node)
        what = f"kubectl get configmaps -n kube-system on {node}"
        try:
            result = await certain_read(
                lambda: lk.kubectl("get", "configmaps", "-n", "kube-system", "-o", "json",
                                   request_timeout(), timeout=NODE_LIST_TIMEOUT),
                what=what)
        except (NodeCommandError, CommandTimeout) as exc:
            raise NodeError(f"{what}: {exc}; nothing was compared: run drift again once its "
                            "API answers (`k8slk-ops status`)", phase=PHASE) from None
        if result.exit_status != 0:
            raise NodeError(f"{what} failed: {kubeadm.failure_summary(result.stderr)}; nothing "
                            "was compared: run drift again once its API answers", phase=PHASE)
        try:
            return parse_configmaps(result.stdout.decode(errors="replace"))
        except drift.ReadError as exc:
            raise NodeError(f"{what}: {exc}", phase=PHASE) from None


def wanted(ctx: PlanContext) -> drift.Wanted:
    """What the inventory and the tool render, from the primary's point of view (its kubeadm
    picks the configuration's API version, as for an init)."""
    inv = ctx.inventory
    try:
        docs = {d["kind"]: d for d in cluster_documents(ctx, ctx.cluster.primary)}
    except kubeadm.KubeadmError as exc:
        raise NodeError(f"cannot render the inventory's configuration: {exc}; fix the "
                        "inventory (`k8slk-ops inventory check`)", phase=PHASE) from None
    config = dict(docs["ClusterConfiguration"])
    if not inv.cluster.kubernetes_version:  # then the version is the nodes', not the inventory's
        config.pop("kubernetesVersion", None)
    return drift.Wanted(
        inventory=str(inv.source),
        nodes={n.name: n.role for n in inv.nodes},
        kubernetes_version=inv.cluster.kubernetes_version or "",
        cluster_configuration=config,
        kubelet_configuration=docs["KubeletConfiguration"],
        addons=tuple(drift.WantedAddon(a.name, a.key, a.sha256) for a in inv.addon_manifests),
        kube_proxy=inv.cluster.kube_proxy,
        node_metadata={n.name: nodemeta.Desired.of(n) for n in inv.nodes},
    )


class DriftCompare(Step[NoOptions]):
    name = "drift-compare"
    phase = PHASE
    changes = False
    read_only = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        if ctx.cluster.api_error:
            return skip("the Kubernetes API does not answer: nothing to compare")
        return do(Action("compare what was read with what the inventory renders "
                         f"({', '.join(drift.KINDS)})"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        maps = ctx.state.drift_configmaps
        if maps is None:
            raise NodeError("kube-system's ConfigMaps were not read: nothing was compared; run "
                            "drift again", phase=PHASE)
        found = drift.Found(
            members=ctx.plan.cluster.members,
            kubeadm_config=maps.kubeadm_config,
            kubelet_config=maps.kubelet_config,
            addon_record=maps.addon_record,
            static_pods=dict(ctx.state.drift_pods),
        )
        ctx.state.drift = drift.compare(wanted(ctx.plan), found)
        return False
