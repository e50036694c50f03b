"""Each step kind's plan as a table: facts in, actions out, and nothing due once applied.

The tables are the YAML files in ``step_tables/``, one per step kind, named after it
(``join.yml`` tables ``join``); ``_facts.yml`` holds what they share: fact texts (as the facts
probe prints them), inventories and addon manifests, each by name. A case is one call of the
step's ``plan`` for one node::

    - name: worker-joins              # the test's id is join/worker-joins
      about: why the case is there    # optional, as is the table's own about:
      options: {timeout: 5m}          # validated by the step's own Options, as a playbook is
      inventory: lab                  # a name in _facts.yml (lab when left out), or a mapping
      node: w-1
      facts: {"*": worker, w-1: waiting}   # fact texts by name; "*": every other node of the
                                           # inventory that is not unreachable
      unreachable: {w-2: connection refused}
      cluster:
        primary: cp-1
        initialised: true
        members: {cp-1: {}, w-2: {ready: false}}   # also unschedulable, kubeletVersion, labels,
                                                   # taints, owned, reboot; ready defaults to
                                                   # true, controlPlane to the inventory's role
        addons: {net.yaml: {manifest: net.yaml}}   # the record: a manifest as it is now, or
                                                   # sha256 (and objects) of another content
      run: {upgradeTo: v1.31.3, withinDays: 30}    # RunOptions fields the plan reads (RunSpec)
      actions: [...]                  # or skip: TEXT, or refused: TEXT (the run refused)
      after: {facts: {w-1: worker}, cluster: {...}}

How an outcome is matched (one rule for every table): ``actions:`` lists the plan's action
summaries in order, one entry each; a plain string must equal its summary, ``{contains: TEXT}``
must be found in it. ``skip:`` must be found in the skip reason; the plan must have no action.
``refused:`` must be found in the words of the plan's refusal of the whole run (UsageError).

``after:`` is the state once the change is applied (its ``facts`` replace those of the nodes it
names, its ``cluster`` and ``unreachable`` replace the case's when given): the plan made from it
must have nothing due, so a run made again is a no-op. A case whose step changes something
(``Step.changes``) and whose plan is due gives ``after:``, or ``rerunDue:`` saying why the plan
cannot see the change (certs-renew's expiry dates are no fact).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from k8slk_ops.base.errors import UsageError
from k8slk_ops.cluster.addonrecord import RecordedObject, RecordEntry
from k8slk_ops.cluster.etcdrestore import SnapshotFile
from k8slk_ops.cluster.nodemeta import OwnedKeys
from k8slk_ops.cluster.pkiarchive import PkiFiles
from k8slk_ops.engine.context import ClusterFacts, Member, PlanContext, RunOptions
from k8slk_ops.engine.options import DEFAULT_CERT_DAYS, DEFAULT_TOKEN_TTL
from k8slk_ops.inventory import Inventory, load_inventory
from k8slk_ops.kubeadm.kubectl import Taint
from k8slk_ops.node.facts import parse_facts
from k8slk_ops.node.rebootrecord import RebootRecord
from k8slk_ops.steps import STEPS, Step, StepPlan

TABLES = Path(__file__).parent / "step_tables"
SHARED = "_facts.yml"

# Steps with no table, each with the reason: their plan reads no fact of a node or of the
# cluster. A new step has a table or a line here.
WITHOUT_TABLE: dict[str, str] = {
    "run": "its plan is its options (the command, where it runs), the same on every node",
    "removal-guard": "always due: the quorum check is apply's (test_removal_guard.py)",
    "etcd-restore-check": "always due: one wait for the cluster, the same on every plan",
    "etcd-rebuild-check": "always due: one wait for the cluster, the same on every plan",
}


class TableError(Exception):
    """A table that cannot be read: its message names the file and the case."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              frozen=True)


class TaintSpec(_Model):
    key: str
    effect: str
    value: str = ""


