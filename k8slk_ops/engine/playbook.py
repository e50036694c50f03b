"""Playbooks: the built-in workflows and the user's own, as validated YAML.

A playbook is a list of stages; a stage runs a list of steps over a group of hosts, with its own
batch size (``serial``), ``concurrency`` and failure policy, and the ``cleanup`` steps that run
for its nodes when they fail or are interrupted. ``always`` stages run at the end whatever
happened (revoking credentials, releasing things). Steps come from a closed vocabulary
(``k8slk_ops.steps``, which the command line hands in as ``steps``): an unknown step, an unknown
field or a bad value is an error naming the file, line and field, raised before anything
connects.

Example::

    name: bootstrap
    stages:
      - name: init
        hosts: primary
        onFailure: stop
        steps:
          - init: {timeout: 10m}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from k8slk_ops.base import hosts
from k8slk_ops.base.errors import UsageError
from k8slk_ops.engine import when
from k8slk_ops.engine.step import Step
from k8slk_ops.engine.yamlsource import Located, load_yaml_with_lines


class StageModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    hosts: str | list[str] = "all"
    serial: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    on_failure: Literal["stop", "continue"] = Field(default="continue", alias="onFailure")
    when: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = Field(min_length=1)
    cleanup: list[dict[str, Any]] = Field(default_factory=list)
    with_next: bool = Field(default=False, alias="withNext")

    @field_validator("when")
    @classmethod
    def _when(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        problem = when.check(value or {})
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: str | list[str]) -> str | list[str]:
        items = [value] if isinstance(value, str) else value
        for item in items:
            problem = hosts.check(item)
            if problem:
                raise ValueError(problem)
        return value


class PlaybookModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    description: str = ""
    requires_cluster: bool = Field(default=False, alias="requiresCluster")
    read_only: bool = Field(default=False, alias="readOnly")
    without_api: bool = Field(default=False, alias="withoutApi")
    lock_files: bool = Field(default=False, alias="lockFiles")
    primary: Literal["first", "not-selected"] = "first"
    stages: list[StageModel] = Field(min_length=1)
    always: list[StageModel] = Field(default_factory=list)


@dataclass(frozen=True)
class StepCall:
    """One step of a stage with its options, validated with the step's own ``Options`` model:
    the engine holds steps of every kind (``Step[Any]``), and each call pairs one with options
    of its type."""

    step: Step[Any]
    options: BaseModel
    line: int = 0

    @property
    def name(self) -> str:
        return self.step.name


@dataclass(frozen=True)
class Stage:
    name: str
    hosts: tuple[str, ...]
    steps: tuple[StepCall, ...]
    serial: int | None = None
    concurrency: int | None = None
    on_failure: Literal["stop", "continue"] = "continue"
    always: bool = False
    where: str = ""  # "file:line: stages[i].hosts" for errors found against an inventory
    when: dict[str, Any] = field(default_factory=dict)  # conditions on node facts
    # Steps run for a node of this stage when its steps failed or were interrupted (e.g. give
    # a node whose drain did not finish back to the scheduler).
    cleanup: tuple[StepCall, ...] = ()
    # Runs beside the next stage: both start together and the run goes on once both ended
    # (bootstrap applies the addons and mints the join credentials while init finishes: they
    # await the point where init's API answers its admin, and the joins wait for all three).
    # Several in a row run all together.
    with_next: bool = False


@dataclass(frozen=True)
class Playbook:
    name: str
    description: str
    source: str
    stages: tuple[Stage, ...]
    always: tuple[Stage, ...] = field(default_factory=tuple)
    requires_cluster: bool = False  # refuse to start when no control plane is initialised
    # Only reads: no locks, and a refused host key is a row of the report, not a stop.
    read_only: bool = False
    # Goes on through SSH alone when the cluster is initialised but no API answers (certs
    # renew: the fix for an API that expired certificates stopped cannot need that API).
    without_api: bool = False
    # Locked by the lock files on the control planes even while the API answers: etcd restore
    # replaces etcd, where the Lease lives.
    lock_files: bool = False
    # Which initialised control plane the run works through: the first in inventory order, or
    # the first that is not selected (removing a control plane works through another one).
    primary: str = "first"

    def check_hosts(self, node_names: set[str]) -> None:
        """Every host a stage names must be a group or a node of the inventory."""
        problems = [
            f"{stage.where}: no host group or node named {name!r} in the inventory"
            for stage in (*self.stages, *self.always)
            for pattern in stage.hosts
            for name in hosts.names_in(pattern)
            if name not in node_names
        ]
        if problems:
            raise UsageError("\n".join(problems))


def _builtin_dir() -> Path:
    """playbooks/ of a checkout, else the copy packaged into the wheel."""
    repo = Path(__file__).resolve().parents[2] / "playbooks"
    if repo.is_dir():
        return repo
    return Path(str(resources.files("k8slk_ops") / "_playbooks"))


def builtin_path(name: str) -> Path:
    """The path of a built-in playbook (``bootstrap`` -> playbooks/bootstrap.yml)."""
    return _builtin_dir() / f"{name}.yml"


# The step vocabulary a playbook may use, by name (``k8slk_ops.steps.STEPS``).
Steps = Mapping[str, Step[Any]]


def load_builtin(name: str, steps: Steps) -> Playbook:
    """A built-in playbook; an unknown name (``plan nonsense``) is refused with the known ones."""
    path = builtin_path(name)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in _builtin_dir().glob("*.yml")))
        raise UsageError(f"no built-in playbook named {name!r}; pass one of: {known}")
    return load_playbook(path, steps)


def load_playbook(path: Path, steps: Steps) -> Playbook:
    """Load and validate a playbook file; every problem is reported with file:line."""
    doc = load_yaml_with_lines(path)
    try:
        model = PlaybookModel.model_validate(doc.value)
    except ValidationError as exc:
        raise UsageError(doc.format_validation_error(exc)) from None
    problems: list[str] = []
    stages = [_stage(doc, ("stages", i), s, steps, problems, False)
              for i, s in enumerate(model.stages)]
    always = [_stage(doc, ("always", i), s, steps, problems, True)
              for i, s in enumerate(model.always)]
    problems += _lone_with_next(doc, model)
    if model.read_only:
        problems += _not_read_only(doc, model, steps)
    if problems:
        raise UsageError("\n".join(problems))
    return Playbook(
        model.name,
        model.description,
        str(path),
        tuple(stages),
        tuple(always),
        requires_cluster=model.requires_cluster,
        read_only=model.read_only,
        without_api=model.without_api,
        lock_files=model.lock_files,
        primary=model.primary,
    )


def _stage(
    doc: Located,
    loc: tuple[str | int, ...],
    model: StageModel,
    steps: Steps,
    problems: list[str],
    always: bool,
) -> Stage:
    calls = _calls(doc, (*loc, "steps"), model.steps, steps, problems)
    cleanup = _calls(doc, (*loc, "cleanup"), model.cleanup, steps, problems)
    if always and model.cleanup:
        problems.append(
            doc.where((*loc, "cleanup"), "an always stage has no cleanup: it is the cleanup")
        )
    patterns = (model.hosts,) if isinstance(model.hosts, str) else tuple(model.hosts)
    return Stage(
        name=model.name,
        hosts=patterns,
        steps=tuple(calls),
        serial=model.serial,
        concurrency=model.concurrency,
        on_failure=model.on_failure,
        always=always,
        where=doc.where((*loc, "hosts"), "").rstrip(": "),
        when=dict(model.when or {}),
        cleanup=tuple(cleanup),
        with_next=model.with_next,
    )


def _lone_with_next(doc: Located, model: PlaybookModel) -> list[str]:
    """``withNext`` needs a next stage to run beside, of the ordinary stages (several in a row
    run all together)."""
    problems = []
    last = len(model.stages) - 1
    if model.stages and model.stages[last].with_next:
        problems.append(doc.where(("stages", last, "withNext"),
                                  "withNext: true on the last stage: there is no next stage "
                                  "to run beside; remove it"))
    for i, stage in enumerate(model.always):
        if stage.with_next:
            problems.append(doc.where(("always", i, "withNext"),
                                      "an always stage runs on its own: remove withNext"))
    return problems


def _not_read_only(doc: Located, model: PlaybookModel, steps: Steps) -> list[str]:
    """The steps that may not be in a ``readOnly: true`` playbook, each at its file:line.

    The flag is the playbook's own word, and it switches the run's protections off: no local
    lock, no cluster lock, and a refused host key becomes a row of the report. A copy of
    ``status.yml`` keeps it; given a ``run`` or a ``drain``, it would change nodes unlocked
    and through a host key that did not match. So a read-only playbook holds read-only steps
    (``Step.read_only``), or it does not load."""
    problems = []
    for part, stages in (("stages", model.stages), ("always", model.always)):
        for i, stage in enumerate(stages):
            for kind, entries in (("steps", stage.steps), ("cleanup", stage.cleanup)):
                for j, entry in enumerate(entries):
                    step = steps.get(next(iter(entry), "")) if len(entry) == 1 else None
                    if step is None or step.read_only:
                        continue  # an unknown or malformed step is reported by _calls
                    problems.append(doc.where(
                        (part, i, kind, j),
                        f"{step.name!r} changes nodes or the cluster, and this playbook says "
                        "readOnly: true (a read-only run takes no lock and goes on past a "
                        "refused host key): remove readOnly, or the step; read-only steps: "
                        + ", ".join(sorted(n for n, s in steps.items() if s.read_only)),
                    ))
    return problems


def _calls(
    doc: Located,
    loc: tuple[str | int, ...],
    entries: list[dict[str, Any]],
    steps: Steps,
    problems: list[str],
) -> list[StepCall]:
    """The validated step calls of a stage's ``steps`` or ``cleanup`` list."""
    calls: list[StepCall] = []
    for j, entry in enumerate(entries):
        step_loc = (*loc, j)
        if len(entry) != 1:
            problems.append(doc.where(step_loc, "a step is a mapping with exactly one step name"))
            continue
        ((step_name, raw_opts),) = entry.items()
        step = steps.get(step_name)
        if step is None:
            known = ", ".join(sorted(steps))
            problems.append(doc.where(step_loc, f"unknown step {step_name!r}; known: {known}"))
            continue
        try:
            opts = step.Options.model_validate(raw_opts or {})
        except ValidationError as exc:
            problems.append(doc.format_validation_error(exc, prefix=(*step_loc, step_name)))
            continue
        calls.append(StepCall(step, opts, doc.line_of(step_loc)))
    return calls
