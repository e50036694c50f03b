"""remove-kubeadm-config: what a failed init or join leaves on its node, taken away.

The node's kubeadm.sh deletes ``/run/node/kubeadm.yaml`` (which holds the bootstrap token and
the certificate key) only when kubeadm succeeds. After a failure the file stays in tmpfs until
the next reboot: this cleanup step removes it, but never while kubeadm may still read it (the
kubeadm task running with the trigger written), which it reports instead.
"""

from __future__ import annotations

from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do
from k8slk_ops.node import paths
from k8slk_ops.node.facts import TaskState
from k8slk_ops.output.events import EventKind


class RemoveKubeadmConfig(Step[NoOptions]):
    name = "remove-kubeadm-config"
    phase = "cleanup"
    changes = False  # it removes what this run put there

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action(f"remove {paths.KUBEADM_YAML} (token, certificate key) once kubeadm "
                         "has stopped"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        facts = await lk.facts()  # one round trip: the config, the trigger, the task
        if not facts.kubeadm_yaml:
            return False
        triggered = facts.kubeadm_run is not None
        state = facts.kubeadm_task
        if triggered and state is not TaskState.STOPPED:
            why = "is still running" if state is TaskState.RUNNING else f"is {state.value.lower()}"
            raise NodeError(
                f"{paths.KUBEADM_YAML} left in place: the kubeadm task {why} and may read it "
                "(it goes at the node's next reboot)",
                phase=self.phase,
            )
        result = await lk.shell(["rm", "-f", paths.KUBEADM_YAML])
        if result.exit_status != 0:
            raise NodeError(f"could not remove {paths.KUBEADM_YAML}", phase=self.phase)
        ctx.emit(node, self.phase, EventKind.PROGRESS, f"removed {paths.KUBEADM_YAML}")
        return False
