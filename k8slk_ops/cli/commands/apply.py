"""``k8slk-ops apply``: make the cluster what the inventory says, in one run.

The playbook is ``playbooks/apply.yml``: the stages of bootstrap, add-node, the addon record,
the labels and taints the inventory owns, remove-node and upgrade's roll, made of the same steps
and guarded as they are (the locks of every changing run, the removal's quorum guard, the
roll's version check, etcd snapshot and health gates). This module only decides what the
inventory asks of the run before it connects: which nodes leave (``remove: true``), whether
there is a version to roll onto (none: the roll's stages are left out), and the roll's batch
of workers (``--max-unavailable``, read as ``upgrade`` reads it).

The plan is made under the cluster lock and printed before anything runs; when it drains,
reboots or resets a node, or prunes an addon (``--prune``: the objects of the addons taken out
of ``cluster.addons`` deleted), it is asked about (``cliutil.confirm``: no terminal and no
``--yes`` is exit 2 with nothing touched). Cron runs ``apply --yes``; with nothing due, it exits
0 and its report says ``changed: false``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from k8slk_ops.base.errors import UsageError
from k8slk_ops.cli.cliutil import (
    CHANGING,
    NO_SNAPSHOT,
    PREPARED,
    PRUNE,
    SNAPSHOT_DIR,
    InventoryArg,
    _load_inventory,
    _run,
    command,
    confirm,
    flag,
    refuse,
)
from k8slk_ops.cli.commands.upgrade import workers_batch
from k8slk_ops.engine.options import RunOptions, SharedOptions
from k8slk_ops.engine.plan import Plan
from k8slk_ops.engine.playbook import Playbook, load_builtin
from k8slk_ops.kubeadm.errors import VersionError
from k8slk_ops.kubeadm.versions import KubeVersion
from k8slk_ops.output.report import Reporter
from k8slk_ops.steps import STEPS

ROLL_PREFIX = "roll-"
ROLL_WORKERS = "roll-workers"
PRUNE_STAGE = "addons-prune"


def apply_playbook(inventory_path: Path, shared: SharedOptions, label: str,
                   max_unavailable: str = "1", *, prune: bool = False
                   ) -> tuple[Playbook, RunOptions]:
    """The apply playbook and options for this inventory; refused (exit 2) when the inventory
    or a flag is bad. Without ``cluster.kubernetesVersion`` there is nothing to roll onto: the
    roll's stages are left out (and the plan says so)."""
    try:
        inv = _load_inventory(inventory_path)
    except UsageError as exc:
        refuse(label, inventory_path, shared, str(exc))
    playbook = load_builtin("apply", STEPS)
    try:
        batch = workers_batch(max_unavailable, len([n for n in inv.workers if not n.remove]))
        if inv.cluster.kubernetes_version:
            KubeVersion.parse(inv.cluster.kubernetes_version)
    except (VersionError, ValueError) as exc:
        refuse(label, inventory_path, shared, str(exc))
    if inv.cluster.kubernetes_version:
        stages = tuple(dataclasses.replace(s, serial=batch) if s.name == ROLL_WORKERS else s
                       for s in playbook.stages)
    else:
        stages = tuple(s for s in playbook.stages if not s.name.startswith(ROLL_PREFIX))
    playbook = dataclasses.replace(playbook, stages=stages)
    leaving = tuple(n.name for n in inv.nodes if n.remove)
    options = dataclasses.replace(RunOptions.for_command(shared), leaving=leaving,
                                  keep_hand_cordons=True, prune=prune)
    return playbook, options


def _plan_apply(inventory_path: Path, shared: SharedOptions, label: str, prune: bool
                ) -> tuple[Playbook, RunOptions]:
    return apply_playbook(inventory_path, shared, label, prune=prune)


PREPARED["apply"] = _plan_apply


def due_text(plan: Plan) -> str:
    """The plan as a run prints it before it starts: the stages with work and what each node
    will do, without the nodes that have nothing to do (``plan apply`` lists those and why; a
    cron run on a big cluster would print a line per node and stage)."""
    lines = [f"plan: {plan.playbook.name}"]
    lines += [f"  ! {warning}" for warning in plan.warnings]
    lines += [f"  ! {name}: unreachable ({why})" for name, why in sorted(plan.unreachable.items())]
    for stage in plan.stages:
        if not stage.nodes:
            continue
        lines.append(f"stage {stage.name}:")
        lines += [f"  {n.node}: {a.summary}" for n in stage.nodes for s in n.steps
                  for a in s.actions]
    if not plan.changes:
        lines.append("nothing to change")
    return "\n".join(lines)


def disruption_question(plan: Plan, cluster: str) -> str | None:
    """What to ask before the plan runs, or None when it disrupts no workload."""
    touched = [(n, stage) for n, stage in plan.disruptions() if stage != PRUNE_STAGE]
    pruned = [str(a.detail["addon"]) for stage in plan.stages if stage.name == PRUNE_STAGE
              for n in stage.nodes for s in n.steps if s.call.step.disrupts for a in s.actions]
    if not touched and not pruned:
        return None
    rolled = sorted({n for n, stage in touched if stage.startswith(ROLL_PREFIX)})
    removed = sorted({n for n, stage in touched if not stage.startswith(ROLL_PREFIX)})
    parts = []
    if pruned:
        parts.append(f"delete the objects of {', '.join(pruned)} (not in cluster.addons)")
    if removed:
        parts.append(f"drain, reset and delete {', '.join(removed)}")
    if rolled:
        parts.append(f"drain and reboot {', '.join(rolled)} into the new version, one at a time")
    if not touched:
        return f"Apply to {cluster}: {'; '.join(parts)}? What they run will stop"
    return f"Apply to {cluster}: {'; '.join(parts)}? Workloads on them will move"


@command(shared=CHANGING)
def apply(
    inventory: InventoryArg,
    yes: Annotated[bool, flag("--yes", "-y", help="Do not ask before draining, rebooting or "
                              "removing a node, or pruning an addon.")] = False,
    prune: Annotated[bool, PRUNE] = False,
    max_unavailable: Annotated[
        str,
        typer.Option("--max-unavailable", metavar="N|P%",
                     help="Workers rolled at once (a number or a percentage; default 1)."),
    ] = "1",
    snapshot_dir: Annotated[Path | None, SNAPSHOT_DIR] = None,
    no_snapshot: Annotated[bool, NO_SNAPSHOT] = False,
    *,
    shared: SharedOptions,
) -> None:
    """Make the cluster what the inventory says: create or join, addons, labels and taints,
    remove, roll."""
    playbook, options = apply_playbook(inventory, shared, "apply", max_unavailable, prune=prune)
    options = dataclasses.replace(options, snapshot_dir=snapshot_dir, no_snapshot=no_snapshot)
    cluster = _load_inventory(inventory).cluster.name  # read without fault just above

    def on_plan(reporter: Reporter, plan: Plan) -> None:
        """The plan first; then, when it disrupts workloads and --yes was not given, ask."""
        reporter.show_text(due_text(plan))
        question = disruption_question(plan, cluster)
        if question is not None and not yes:
            confirm("apply", inventory, shared, question)

    _run("apply", playbook, Path(inventory), shared, options, on_plan=on_plan)

