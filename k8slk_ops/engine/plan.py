"""Planning: playbook x inventory x facts -> ordered stages of (node, actions). Pure.

The plan is computed once, from facts read before anything changes, and then executed as
made: the executor runs exactly the planned steps, on the planned nodes, in the planned order,
and never plans again. ``--dry-run`` and ``plan`` print exactly that. Neither planning nor
running changes the ``PlanContext`` (it is frozen, its facts a copy); what a run learns on the
way (credentials, membership, versions) goes into ``RunState``. So every stage is planned
from the same facts: a step whose work depends on an earlier stage (a join after an init)
plans from what it is given, and checks what it needs when it runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from k8slk_ops.base import hosts
from k8slk_ops.engine import when
from k8slk_ops.engine.context import PlanContext
from k8slk_ops.engine.playbook import Playbook, Stage, StepCall
from k8slk_ops.engine.step import Action, Step


@dataclass(frozen=True)
class PlannedStep:
    call: StepCall
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class PlannedNode:
    node: str
    steps: tuple[PlannedStep, ...]
    # The stage's cleanup for this node: run when its steps fail or are interrupted.
    cleanup: tuple[PlannedStep, ...] = ()


@dataclass(frozen=True)
class PlannedStage:
    stage: Stage
    nodes: tuple[PlannedNode, ...]
    skipped: tuple[tuple[str, str], ...]  # (node, reason) for nodes with nothing due

    @property
    def name(self) -> str:
        return self.stage.name


@dataclass(frozen=True)
class Plan:
    playbook: Playbook
    stages: tuple[PlannedStage, ...]
    always: tuple[PlannedStage, ...]
    unreachable: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # shown before anything runs (no pod network to come)

    @property
    def changes(self) -> bool:
        """True when any stage other than checks and cleanup has work due."""
        return any(
            step.call.step.changes
            for stage in self.stages
            for node in stage.nodes
            for step in node.steps
        )

    def disruptions(self) -> list[tuple[str, str]]:
        """(node, stage) of every node whose due steps stop or move its workloads (a drain,
        a reboot, a reset), in plan order: what a command asks about before it runs."""
        return [
            (node.node, stage.name)
            for stage in self.stages
            for node in stage.nodes
            if any(step.call.step.disrupts for step in node.steps)
        ]

    def nodes_touched(self) -> set[str]:
        return {n.node for s in (*self.stages, *self.always) for n in s.nodes}

    def to_json(self) -> list[dict[str, Any]]:
        out = []
        for stage in (*self.stages, *self.always):
            out.append(
                {
                    "stage": stage.name,
                    "always": stage.stage.always,
                    "nodes": [
                        {
                            "node": n.node,
                            "actions": [
                                {"step": s.call.name, "summary": a.summary, **a.detail}
                                for s in n.steps
                                for a in s.actions
                            ],
                            **_cleanup_json(n),
                        }
                        for n in stage.nodes
                    ],
                    "skipped": [{"node": n, "reason": r} for n, r in stage.skipped],
                }
            )
        return out

    def to_text(self) -> str:
        lines = [f"plan: {self.playbook.name}"]
        lines += [f"  ! {warning}" for warning in self.warnings]
        for name, why in sorted(self.unreachable.items()):
            lines.append(f"  ! {name}: unreachable ({why})")
        for stage in (*self.stages, *self.always):
            tag = " (always)" if stage.stage.always else ""
            lines.append(f"stage {stage.name}{tag}:")
            if not stage.nodes and not stage.skipped:
                lines.append("  (no nodes)")
            for planned in stage.nodes:
                for step in planned.steps:
                    for action in step.actions:
                        lines.append(f"  {planned.node}: {action.summary}")
                for step in planned.cleanup:
                    for action in step.actions:
                        lines.append(f"  {planned.node}: if it fails: {action.summary}")
            for node, reason in stage.skipped:
                lines.append(f"  {node}: nothing to do ({reason})")
        return "\n".join(lines)


def _cleanup_json(node: PlannedNode) -> dict[str, Any]:
    if not node.cleanup:
        return {}
    return {
        "cleanup": [
            {"step": s.call.name, "summary": a.summary, **a.detail}
            for s in node.cleanup
            for a in s.actions
        ]
    }


def resolve_hosts(ctx: PlanContext, patterns: tuple[str, ...]) -> list[str]:
    """Node names a stage's ``hosts`` select, in inventory order, without duplicates."""
    universe = hosts.Universe(
        nodes=[(n.name, n.role) for n in ctx.inventory.nodes],
        primary=ctx.cluster.primary,
        members=frozenset(ctx.cluster.members),
        selected=frozenset(ctx.options.selected),
        leaving=frozenset(ctx.options.leaving),
    )
    return hosts.resolve(patterns, universe)


