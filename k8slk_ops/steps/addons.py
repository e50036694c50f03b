"""apply-addons: the inventory's manifests (a pod network first), applied through the primary.

Without a pod network kubelet keeps every Node NotReady, so bootstrap applies ``cluster.addons``
right after init, before any join. Each manifest goes to ``kubectl apply -f -`` inside the
kubelet container on stdin: nothing is copied to the node and nothing reaches argv. The
cluster's record (``addonrecord``) says which manifests were applied already: the plan lists
only those that changed, so a re-run with the same files applies nothing and says so. Each
entry also names the objects its manifest held, for ``apply --prune`` (``addonprune``); an entry
written before they were kept gains them from the unchanged manifest, without an apply. With
``cluster.kubeProxy: false`` the kube-proxy DaemonSet and ConfigMap are deleted once (kubeadm's
v1beta2 configuration, before Kubernetes 1.22, cannot skip installing them).

In bootstrap it runs beside init (engine/milestones.py): it starts once init's API server
serves its admin, while init finishes. What kubeadm's own addon phase makes or overwrites
(CoreDNS and kube-proxy: ``KUBEADM_ADDON_OBJECTS``) waits for init to have completed, so that a
manifest that changes one of them, or the deletion of kube-proxy, is not undone by init.
"""

from __future__ import annotations

from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster import addonrecord
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.inventory.addons import Addon
from k8slk_ops.output.events import EventKind
from k8slk_ops.steps.init import ADMIN_API, INITIALISED

PHASE = "addons"


def due_addons(ctx: PlanContext) -> tuple[Addon, ...]:
    """The manifests whose content the cluster has not recorded as applied."""
    recorded = ctx.cluster.addons
    return tuple(a for a in ctx.inventory.addon_manifests
                 if (entry := recorded.get(a.key)) is None or entry.sha256 != a.sha256)


def objects_unknown(ctx: PlanContext) -> tuple[Addon, ...]:
    """The manifests applied as they are now whose entry does not name their objects (written
    before the record kept them): the record gains them, with no apply. (One of too many
    objects to list stays as it is.)"""
    recorded = ctx.cluster.addons
    return tuple(a for a in ctx.inventory.addon_manifests
                 if (entry := recorded.get(a.key)) is not None and entry.sha256 == a.sha256
                 and entry.objects is None
                 and addonrecord.RecordEntry.of(a).objects is not None)


def manifest_warnings(ctx: PlanContext) -> tuple[str, ...]:
    """The due manifests' likely typos of a placeholder (``${podSubet}``, left as written):
    said by the plan that applies them, before the cluster gets the text."""
    return tuple(w for a in due_addons(ctx) for w in a.warnings)


# (namespace, name) of what kubeadm's addon phase creates or updates: CoreDNS's Deployment,
# ConfigMap, Service, ServiceAccount and ClusterRole/Binding, kube-proxy's DaemonSet, ConfigMap,
# ServiceAccount, Role/Binding and kubeadm:node-proxier.
KUBEADM_ADDON_OBJECTS = frozenset({
    ("kube-system", "coredns"),
    ("kube-system", "kube-dns"),
    ("kube-system", "kube-proxy"),
    ("", "system:coredns"),
    ("", "kubeadm:node-proxier"),
})


def touches_kubeadm_addons(addon: Addon) -> bool:
    """The manifest holds an object kubeadm's addon phase makes (init would overwrite it)."""
    return any((o.namespace, o.name) in KUBEADM_ADDON_OBJECTS for o in addon.layout.objects)


def kube_proxy_due(ctx: PlanContext) -> bool:
    """kube-proxy is to be deleted: not wanted, and not recorded as deleted yet."""
    return not ctx.inventory.cluster.kube_proxy and (
        addonrecord.KUBE_PROXY_REMOVED not in ctx.cluster.addons
    )


class ApplyAddons(Step[NoOptions]):
    name = "apply-addons"
    phase = PHASE
    awaits = ADMIN_API

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        actions = [
            Action(
                f"kubectl apply -f - of {a.name} (sha256 {a.sha256[:12]})",
                {"manifest": a.name, "sha256": a.sha256},
            )
            for a in due_addons(ctx)
        ]
        actions += [
            Action(f"record the objects of {a.name} in {addonrecord.NAMESPACE}/"
                   f"{addonrecord.NAME} (applied before the record kept them)",
                   {"manifest": a.name, "record": "objects"})
            for a in objects_unknown(ctx)
        ]
        if kube_proxy_due(ctx):
            actions.append(Action("delete the kube-proxy DaemonSet and ConfigMap if present"))
        if actions:
            return do(*actions)
        count = len(ctx.inventory.addon_manifests)
        if not count:
            return skip("no addons in the inventory")
        return skip(f"addons applied already ({count} manifest(s) unchanged)")

    def plan_warnings(self, ctx: PlanContext) -> tuple[str, ...]:
        return manifest_warnings(ctx)

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        record = dict(ctx.plan.cluster.addons)
        try:
            for addon in due_addons(ctx.plan):
                if touches_kubeadm_addons(addon):
                    await ctx.milestones.wait(INITIALISED, node)
                try:
                    await addonrecord.apply_manifest(lk, addon.text.encode(), addon.name, addon)
                except addonrecord.AddonError:
                    # kubectl prints a failed patch whole: a Secret's values would reach the
                    # report with kubectl's lines.
                    for value in addon.layout.secret_values:
                        ctx.add_secret(value)
                    raise
                record[addon.key] = addonrecord.RecordEntry.of(addon)
                await addonrecord.write_record(lk, record)
                ctx.emit(node, PHASE, EventKind.PROGRESS, f"applied {addon.name}")
            listed = objects_unknown(ctx.plan)
            if listed:
                for addon in listed:
                    record[addon.key] = addonrecord.RecordEntry.of(addon)
                await addonrecord.write_record(lk, record)
                ctx.emit(node, PHASE, EventKind.PROGRESS, "recorded the objects of "
                         + ", ".join(a.name for a in listed))
            if kube_proxy_due(ctx.plan):
                await ctx.milestones.wait(INITIALISED, node)
                await self._delete_kube_proxy(ctx, node)
                record[addonrecord.KUBE_PROXY_REMOVED] = addonrecord.RecordEntry("true")
                await addonrecord.write_record(lk, record)
        except addonrecord.AddonError as exc:
            raise NodeError(str(exc), phase=PHASE, log_tail=exc.lines) from None
        return True

    async def _delete_kube_proxy(self, ctx: RunContext, node: str) -> None:
        lk = await ctx.node(node)
        result = await lk.kubectl(
            "-n",
            "kube-system",
            "delete",
            "daemonset/kube-proxy",
            "configmap/kube-proxy",
            "--ignore-not-found",
            timeout=120,
        )
        if result.exit_status != 0:
            raise addonrecord.AddonError(
                "kubectl delete of kube-proxy failed: "
                + (result.stderr or result.stdout).decode(errors="replace").strip()[-300:]
            )
        ctx.emit(node, PHASE, EventKind.PROGRESS, "deleted kube-proxy")
