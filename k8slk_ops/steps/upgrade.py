"""The rolling upgrade's steps: the version check, the disk check, cordon, the kubeadm upgrade
and the health gate (reboot and wait-ssh are in ``steps/reboot.py``; drain and uncordon are
shared with ``remove-node``).

On LinuxKit the Kubernetes version lives in the image: a node is upgraded by rebooting it into
the new image, then running the new kubeadm. A node is done when its Node reports the target
kubelet version and it is schedulable; a node that failed stays cordoned, so the next run picks
it up again from the facts.
"""

from __future__ import annotations

import asyncio
import json
import time

from pydantic import BaseModel, ConfigDict

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError, UsageError
from k8slk_ops.cluster.membership import Member, MembershipUnavailable, list_members
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, Duration, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.kubeadm.errors import VersionError
from k8slk_ops.kubeadm.upgrade import (
    NodeVersion,
    is_upgrade_apply_success,
    is_upgrade_node_success,
    upgrade_refusal,
)
from k8slk_ops.kubeadm.versions import KubeVersion
from k8slk_ops.node.rebootrecord import ANNOTATION as REBOOT_ANNOTATION
from k8slk_ops.node.rebootrecord import remove_args
from k8slk_ops.node.uncut import uncut
from k8slk_ops.ssh import SSHError
from k8slk_ops.steps import localapi
from k8slk_ops.steps.remove import Drain, DrainOptions

STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The kubelet task is not supervised on LinuxKit: stopping it ends it for good. Its container
# stays, so a new task of the same container is the kubelet the image would start at boot.
RESTART_KUBELET = """set -e
ctr -n services.linuxkit tasks kill kubelet 2>/dev/null || true
i=0
while ctr -n services.linuxkit tasks ls | grep -q '^kubelet .*RUNNING'; do
  i=$((i+1)); [ "$i" -le 300 ] || { echo "the kubelet task did not stop" >&2; exit 1; }
  sleep 0.1
done
ctr -n services.linuxkit tasks delete kubelet >/dev/null 2>&1 || true
ctr -n services.linuxkit tasks start -d --null-io kubelet
"""
VAR_NODE_MOUNTED = "grep -qs ' /var/node ' /proc/self/mounts"


def target_version(ctx: PlanContext) -> KubeVersion:
    """``--to``, else the inventory's ``cluster.kubernetesVersion`` (the command checks that
    one of them is there before anything connects)."""
    text = ctx.options.upgrade_to or ctx.inventory.cluster.kubernetes_version or ""
    try:
        return KubeVersion.parse(text)
    except VersionError:
        raise UsageError(
            f"{ctx.inventory.source}: no target version: pass --to or set "
            "cluster.kubernetesVersion"
        ) from None


def member_version(member: Member | None) -> KubeVersion | None:
    if member is None:
        return None
    try:
        return KubeVersion.parse(member.kubelet_version)
    except VersionError:
        return None


def upgraded(ctx: PlanContext, node: str) -> bool:
    """At the target and schedulable: nothing to do (a node that failed stays cordoned).
    With ``keep_hand_cordons`` (apply), a node at the target is done unless a run's reboot
    record says its roll did not finish: a cron apply never reboots a node cordoned by hand."""
    member = ctx.cluster.members.get(node)
    if member is None or member_version(member) != target_version(ctx):
        return False
    if ctx.options.keep_hand_cordons:
        return member.reboot is None
    return not member.unschedulable


def not_due(ctx: PlanContext, node: str) -> StepPlan | None:
    """The skip for a node this roll has nothing to do on, else None."""
    if not ctx.cluster.is_member(node):
        return skip("not in the cluster")
    if upgraded(ctx, node):
        return skip(f"at {target_version(ctx)}")
    return None


def refusal(ctx: PlanContext) -> str:
    """What kubeadm would refuse about this roll, from the Node objects' versions."""
    target = target_version(ctx)
    versions = []
    for name, member in ctx.cluster.members.items():
        v = member_version(member)
        if v is None:
            return f"{name} reports no kubelet version ({member.kubelet_version!r})"
        versions.append(NodeVersion(name, v, member.control_plane))
    return upgrade_refusal(target, tuple(versions))


