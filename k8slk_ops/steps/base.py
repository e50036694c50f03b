"""The contract every step kind fulfils: a pure ``plan`` and an async ``apply``.

``plan`` looks only at facts and says what it would do on a node (the dry run prints exactly
this), or why nothing is due. ``apply`` does it, through the node layer only, and raises
``NodeError`` (with the phase and the node's log tail) when the node fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

from k8slk_ops import kubeadm
from k8slk_ops.context import PlanContext, RunContext

# A timeout or TTL in a playbook: a Go duration (90s, 10m, 1h30m) or a bare number of seconds,
# checked when the playbook loads; steps see seconds.
Duration = Annotated[float, BeforeValidator(kubeadm.parse_timeout)]


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Action:
    """One thing a step would do on a node, in words and in data (for --json plans)."""

    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepPlan:
    """A step's plan for one node: actions, or the reason nothing is due."""

    actions: tuple[Action, ...] = ()
    skip_reason: str = ""

    @property
    def due(self) -> bool:
        return bool(self.actions)


def skip(reason: str) -> StepPlan:
    return StepPlan(skip_reason=reason)


def do(*actions: Action) -> StepPlan:
    return StepPlan(actions=actions)


class Step:
    """Base of the step vocabulary. Subclasses set ``name``, ``Options`` and ``phase``."""

    name: ClassVar[str]
    phase: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions
    # False for steps that only check, wait or clean up: they do not make a run "changed".
    changes: ClassVar[bool] = True
    # True for steps that change nothing on a node or in the cluster (they may write a local
    # file: a snapshot, a kubeconfig). Only these may be in a ``readOnly: true`` playbook,
    # which takes no lock: ``changes`` is no guide, a cleanup (uncordon) changes things too.
    read_only: ClassVar[bool] = False
    # True for steps that stop or move a node's workloads (drain, reboot, reset): a command
    # that decides from its plan whether to ask first (apply) asks when one of them is due.
    disrupts: ClassVar[bool] = False
    # False for steps that act through the primary only: they can run for an unreachable node.
    needs_node: ClassVar[bool] = True
    # False for steps that never use the node's own connection: a worker's connection is closed
    # before such steps once nothing later in the run uses it (run.Executor). A step that acts
    # through the primary only (needs_node False) never does, and is marked so here once; a
    # step that needs the node but only waits on the cluster's API (wait-ready) sets it itself.
    uses_connection: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.needs_node:
            cls.uses_connection = False

    def plan(self, options: BaseModel, ctx: PlanContext, node: str) -> StepPlan:
        raise NotImplementedError

    async def apply(self, options: BaseModel, ctx: RunContext, node: str) -> None:
        raise NotImplementedError