def needed_nodes(playbook: Playbook, ctx: PlanContext) -> list[str]:
    """Every node some stage selects: the nodes a run must connect to, and no others."""
    names: set[str] = set()
    for stage in (*playbook.stages, *playbook.always):
        names.update(resolve_hosts(ctx, stage.hosts))
    return [n.name for n in ctx.inventory.nodes if n.name in names]


def make_plan(playbook: Playbook, ctx: PlanContext) -> Plan:
    stages = _idle_guards_dropped(tuple(_plan_stage(stage, ctx) for stage in playbook.stages))
    always = tuple(_plan_stage(stage, ctx) for stage in playbook.always)
    due: dict[str, Step[Any]] = {}  # each step kind with work in the plan, in plan order
    for s in stages:
        for n in s.nodes:
            for step in n.steps:
                due.setdefault(step.call.name, step.call.step)
    warnings = tuple(w for step in due.values() for w in step.plan_warnings(ctx))
    return Plan(playbook, stages, always, dict(ctx.unreachable), warnings)


def _guards(stage: PlannedStage) -> bool:
    return any(c.step.only_guards_a_change(c.options) for c in stage.stage.steps)


def _idle_guards_dropped(stages: tuple[PlannedStage, ...]) -> tuple[PlannedStage, ...]:
    """A snapshot taken before a change (``beforeChange``) is not due when nothing after it
    changes: a cron ``upgrade`` with nothing to do stays a quick no-op and leaves no file
    behind, and ``apply`` takes one before its roll only (not for a label set earlier)."""
    idle = "nothing changes after it: no snapshot needed"
    out = list(stages)
    for i, s in enumerate(stages):
        later = stages[i + 1:]
        if _guards(s) and not any(
            step.call.step.changes for t in later for n in t.nodes for step in n.steps
        ):
            out[i] = dataclasses.replace(
                s, nodes=(), skipped=(*s.skipped, *((n.node, idle) for n in s.nodes)))
    return tuple(out)


def _plan_stage(stage: Stage, ctx: PlanContext) -> PlannedStage:
    planned: list[PlannedNode] = []
    skipped: list[tuple[str, str]] = []
    for name in resolve_hosts(ctx, stage.hosts):
        if stage.when and not when.matches(stage.when, when.fact_values(ctx, name)):
            skipped.append((name, "when: not matched"))
            continue
        gone = name in ctx.unreachable
        if gone and all(call.step.needs_node for call in stage.steps):
            skipped.append((name, "unreachable"))
            continue
        steps, reasons = _plan_calls(stage.steps, ctx, name)
        if steps:
            cleanup, _ = _plan_calls(stage.cleanup, ctx, name)
            planned.append(PlannedNode(name, tuple(steps), tuple(cleanup)))
        else:
            skipped.append((name, "; ".join(reasons) or "nothing due"))
    return PlannedStage(stage, tuple(planned), tuple(skipped))


def _plan_calls(
    calls: tuple[StepCall, ...], ctx: PlanContext, name: str
) -> tuple[list[PlannedStep], list[str]]:
    """The due steps of ``calls`` on node ``name``, and why the others are not due."""
    steps: list[PlannedStep] = []
    reasons: list[str] = []
    gone = name in ctx.unreachable
    for call in calls:
        if gone and call.step.needs_node:
            reasons.append("unreachable")
            continue
        step_plan = call.step.plan(call.options, ctx, name)
        if step_plan.due:
            steps.append(PlannedStep(call, step_plan.actions))
        elif step_plan.skip_reason:
            reasons.append(step_plan.skip_reason)
    return steps, reasons