class OwnedSpec(_Model):
    labels: tuple[str, ...] = ()
    taints: tuple[str, ...] = ()


class RebootSpec(_Model):
    run: str
    boot_id: str


class MemberSpec(_Model):
    ready: bool = True
    control_plane: bool | None = None  # None: as the inventory's role says
    unschedulable: bool = False
    kubelet_version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    taints: tuple[TaintSpec, ...] = ()
    owned: OwnedSpec = OwnedSpec()
    reboot: RebootSpec | None = None


class ObjectSpec(_Model):
    api_version: str
    kind: str
    namespace: str = ""
    name: str


class AddonSpec(_Model):
    """A record entry: of a manifest of the inventory as it is now (``manifest``, with its
    objects unless ``keepObjects: false``), or of another content (``sha256``, with the
    ``objects`` given, if any)."""

    manifest: str | None = None
    keep_objects: bool = True
    sha256: str | None = None
    objects: tuple[ObjectSpec, ...] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AddonSpec:
        if (self.manifest is None) == (self.sha256 is None):
            raise ValueError("an addon entry gives manifest or sha256")
        if self.manifest is not None and self.objects is not None:
            raise ValueError("the objects of a manifest are its own: give keepObjects")
        return self


class ClusterSpec(_Model):
    primary: str
    initialised: bool = False
    members: dict[str, MemberSpec] = Field(default_factory=dict)
    addons: dict[str, AddonSpec] = Field(default_factory=dict)
    api_error: str = ""
    through_ssh: bool = False


class SnapshotSpec(_Model):
    """The snapshot ``etcd restore`` was given, as checked on this side."""

    file: str
    size: int
    sha256: str


class PkiSpec(_Model):
    """The PKI archive ``etcd restore --pki`` was given: its name and its members' names."""

    file: str
    files: tuple[str, ...]


class RunSpec(_Model):
    """The RunOptions fields a step's plan reads, under the names the command line gives."""

    upgrade_to: str = ""
    within_days: int | None = DEFAULT_CERT_DAYS
    force: int = 0
    selected: tuple[str, ...] = ()
    leaving: tuple[str, ...] = ()
    keep_hand_cordons: bool = False
    prune: bool = False
    no_snapshot: bool = False
    snapshot_pki: bool = False
    snapshot_keep: int | None = None
    snapshot_dir: str | None = None
    verify_restore: bool = False
    token_ttl: float = DEFAULT_TOKEN_TTL
    kubeconfig_out: str | None = None
    restore: SnapshotSpec | None = None
    restore_pki: PkiSpec | None = None

    def options(self) -> RunOptions:
        return RunOptions(
            run_id="r1", upgrade_to=self.upgrade_to, cert_days=self.within_days,
            force=self.force, selected=self.selected, leaving=self.leaving,
            keep_hand_cordons=self.keep_hand_cordons, prune=self.prune,
            no_snapshot=self.no_snapshot, snapshot_pki=self.snapshot_pki,
            snapshot_keep=self.snapshot_keep,
            snapshot_dir=None if self.snapshot_dir is None else Path(self.snapshot_dir),
            snapshot_verify_restore=self.verify_restore,
            token_ttl=self.token_ttl,
            kubeconfig_out=None if self.kubeconfig_out is None else Path(self.kubeconfig_out),
            restore=None if self.restore is None else SnapshotFile(
                Path(self.restore.file), self.restore.size, self.restore.sha256, True, b""),
            restore_pki=None if self.restore_pki is None else PkiFiles(
                Path(self.restore_pki.file), "0" * 64, dict.fromkeys(self.restore_pki.files, b"")),
        )


class Contains(_Model):
    contains: str = Field(min_length=1)


class AfterSpec(_Model):
    facts: dict[str, str] = Field(default_factory=dict)
    unreachable: dict[str, str] | None = None
    cluster: ClusterSpec | None = None