class UpgradeCheck(Step[NoOptions]):
    """Refuses, before anything is touched, what kubeadm would refuse: a downgrade, a skipped
    minor, workers ahead of the control planes."""

    name = "upgrade-check"
    phase = "check"
    changes = False
    read_only = True
    needs_node = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        why = refusal(ctx)
        if why:
            return do(Action(f"refuse: {why}"))
        return do(Action(f"check the roll to {target_version(ctx)}"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        why = refusal(ctx.plan)
        if why:
            raise NodeError(f"refusing the upgrade: {why}", phase=self.phase)
        return False


class PersistentDisk(Step[NoOptions]):
    """A node whose /var/node is not a mounted disk would come back from its reboot empty:
    refused before it is cordoned (the image needs one unformatted disk)."""

    name = "persistent-disk"
    phase = "check"
    changes = False
    read_only = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return not_due(ctx, node) or do(Action("check that /var/node is a persistent disk"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        result = await lk.shell(["sh", "-c", VAR_NODE_MOUNTED], timeout=30)
        if result.exit_status != 0:
            raise NodeError(
                "/var/node is not a mounted disk: the node would forget the cluster at its "
                "reboot. Give it one unformatted disk (the image formats and mounts it)",
                phase=self.phase,
            )
        return False



async def kubectl_on_primary(ctx: RunContext, verb: str, node: str, phase: str) -> None:
    """``kubectl VERB NODE`` (cordon, uncordon) through the primary; NodeError with its words."""
    primary = await ctx.node(ctx.plan.cluster.primary)
    result = await primary.kubectl(verb, node)
    if result.exit_status != 0:
        why = kubeadm.failure_summary(result.stderr or result.stdout)
        raise NodeError(f"kubectl {verb} failed: {why}", phase=phase)


class Cordon(Step[NoOptions]):
    """Marks the node unschedulable through the primary. Until its drain finishes, the stage's
    ``uncordon`` cleanup gives it back if the run stops."""

    name = "cordon"
    phase = "cordon"
    needs_node = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return not_due(ctx, node) or do(
            Action(f"kubectl cordon {node} (on {ctx.cluster.primary})")
        )

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        ctx.state.drains_unfinished.add(node)
        await kubectl_on_primary(ctx, "cordon", node, self.phase)
        return True


class UpgradeDrain(Drain):
    """``drain`` as ``remove-node`` runs it, for the nodes this roll has work on only."""

    name = "upgrade-drain"

    def plan(self, options: DrainOptions, ctx: PlanContext, node: str) -> StepPlan:
        return not_due(ctx, node) or super().plan(options, ctx, node)


class KubeadmUpgrade(Step[NoOptions]):
    """``kubeadm upgrade apply vX --yes`` on the primary, ``kubeadm upgrade node`` on the
    others, then the kubelet restarted so that it reads the configuration kubeadm wrote."""

    name = "kubeadm-upgrade"
    phase = "upgrade"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        skipped = not_due(ctx, node)
        if skipped:
            return skipped
        return do(Action(f"{' '.join(self.argv(ctx, node))}, then restart the kubelet"))

    @staticmethod
    def argv(ctx: PlanContext, node: str) -> list[str]:
        if node == ctx.cluster.primary:
            return ["kubeadm", "upgrade", "apply", str(target_version(ctx)), "--yes"]
        return ["kubeadm", "upgrade", "node"]

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        argv = self.argv(ctx.plan, node)
        if ctx.plan.spec(node).role == "control-plane":  # just booted: its API comes back first
            await localapi.wait_ready(lk, ctx.options.timeout, self.phase)
        with uncut():  # a kubeadm upgrade is never cut half-way by a stop request
            result = await lk.kubelet_exec(argv, timeout=ctx.options.timeout)
        output = (result.stdout + result.stderr).decode(errors="replace")
        ok = (
            is_upgrade_apply_success(output, target_version(ctx.plan))
            if node == ctx.plan.cluster.primary
            else is_upgrade_node_success(output)
        )
        if result.exit_status != 0 or not ok:
            raise NodeError(
                f"{' '.join(argv[:3])} failed: {kubeadm.failure_summary(output)}",
                phase=self.phase,
                log_tail=output.splitlines()[-15:],
            )
        restart = await lk.shell(["sh", "-c", RESTART_KUBELET], timeout=60)
        if restart.exit_status != 0:
            why = kubeadm.failure_summary(restart.stderr or restart.stdout)
            raise NodeError(f"restarting the kubelet failed: {why}", phase=self.phase)
        return True


class GateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: Duration = 300.0


class HealthGate(Step[GateOptions]):
    """Waits until the roll may go on: the node Ready at the target; on a control plane, the
    API answers /readyz and its static pods run the target; every node Ready before the roll
    still is. The reason it is still waiting is the failure when the timeout ends it."""

    name = "health-gate"
    phase = "health"
    changes = False
    read_only = True
    needs_node = False

    def plan(self, options: GateOptions, ctx: PlanContext, node: str) -> StepPlan:
        return not_due(ctx, node) or do(
            Action(f"wait until {node} is Ready at {target_version(ctx)} and the cluster healthy")
        )

    async def apply(self, options: GateOptions, ctx: RunContext, node: str) -> bool:
        deadline = time.monotonic() + options.timeout
        pause = 0.2
        while True:
            try:
                why = await unhealthy(ctx, node)
            except SSHError as exc:  # the primary's connection, mid-restart: ask again
                why = str(exc)
            if not why:
                ctx.state.versions[node] = str(target_version(ctx.plan))
                return False
            if time.monotonic() > deadline:
                raise NodeError(f"health gate: {why}", phase=self.phase)
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 3.0)


async def unhealthy(ctx: RunContext, node: str) -> str:
    """Why the roll may not go on past ``node`` yet, or ''."""
    target = target_version(ctx.plan)
    primary = await ctx.node(ctx.plan.cluster.primary)
    try:
        members = await list_members(primary)
    except MembershipUnavailable as exc:
        return f"the API does not answer: {exc}"
    me = members.get(node)
    if me is None or not me.ready:
        return f"{node} is not Ready"
    if member_version(me) != target:
        return f"{node} reports kubelet {me.kubelet_version}, not {target}"
    was_ready = [n for n, m in ctx.plan.cluster.members.items() if m.ready]
    lost = [n for n in was_ready if n in members and not members[n].ready]
    if lost:
        return f"{', '.join(lost)} Ready before the roll, not Ready now"
    if me.control_plane:
        return await control_plane_unhealthy(ctx, node, target)
    return ""


async def control_plane_unhealthy(ctx: RunContext, node: str, target: KubeVersion) -> str:
    primary = await ctx.node(ctx.plan.cluster.primary)
    readyz = await primary.kubectl("get", "--raw", "/readyz", timeout=30)
    if readyz.exit_status != 0:
        return f"the API's /readyz: {kubeadm.failure_summary(readyz.stderr or readyz.stdout)}"
    pods = await primary.kubectl(
        "get", "pods", "-n", "kube-system", "-o", "json",
        f"--field-selector=spec.nodeName={node}", timeout=30,
    )
    if pods.exit_status != 0:
        return f"listing static pods: {kubeadm.failure_summary(pods.stderr or pods.stdout)}"
    return static_pods_behind(pods.stdout.decode(errors="replace"), node, target)


def static_pods_behind(pods_json: str, node: str, target: KubeVersion) -> str:
    """Which static pod of ``node`` (its mirror pod) is missing or not at ``target``. Pure."""
    images: dict[str, str] = {}
    for pod in json.loads(pods_json).get("items", []):
        name = pod.get("metadata", {}).get("name", "")
        containers = pod.get("spec", {}).get("containers", [])
        if containers:
            images[name] = containers[0].get("image", "")
    if f"etcd-{node}" not in images:
        return f"etcd-{node} is not running"
    for component in STATIC_PODS:
        image = images.get(f"{component}-{node}")
        if image is None:
            return f"{component}-{node} is not running"
        tag = image.rpartition(":")[2]
        try:
            if KubeVersion.parse(tag) != target:
                return f"{component}-{node} runs {tag}, not {target}"
        except VersionError:
            return f"{component}-{node} runs {image!r}, not {target}"
    return ""


class UncordonUpgraded(Step[NoOptions]):
    """Gives an upgraded node back to the scheduler, and removes the reboot record a run left
    on it (``rebootrecord.py``): the node is done."""

    name = "uncordon-node"
    phase = "uncordon"
    needs_node = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return not_due(ctx, node) or do(
            Action(f"kubectl uncordon {node} (on {ctx.cluster.primary})")
        )

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        await kubectl_on_primary(ctx, "uncordon", node, self.phase)
        member = ctx.plan.cluster.members.get(node)
        if node in ctx.state.rebooted or (member is not None and member.reboot is not None):
            primary = await ctx.node(ctx.plan.cluster.primary)
            result = await primary.kubectl(*remove_args(node))
            if result.exit_status != 0:
                why = kubeadm.failure_summary(result.stderr or result.stdout)
                raise NodeError(
                    f"removing the reboot record ({REBOOT_ANNOTATION}) failed: {why}; the node "
                    f"is upgraded and schedulable: `kubectl annotate node {node} "
                    f"{REBOOT_ANNOTATION}-` removes it",
                    phase=self.phase,
                )
        return True
