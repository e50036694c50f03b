"""unlisted-members: the members of the cluster the inventory does not name, said and left.

``apply`` makes the cluster what the inventory lists, but a Node the inventory does not mention
may be a machine someone else runs, one added by hand, or one whose inventory entry was lost:
taking it out is a decision the inventory has to state (``remove: true``). So such a member is
only reported, with no action, by the plan and by the run.
"""

from __future__ import annotations

from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.output.events import EventKind

NOT_LISTED = "not in the inventory: left alone (add it, or remove it with kubectl and kubeadm)"


def unlisted(ctx: PlanContext) -> list[str]:
    """Members of the cluster that the inventory does not name, by name."""
    listed = set(ctx.inventory.names)
    return sorted(n for n in ctx.cluster.members if n not in listed)


class UnlistedMembers(Step[NoOptions]):
    name = "unlisted-members"
    phase = "members"
    changes = False
    read_only = True
    needs_node = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        names = unlisted(ctx)
        if not names:
            return skip("every member is in the inventory")
        return do(*(Action(f"{name}: {NOT_LISTED}", {"member": name, "action": "none"})
                    for name in names))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        for name in unlisted(ctx.plan):
            ctx.emit(node, self.phase, EventKind.WARN, f"{name}: {NOT_LISTED}")
        return False