class CaseSpec(_Model):
    name: str
    about: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    inventory: str | dict[str, Any] = "lab"
    node: str
    facts: dict[str, str] = Field(default_factory=dict)
    unreachable: dict[str, str] = Field(default_factory=dict)
    cluster: ClusterSpec
    run: RunSpec = RunSpec()
    actions: tuple[str | Contains, ...] | None = None
    skip: str | None = None
    refused: str | None = None  # the plan refuses the whole run (UsageError): its words
    after: AfterSpec | None = None
    rerun_due: str | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> CaseSpec:
        if [self.actions, self.skip, self.refused].count(None) != 2:
            raise ValueError("a case expects actions, skip or refused, one of them")
        if self.actions == ():
            raise ValueError("actions: [] says nothing is due: write skip: with the reason")
        if self.actions is None and (self.after or self.rerun_due):
            raise ValueError("after and rerunDue are for a case whose plan is due")
        return self


class SharedSpec(_Model):
    facts: dict[str, str]
    inventories: dict[str, dict[str, Any]]
    manifests: dict[str, str] = Field(default_factory=dict)


class TableSpec(_Model):
    about: str = ""
    cases: list[dict[str, Any]]


@dataclass(frozen=True)
class Entry:
    """One case as collected: where it is and its raw mapping (checked when it runs, so that a
    malformed case fails alone, with its file and name)."""

    path: Path
    name: str
    raw: Any
    problem: str = ""  # the whole file could not be read: why

    @property
    def step(self) -> str:
        return self.path.stem

    @property
    def where(self) -> str:
        return f"{self.path}: case {self.name!r}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (the second ``facts:``
    of a case would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader
    except (OSError, yaml.YAMLError) as exc:
        raise TableError(f"{path}: {exc}") from None


def _why(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'case'}: {e['msg']}" for e in exc.errors()
    )


def collect(directory: Path) -> list[Entry]:
    """Every case of every table in ``directory``."""
    entries = []
    for path in sorted(directory.glob("*.yml")):
        if path.name == SHARED:
            continue
        try:
            table = TableSpec.model_validate(_read_yaml(path))
        except TableError as exc:
            entries.append(Entry(path, "(file)", None, str(exc)))
            continue
        except ValidationError as exc:
            entries.append(Entry(path, "(file)", None, f"{path}: {_why(exc)}"))
            continue
        names: set[str] = set()
        for index, raw in enumerate(table.cases):
            name = raw.get("name")
            if not isinstance(name, str):
                name = f"#{index + 1}"
            problem = f"{path}: case {name!r}: a second case of that name" if name in names else ""
            names.add(name)
            entries.append(Entry(path, name, raw, problem))
    return entries


@functools.cache
def load_shared(directory: Path) -> SharedSpec:
    path = directory / SHARED
    try:
        return SharedSpec.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise TableError(f"{path}: {_why(exc)}") from None


@dataclass(frozen=True)
class Case:
    """A case checked against its table's step and the shared names, ready to plan."""

    entry: Entry
    step: Step[Any]
    options: BaseModel
    spec: CaseSpec


def load_case(entry: Entry, shared: SharedSpec) -> Case:
    if entry.problem:
        raise TableError(entry.problem)
    step = STEPS.get(entry.step)
    if step is None:
        raise TableError(f"{entry.where}: no step kind is named {entry.step!r} "
                         "(a table is named after its step)")
    try:
        spec = CaseSpec.model_validate(entry.raw)
    except ValidationError as exc:
        raise TableError(f"{entry.where}: {_why(exc)}") from None
    try:
        options = step.Options.model_validate(spec.options)
    except ValidationError as exc:
        raise TableError(f"{entry.where}: options: {_why(exc)}") from None
    case = Case(entry, step, options, spec)
    _check_names(case, shared)
    if spec.actions is not None and step.changes and spec.after is None and not spec.rerun_due:
        raise TableError(f"{entry.where}: {step.name} changes something: give after: (the "
                         "state once applied) or rerunDue: (why the plan cannot see it)")
    return case


