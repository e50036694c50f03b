"""unlisted-addons and prune-addons: the addons taken out of ``cluster.addons``.

The addon record (``addonrecord``) keeps a key per manifest applied, with the objects it held.
A key the inventory no longer lists is an addon taken out of it: ``apply --prune`` deletes its
objects (``kubectl delete --ignore-not-found``, in the reverse of the manifest's order, so a
workload goes before its namespace and a custom resource before its CRD) and then drops the key.
The key is dropped only once every delete succeeded: a prune that stopped halfway is run again,
and the objects already gone are passed over. Deleting an addon's objects stops what it runs, so
``apply`` asks first, as it does before a drain (``disrupts``).

Without ``--prune`` the addon is left in the cluster and said so, with the flag that removes
it. An entry written before the record kept objects names none: the tool cannot know what to
delete, so it is said, with the kubectl commands to do it by hand, and never pruned.
"""

from __future__ import annotations

from itertools import groupby

from k8slk_ops.base.errors import NodeError
from k8slk_ops.base.nextstep import tool_line
from k8slk_ops.cluster import addonrecord
from k8slk_ops.cluster.addonrecord import RecordedObject, RecordEntry
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.output.events import EventKind

PHASE = "addons"
DELETE_TIMEOUT = 300.0  # seconds for one kubectl delete (it waits for each object to go)


def left_addons(ctx: PlanContext) -> list[tuple[str, RecordEntry]]:
    """The record's entries of manifests the inventory no longer lists, by key."""
    return addonrecord.left_entries(ctx.cluster.addons,
                                    (a.key for a in ctx.inventory.addon_manifests))


def prunable(ctx: PlanContext) -> list[tuple[str, tuple[RecordedObject, ...]]]:
    """The left addons whose objects the record names: what ``--prune`` deletes."""
    return [(key, e.objects) for key, e in left_addons(ctx) if e.objects is not None]


def prune_command(ctx: PlanContext) -> str:
    return tool_line("apply", str(ctx.inventory.source), "--prune")


def left_text(ctx: PlanContext, key: str, entry: RecordEntry) -> str:
    """What is said of an addon taken out of the inventory and left in the cluster."""
    if entry.objects is None:
        return (f"{key}: not in cluster.addons, left in the cluster; its record entry was "
                "written before the record kept objects, so --prune cannot delete it: delete "
                "its objects by hand (`kubectl delete --ignore-not-found -f FILE`, FILE the "
                f"manifest as applied), then take it out of the record: "
                f"`{addonrecord.forget_command(key)}`")
    return (f"{key}: not in cluster.addons, left in the cluster ({len(entry.objects)} "
            f"object(s)); `{prune_command(ctx)}` deletes them")


def delete_batches(objects: tuple[RecordedObject, ...]
                   ) -> list[tuple[str, tuple[RecordedObject, ...]]]:
    """The objects in the reverse of the manifest's order, as ``kubectl delete`` calls: each
    run of objects in one namespace is one call (``""``: no ``-n``, as they were applied)."""
    return [(ns, tuple(run)) for ns, run in groupby(reversed(objects), key=lambda o: o.namespace)]


def delete_argv(namespace: str, objects: tuple[RecordedObject, ...]) -> list[str]:
    """``kubectl delete`` of a batch: gone already is no failure (a prune run again)."""
    where = ["-n", namespace] if namespace else []
    return ["delete", "--ignore-not-found", *where, *(o.ref for o in objects)]


class UnlistedAddons(Step[NoOptions]):
    """The addons taken out of the inventory that this run leaves: said, not touched."""

    name = "unlisted-addons"
    phase = PHASE
    changes = False
    read_only = True
    needs_node = False
    reads_addon_record = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        left = [(k, e) for k, e in left_addons(ctx)
                if e.objects is None or not ctx.options.prune]
        if not left:
            return skip("no addon left out of the inventory")
        return do(*(Action(left_text(ctx, key, entry), {"addon": key, "action": "none"})
                    for key, entry in left))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        for key, entry in left_addons(ctx.plan):
            if entry.objects is None or not ctx.plan.options.prune:
                ctx.emit(node, self.phase, EventKind.WARN, left_text(ctx.plan, key, entry))
        return False


class PruneAddons(Step[NoOptions]):
    """``--prune``: the objects of each addon taken out of the inventory deleted, then its key
    dropped from the record."""

    name = "prune-addons"
    phase = PHASE
    disrupts = True  # what the addon ran stops: asked about before the run
    reads_addon_record = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        due = prunable(ctx)
        if not due:
            return skip("no addon to prune")
        if not ctx.options.prune:
            return skip("addons out of the inventory are left without --prune")
        return do(*(Action(
            f"delete the {len(objects)} object(s) of {key}, last first, then its record entry "
            f"({', '.join(o.label for o in reversed(objects)) or 'none'})",
            {"addon": key, "delete": [o.label for o in reversed(objects)]})
            for key, objects in due))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        primary = await ctx.node(node)
        try:
            # As the cluster has it now: apply-addons may have written entries since the plan.
            record = await addonrecord.read_record(primary)
        except addonrecord.AddonError as exc:
            raise NodeError(str(exc), phase=PHASE, log_tail=exc.lines) from None
        for key, objects in prunable(ctx.plan):
            for namespace, batch in delete_batches(objects):
                result = await primary.kubectl(*delete_argv(namespace, batch),
                                               timeout=DELETE_TIMEOUT)
                if result.exit_status != 0:
                    said = (result.stderr or result.stdout).decode(errors="replace")
                    lines = tuple(said.strip().splitlines())
                    raise NodeError(
                        f"kubectl delete of {key}'s objects failed (exit {result.exit_status}): "
                        f"{lines[-1] if lines else 'no output'} (its record entry is kept: "
                        "run again once fixed; what was deleted is passed over)",
                        phase=PHASE, log_tail=list(lines))
            record.pop(key, None)
            try:
                await addonrecord.write_record(primary, record)
            except addonrecord.AddonError as exc:
                raise NodeError(str(exc), phase=PHASE, log_tail=exc.lines) from None
            ctx.emit(node, PHASE, EventKind.PROGRESS,
                     f"pruned {key} ({len(objects)} object(s) deleted)")
        return True
