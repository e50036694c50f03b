"""preflight: is each node fit to take part, judged from the facts already gathered?

Checks that the kubelet task runs, that kubeadm answers with a version, the image's resource
minimums (a warning, an error with --strict), and that a node that still has to join has a
kubeadm task waiting for its trigger (a node whose kubeadm already failed this boot cannot try
again without a reset).
"""

from __future__ import annotations

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.base.nextstep import REBOOT, NextStep
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do
from k8slk_ops.node.facts import KubeadmState
from k8slk_ops.output.events import EventKind


class Preflight(Step[NoOptions]):
    name = "preflight"
    phase = "preflight"
    changes = False
    read_only = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action("check kubelet task, kubeadm version and state, CPUs and memory"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        facts = ctx.facts(node)
        if not facts.kubelet_running:
            state = facts.tasks.get("kubelet", "missing")
            raise NodeError(
                f"the kubelet task is {state}, not running (containerd namespace "
                "services.linuxkit): is this node booted from the k8s-on-linuxkit image?",
                phase=self.phase,
                next_step=NextStep.then("boot the node from the k8s-on-linuxkit image",
                                        ctx.rerun(node).join),
            )
        if not facts.kubeadm_version:
            raise NodeError("`kubeadm version -o short` gave no version", phase=self.phase)
        for warning in facts.resource_warnings():
            if ctx.options.strict:
                raise NodeError(warning, phase=self.phase, next_step=NextStep.then(
                    f"give the node what the image needs ({warning}) and {REBOOT}",
                    ctx.rerun(node).join))
            ctx.emit(node, self.phase, EventKind.WARN, warning)
        member = ctx.plan.cluster.is_member(node)
        state = facts.kubeadm_state
        if not member and state == KubeadmState.FAILED:
            raise NodeError(
                "kubeadm already ran and failed on this node since its last boot; it will not "
                "run again until the node is reset (`kubeadm reset -f`) and rebooted",
                phase=self.phase,
                log_tail=kubeadm.failure_tail(facts.messages),
                next_step=facts.not_waiting_next_step(ctx.rerun(node)),
            )
        return False