def _check_names(case: Case, shared: SharedSpec) -> None:
    spec, where = case.spec, case.entry.where
    if isinstance(spec.inventory, str) and spec.inventory not in shared.inventories:
        raise TableError(f"{where}: no inventory named {spec.inventory!r} in {SHARED}")
    fact_names = {**spec.facts, **(spec.after.facts if spec.after else {})}
    for node, name in fact_names.items():
        if name not in shared.facts:
            raise TableError(f"{where}: facts of {node}: no fact text named {name!r} in "
                             f"{SHARED} (known: {', '.join(sorted(shared.facts))})")


# -- building the plan's context -------------------------------------------------------------


def _inventory(case: Case, shared: SharedSpec, tmp_path: Path) -> Inventory:
    spec = case.spec.inventory
    document = shared.inventories[spec] if isinstance(spec, str) else spec
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, text in shared.manifests.items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    inventory = load_inventory(path)
    names = set(inventory.names)
    nodes = {case.spec.node, case.spec.cluster.primary, *case.spec.facts, *case.spec.unreachable}
    if case.spec.after is not None:
        nodes |= set(case.spec.after.facts) | set(case.spec.after.unreachable or {})
        if case.spec.after.cluster is not None:
            nodes.add(case.spec.after.cluster.primary)
    both = sorted(set(case.spec.facts) & set(case.spec.unreachable))
    if both:
        raise TableError(f"{case.entry.where}: {', '.join(both)} unreachable and with facts: "
                         "an unreachable node's facts are not read")
    unknown = sorted(nodes - names - {"*"})
    if unknown:
        raise TableError(f"{case.entry.where}: {', '.join(unknown)} not in the inventory "
                         f"({', '.join(sorted(names))})")
    return inventory


def _member(name: str, spec: MemberSpec, inventory: Inventory) -> Member:
    control_plane = spec.control_plane
    if control_plane is None:
        control_plane = name in inventory.names and inventory.node(name).role == "control-plane"
    return Member(
        name, spec.ready, control_plane, spec.unschedulable, spec.kubelet_version,
        reboot=None if spec.reboot is None else RebootRecord(spec.reboot.run, spec.reboot.boot_id),
        labels=spec.labels,
        taints=tuple(Taint(t.key, t.effect, t.value) for t in spec.taints),
        owned=OwnedKeys(frozenset(spec.owned.labels), frozenset(spec.owned.taints)),
    )


def _record(where: str, key: str, spec: AddonSpec, inventory: Inventory) -> RecordEntry:
    if spec.sha256 is not None:
        objects = None if spec.objects is None else tuple(
            RecordedObject(o.api_version, o.kind, o.namespace, o.name) for o in spec.objects)
        return RecordEntry(spec.sha256, objects)
    addon = next((a for a in inventory.addon_manifests if a.name == spec.manifest), None)
    if addon is None:
        raise TableError(f"{where}: addons.{key}: the inventory has no manifest "
                         f"{spec.manifest!r}")
    entry = RecordEntry.of(addon)
    return entry if spec.keep_objects else RecordEntry(entry.sha256)


def _cluster(where: str, spec: ClusterSpec, inventory: Inventory) -> ClusterFacts:
    return ClusterFacts(
        primary=spec.primary,
        initialised=spec.initialised,
        members={n: _member(n, m, inventory) for n, m in spec.members.items()},
        addons={k: _record(where, k, a, inventory) for k, a in spec.addons.items()},
        api_error=spec.api_error,
        through_ssh=spec.through_ssh,
    )


def _facts(names: Mapping[str, str], unreachable: Mapping[str, str], inventory: Inventory,
           shared: SharedSpec) -> dict[str, str]:
    """node -> its fact text; ``*`` stands for every node not named and not unreachable."""
    texts = {n: shared.facts[name] for n, name in names.items() if n != "*"}
    if "*" in names:
        for node in inventory.names:
            if node not in texts and node not in unreachable:
                texts[node] = shared.facts[names["*"]]
    return texts


