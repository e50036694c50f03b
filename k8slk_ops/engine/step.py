"""The contract every step kind fulfils: a pure ``plan`` and an async ``apply``.

``plan`` looks only at facts and says what it would do on a node (the dry run prints exactly
this), or why nothing is due. ``apply`` does it, through the node layer only, returns whether it
changed anything, and raises ``NodeError`` (with the phase and the node's log tail) when the
node fails.

A step is generic over its options model (``class Init(Step[InitOptions])``): the playbook
loader validates a step's options with that model, and ``plan`` and ``apply`` take that type,
so ``mypy --strict`` checks every use of them and no step narrows its options at run time (an
``assert isinstance`` is gone under ``python -O``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict

from k8slk_ops import kubeadm
from k8slk_ops.engine.context import PlanContext, RunContext

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


OptionsT = TypeVar("OptionsT", bound=BaseModel)


class Step(Generic[OptionsT]):
    """Base of the step vocabulary. Subclasses name their options model as the type argument
    (``Step[NoOptions]`` for none) and set ``name`` and ``phase``."""

    name: ClassVar[str]
    phase: ClassVar[str]
    # The options model, taken from the type argument when the class is made: the loader
    # validates a playbook's options with it, so what ``apply`` receives is of that type.
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
    # True for steps that look at the addon record even when the inventory lists no addon
    # (those taken out of it): the run reads the record for them.
    reads_addon_record: ClassVar[bool] = False
    # False for steps that act through the primary only: they can run for an unreachable node.
    needs_node: ClassVar[bool] = True
    # False for steps that never use the node's own connection: a worker's connection is closed
    # before such steps once nothing later in the run uses it (executor.Executor). A step that acts
    # through the primary only (needs_node False) never does, and is marked so here once; a
    # step that needs the node but only waits on the cluster's API (wait-ready) sets it itself.
    uses_connection: ClassVar[bool] = True
    # Milestones (engine/milestones.py) this step reaches on its node: it says so mid-way
    # (``ctx.milestones.reach``), the executor settles them when it ends. ``awaits`` is the one
    # a step waits for, on its node, before it starts, when it runs beside the step reaching it.
    reaches: ClassVar[tuple[str, ...]] = ()
    awaits: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.needs_node:
            cls.uses_connection = False
        declared = _declared_options(cls)
        if declared is None:
            return
        if "Options" in cls.__dict__ and cls.Options is not declared:
            raise TypeError(
                f"step {cls.__name__} declares Step[{declared.__name__}] and Options = "
                f"{cls.Options.__name__}: name its options once, as the type argument"
            )
        cls.Options = declared

    def plan(self, options: OptionsT, ctx: PlanContext, node: str) -> StepPlan:
        raise NotImplementedError

    def plan_warnings(self, ctx: PlanContext) -> tuple[str, ...]:
        """What the plan says before anything runs when this step has work in it (a wait for
        Ready nodes with no pod network to come, a manifest's likely typo): said once per step
        kind, by the step that knows why, so the planner names no step."""
        return ()

    def only_guards_a_change(self, options: OptionsT) -> bool:
        """True when this call is there only to guard the run's changes (a snapshot taken
        before them): the planner drops it when nothing in the run changes."""
        return False

    async def apply(self, options: OptionsT, ctx: RunContext, node: str) -> bool:
        """Do the planned work on ``node``: True when it changed something, False when it found
        nothing to do (the executor reports such a node "unchanged")."""
        raise NotImplementedError


def _declared_options(cls: type) -> type[BaseModel] | None:
    """The options model a step class names as ``Step[...]``'s type argument, if it does (a
    subclass of a concrete step inherits its parent's)."""
    for base in getattr(cls, "__orig_bases__", ()):
        if get_origin(base) is Step:
            (arg,) = get_args(base)
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None