def contexts(case: Case, shared: SharedSpec, tmp_path: Path
             ) -> tuple[PlanContext, PlanContext | None]:
    """The context the case plans with, and the one once its change is applied."""
    spec, where = case.spec, case.entry.where
    inventory = _inventory(case, shared, tmp_path)
    options = spec.run.options()
    texts = _facts(spec.facts, spec.unreachable, inventory, shared)
    before = PlanContext(
        inventory=inventory, options=options,
        facts={n: parse_facts(t) for n, t in texts.items()},
        unreachable=dict(spec.unreachable),
        cluster=_cluster(where, spec.cluster, inventory),
    )
    if spec.after is None:
        return before, None
    after = spec.after
    unreachable = spec.unreachable if after.unreachable is None else after.unreachable
    texts = {n: t for n, t in texts.items() if n not in unreachable}
    texts |= _facts(after.facts, unreachable, inventory, shared)
    return before, PlanContext(
        inventory=inventory, options=options,
        facts={n: parse_facts(t) for n, t in texts.items()},
        unreachable=dict(unreachable),
        cluster=before.cluster if after.cluster is None else _cluster(where, after.cluster,
                                                                      inventory),
    )


def _plan(case: Case, ctx: PlanContext) -> StepPlan:
    return case.step.plan(case.options, ctx, case.spec.node)


def mismatch(case: Case, plan: StepPlan) -> str:
    """How the plan differs from what the case expects, or ''."""
    spec = case.spec
    got = [a.summary for a in plan.actions]
    if spec.skip is not None:
        if plan.due:
            return f"expected a skip ({spec.skip!r}), planned {got}"
        if spec.skip not in plan.skip_reason:
            return f"expected a skip with {spec.skip!r}, skipped: {plan.skip_reason!r}"
        return ""
    wanted = spec.actions or ()
    if not plan.due:
        return f"expected {len(wanted)} action(s), skipped: {plan.skip_reason!r}"
    if len(got) != len(wanted):
        return f"expected {len(wanted)} action(s), planned {len(got)}: {got}"
    for index, (want, summary) in enumerate(zip(wanted, got, strict=True)):
        if isinstance(want, Contains) and want.contains not in summary:
            return f"action {index + 1}: {want.contains!r} not in {summary!r}"
        if isinstance(want, str) and want != summary:
            return f"action {index + 1}: expected {want!r}, planned {summary!r}"
    return ""


# -- the tests ---------------------------------------------------------------------------------


ENTRIES = collect(TABLES)


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e.step}/{e.name}" for e in ENTRIES])
def test_step_table(entry: Entry, tmp_path: Path) -> None:
    shared = load_shared(TABLES)
    case = load_case(entry, shared)
    before, after = contexts(case, shared, tmp_path)
    if case.spec.refused is not None:
        with pytest.raises(UsageError) as refused:
            _plan(case, before)
        assert case.spec.refused in str(refused.value), f"{entry.where}: {refused.value}"
        return
    problem = mismatch(case, _plan(case, before))
    assert not problem, f"{entry.where}: {problem}"
    if after is not None:
        again = _plan(case, after)
        assert not again.due, (f"{entry.where}: after the change the plan is still due: "
                               f"{[a.summary for a in again.actions]}")


def test_every_step_has_a_table_or_a_reason() -> None:
    tables = {p.stem for p in TABLES.glob("*.yml") if p.name != SHARED}
    assert sorted(tables - set(STEPS)) == [], "tables named after no step kind"
    assert sorted(set(WITHOUT_TABLE) - set(STEPS)) == [], "reasons for no step kind"
    assert sorted(tables & set(WITHOUT_TABLE)) == [], "steps with a table and a reason"
    assert sorted(set(STEPS) - tables - set(WITHOUT_TABLE)) == [], (
        "steps with no table in tests/unit/step_tables/ and no reason in WITHOUT_TABLE")


def test_every_table_shows_its_step_due() -> None:
    shared = load_shared(TABLES)
    due: dict[str, int] = {}
    for entry in ENTRIES:
        due[entry.step] = due.get(entry.step, 0) + (load_case(entry, shared).spec.actions is not None)
    assert sorted(step for step, count in due.items() if not count) == []


# -- a malformed table fails with its file and case named ---------------------------------------


def _table(tmp_path: Path, name: str, body: str) -> Path:
    (tmp_path / SHARED).write_text((TABLES / SHARED).read_text())
    path = tmp_path / name
    path.write_text(body)
    return path


GOOD_CASE = ("  - name: {name}\n    node: w-1\n    facts: {{'*': {fact}}}\n"
             "    cluster: {{primary: cp-1, initialised: true}}\n    skip: x\n")


@pytest.mark.parametrize(
    ("file", "body", "words"),
    [
        ("join.yml", GOOD_CASE.format(name="typo", fact="waiting").replace("node:", "nod:"),
         "case 'typo': node: Field required; nod: Extra inputs are not permitted"),
        ("jion.yml", GOOD_CASE.format(name="any", fact="waiting"),
         "case 'any': no step kind is named 'jion'"),
        ("join.yml", GOOD_CASE.format(name="no-such-facts", fact="wating"),
         "case 'no-such-facts': facts of *: no fact text named 'wating'"),
        ("join.yml", GOOD_CASE.format(name="bad-options", fact="waiting")
         + "    options: {tmeout: 3}\n", "case 'bad-options': options: tmeout"),
        ("join.yml", GOOD_CASE.format(name="both", fact="waiting") + "    actions: [x]\n",
         "case 'both': case: Value error, a case expects actions, skip or refused"),
        ("join.yml", GOOD_CASE.format(name="unlisted", fact="waiting")
         .replace("w-1", "w-9"), "case 'unlisted': w-9 not in the inventory"),
        ("join.yml", GOOD_CASE.format(name="primary-typo", fact="waiting")
         .replace("primary: cp-1", "primary: cp-9"), "case 'primary-typo': cp-9 not in"),
        ("join.yml", GOOD_CASE.format(name="gone", fact="waiting, w-2: worker")
         + "    unreachable: {w-2: x}\n", "case 'gone': w-2 unreachable and with facts"),
        ("join.yml", GOOD_CASE.format(name="twice", fact="waiting") + "    node: w-2\n",
         "'node' given twice"),
        ("join.yml", GOOD_CASE.format(name="changes", fact="waiting").replace("skip: x",
                                                                           "actions: [x]"),
         "case 'changes': join changes something: give after:"),
    ],
)
def test_a_malformed_case_names_its_file_and_case(
    tmp_path: Path, file: str, body: str, words: str
) -> None:
    path = _table(tmp_path, file, "cases:\n" + body)
    shared = load_shared(tmp_path)
    (entry,) = collect(tmp_path)
    with pytest.raises(TableError) as err:
        case = load_case(entry, shared)
        contexts(case, shared, tmp_path / "ctx")
    assert str(path) in str(err.value)
    assert words in str(err.value)


def test_a_malformed_file_fails_as_one_case_named_after_it(tmp_path: Path) -> None:
    path = _table(tmp_path, "join.yml", "casse: []\n")
    (entry,) = collect(tmp_path)
    assert entry.name == "(file)"
    with pytest.raises(TableError, match="casse") as err:
        load_case(entry, load_shared(tmp_path))
    assert str(path) in str(err.value)


def test_two_cases_of_one_name_are_refused(tmp_path: Path) -> None:
    path = _table(tmp_path, "join.yml",
                  "cases:\n" + GOOD_CASE.format(name="same", fact="waiting") * 2)
    first, second = collect(tmp_path)
    load_case(first, load_shared(tmp_path))
    with pytest.raises(TableError, match="case 'same': a second case of that name") as err:
        load_case(second, load_shared(tmp_path))
    assert str(path) in str(err.value)
