"""The old Ansible inventories: INI groups and vars, read into the YAML layout.

The automation this tool replaces kept clusters as an INI ``hosts`` file with the groups
``[init-master]``, ``[masters]`` and ``[workers]``, and the cluster's variables in ``[all:vars]``
(or another group's vars, like ``[k8s:vars]``) and in ``group_vars/all.yml`` beside it. Its users
can point this tool at that file unchanged. The data is rewritten into the YAML layout with the
place of every value remembered, then validated like any inventory, so errors name INI lines.

Groups nest with ``[group:children]`` (see ``ini_groups``): a host is in every ancestor of the
groups that list it, so a worker may sit in ``[east]`` under ``[workers:children]``. Precedence
follows Ansible's: vars in the file (``[all:vars]`` below other groups' vars, a child's over its
parent's), then ``group_vars/all.yml``, then ``group_vars/<group>.yml``; a host line's own vars
win. The ``[init-master]`` host becomes the first control plane. A host no role group reaches
is not a node and becomes a warning with its line, never silently dropped. SSH options in
``ansible_ssh_common_args`` are read where they have a meaning here; ``StrictHostKeyChecking=no``
becomes ``accept-new``: host keys are recorded on first use and checked after, never ignored.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8slk_ops.inventory.errors import MAX_SHOWN, InventoryError, InventoryIssue, field_path
from k8slk_ops.inventory.ini_groups import ALL, UNGROUPED, ChildLine, GroupTree
from k8slk_ops.inventory.located import MapLocator, Position
from k8slk_ops.inventory.model import Inventory, SSHSettings
from k8slk_ops.inventory.validate import build_inventory, suggest
from k8slk_ops.inventory.yaml_loader import load_yaml_document, plain

INIT_GROUP = "init-master"
MASTER_GROUP = "masters"
WORKER_GROUP = "workers"
ROLE_GROUPS = (INIT_GROUP, MASTER_GROUP, WORKER_GROUP)

CLUSTER_VARS = {
    "clusterName": "name",
    "kubernetesVersion": "kubernetesVersion",
    "controlPlaneEndpoint": "controlPlaneEndpoint",
    "podSubnet": "podSubnet",
    "serviceSubnet": "serviceSubnet",
    "dnsDomain": "dnsDomain",
    "certSANs": "certSANs",
}
ANSIBLE_SSH_VARS = {
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_ssh_private_key_file": "identityFile",
    "ansible_private_key_file": "identityFile",
}
ADDRESS_VARS = ("ansible_host", "ansible_ssh_host")
NODE_IP_VARS = ("nodeIP",)
SSH_ARGS_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
SSH_FIELDS = tuple(f.alias or n for n, f in SSHSettings.model_fields.items())
INT_FIELDS = ("port",)
NUMBER_FIELDS = ("connectTimeout", "keepaliveInterval")
KNOWN_VARS = (
    *CLUSTER_VARS, *ANSIBLE_SSH_VARS, *ADDRESS_VARS, *NODE_IP_VARS, *SSH_ARGS_VARS, *SSH_FIELDS
)

MAX_RANGE = 10_000  # a host range wider than this is a typo, not a cluster
MAX_HOSTS = 10_000  # hosts in one inventory, all lines and ranges together
_SECTION = re.compile(r"\[([^\]\s]+)\]\s*(?:[#;].*)?")
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::([0-9]+))?\]")


def looks_like_ini(text: str) -> bool:
    """True when the first meaningful line is an INI section header like ``[masters]``."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        return bool(re.fullmatch(r"\[[\w.:-]+\]\s*", stripped))
    return False


@dataclass(frozen=True)
class Var:
    """A variable's value and where its name and value stand."""

    value: Any
    key_at: Position
    value_at: Position


@dataclass
class Host:
    """A host as the INI file declares it, possibly over several lines and groups."""

    name: str
    at: Position
    groups: list[str] = field(default_factory=list)
    vars: dict[str, Var] = field(default_factory=dict)
    at_in: dict[str, Position] = field(default_factory=dict)  # its line in each group


@dataclass
class IniFile:
    """The parsed structure of one INI inventory, before any meaning is given to it."""

    hosts: dict[str, Host] = field(default_factory=dict)
    group_hosts: dict[str, list[str]] = field(default_factory=dict)
    group_vars: dict[str, dict[str, Var]] = field(default_factory=dict)
    headers: dict[str, Position] = field(default_factory=dict)
    defined: dict[str, Position] = field(default_factory=dict)  # by [g] or [g:children]
    vars_at: dict[str, Position] = field(default_factory=dict)  # each [g:vars] header
    children: dict[str, list[ChildLine]] = field(default_factory=dict)
    issues: list[InventoryIssue] = field(default_factory=list)


def _tokens(line: str) -> list[tuple[int, str]]:
    """Whitespace-separated tokens with their 0-based offsets; quotes group, ``#`` ends."""
    out: list[tuple[int, str]] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        if line[i] in "#;" and (i == 0 or line[i - 1].isspace()):
            break
        start, quote = i, ""
        while i < n and (quote or not line[i].isspace()):
            if quote and line[i] == quote:
                quote = ""
            elif not quote and line[i] in "'\"":
                quote = line[i]
            i += 1
        out.append((start, line[start:i]))
    return out


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def expand_pattern(pattern: str, limit: int = MAX_RANGE) -> list[str]:
    """Ansible host ranges: ``w[1:3]`` -> w1 w2 w3, ``n[01:02]`` keeps zeros, ``[a:c]``.

    The number of names is known before any is built: ranges multiply, and a pattern that
    would give more than ``limit`` names is refused rather than expanded."""
    ranges = [_range_items(m, pattern) for m in _RANGE.finditer(pattern)]
    total = 1
    for items in ranges:
        total *= len(items)
        if total > limit:
            raise ValueError(f"host pattern {pattern!r} gives over {limit} hosts")
    names = [""]
    pos = 0
    for m, items in zip(_RANGE.finditer(pattern), ranges, strict=True):
        head = pattern[pos : m.start()]
        names = [name + head + item for name in names for item in items]
        pos = m.end()
    return [name + pattern[pos:] for name in names]


def _range_items(m: re.Match[str], pattern: str) -> list[str]:
    """The values of one ``[lo:hi:step]``: numbers (zero-padded like ``lo``) or letters."""
    lo, hi, step_text = m.group(1), m.group(2), m.group(3)
    step = max(int(step_text), 1) if step_text else 1
    items: list[str]
    if lo.isdigit() and hi.isdigit():
        if (int(hi) - int(lo)) // step >= MAX_RANGE:
            raise ValueError(f"host range [{lo}:{hi}] in {pattern!r} gives over {MAX_RANGE} hosts")
        width = len(lo) if lo.startswith("0") else 0
        items = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1, step)]
    elif len(lo) == 1 and len(hi) == 1 and lo.isalpha() and hi.isalpha():
        if not (lo.isascii() and hi.isascii() and lo.islower() == hi.islower()):
            raise ValueError(
                f"a letter range is two ASCII letters of one case, got [{lo}:{hi}] in {pattern!r}"
            )
        items = [chr(c) for c in range(ord(lo), ord(hi) + 1, step)]
    else:
        raise ValueError(f"bad host range [{lo}:{hi}] in {pattern!r}")
    if not items:
        raise ValueError(f"empty host range [{lo}:{hi}] in {pattern!r}")
    return items


def parse_ini(path: Path, text: str) -> IniFile:
    """Sections, hosts and vars, each with its place; lines it cannot read become issues."""
    file = str(path)
    ini = IniFile()
    group, kind = "ungrouped", "hosts"
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        indent = len(line) - len(line.lstrip())
        header = _SECTION.fullmatch(stripped)
        if header:
            group, _, kind = header.group(1).partition(":")
            kind = kind or "hosts"
            at = Position(file, number, indent + 1)
            if kind not in ("hosts", "vars", "children"):
                ini.issues.append(
                    InventoryIssue(
                        file,
                        number,
                        indent + 1,
                        "",
                        f"unknown section kind [{header.group(1)}]: use [group], [group:vars] "
                        "or [group:children]",
                    )
                )
                kind = "skip"
            ini.headers.setdefault(group, at)
            if kind in ("hosts", "children"):
                ini.defined.setdefault(group, at)
            elif kind == "vars":
                ini.vars_at.setdefault(group, at)
            if kind == "hosts":
                ini.group_hosts.setdefault(group, [])
            elif kind == "children":
                ini.children.setdefault(group, [])
            continue
        if kind == "vars":
            _parse_var_line(ini, file, number, line, group)
        elif kind == "hosts":
            _parse_host_line(ini, file, number, line, group)
        elif kind == "children":
            _parse_child_line(ini, file, number, line, group)
    return ini


def _parse_child_line(ini: IniFile, file: str, number: int, line: str, group: str) -> None:
    """One child group per line, as Ansible reads ``[group:children]``."""
    tokens = _tokens(line)
    if not tokens:
        return
    (offset, name), rest = tokens[0], tokens[1:]
    if rest or "=" in name:
        ini.issues.append(
            InventoryIssue(
                file,
                number,
                offset + 1,
                "",
                f"expected one group name per line in [{group}:children], got {line.strip()!r}",
            )
        )
        return
    ini.children[group].append(ChildLine(name, Position(file, number, offset + 1)))


def _parse_var_line(ini: IniFile, file: str, number: int, line: str, group: str) -> None:
    key, sep, value = line.partition("=")
    col = len(line) - len(line.lstrip()) + 1
    if not sep or not key.strip():
        ini.issues.append(
            InventoryIssue(
                file,
                number,
                col,
                "",
                f"expected 'name=value' in [{group}:vars], got {line.strip()!r}",
            )
        )
        return
    value_col = len(key) + 1 + (len(value) - len(value.lstrip())) + 1
    ini.group_vars.setdefault(group, {})[key.strip()] = Var(
        _unquote(value), Position(file, number, col), Position(file, number, value_col)
    )


def _parse_host_line(ini: IniFile, file: str, number: int, line: str, group: str) -> None:
    tokens = _tokens(line)
    if not tokens:
        return
    (offset, pattern), rest = tokens[0], tokens[1:]
    if "=" in pattern:
        ini.issues.append(
            InventoryIssue(
                file, number, offset + 1, "", f"expected a host name first, got {pattern!r}"
            )
        )
        return
    room = MAX_HOSTS - len(ini.hosts)
    try:
        names = expand_pattern(pattern, limit=max(room, 0))
    except ValueError as exc:
        message = str(exc)
        if room < MAX_RANGE:
            message = f"more than {MAX_HOSTS} hosts in the inventory ({message})"
        ini.issues.append(InventoryIssue(file, number, offset + 1, "", message))
        return
    host_vars: dict[str, Var] = {}
    for start, token in rest:
        key, sep, value = token.partition("=")
        if not sep or not key:
            ini.issues.append(
                InventoryIssue(
                    file,
                    number,
                    start + 1,
                    "",
                    f"expected 'name=value' after the host, got {token!r}",
                )
            )
            continue
        host_vars[key] = Var(
            _unquote(value),
            Position(file, number, start + 1),
            Position(file, number, start + len(key) + 2),
        )
    for name in names:
        host = ini.hosts.setdefault(name, Host(name, Position(file, number, offset + 1)))
        if group not in host.groups:
            host.groups.append(group)
            host.at_in[group] = Position(file, number, offset + 1)
        host.vars.update(host_vars)
        if name not in ini.group_hosts.setdefault(group, []):
            ini.group_hosts[group].append(name)


def _group_vars_file(directory: Path, group: str) -> Path | None:
    for suffix in (".yml", ".yaml", ""):
        candidate = directory / "group_vars" / f"{group}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _read_group_vars(path: Path, issues: list[InventoryIssue]) -> dict[str, Var]:
    """A ``group_vars`` YAML file's top-level variables with their places."""
    try:
        data, locator = load_yaml_document(path)
    except InventoryError as exc:
        if any(i.message == "the file is empty" for i in exc.issues):
            return {}
        issues.extend(exc.issues)
        return {}
    return {str(k): Var(plain(v), locator.key((k,)), locator.value((k,))) for k, v in data.items()}


@dataclass(frozen=True)
class Layered:
    """A variable as it reaches one host, and whether it came from ``all`` (``[all:vars]`` or
    ``group_vars/all.yml``): those go once to the inventory's ``ssh:``, not to every node."""

    var: Var
    everyone: bool


class _Builder:
    """Gives the parsed INI its meaning: the YAML layout plus where each value came from."""

    def __init__(self, path: Path, ini: IniFile) -> None:
        self.path = path
        self.file = str(path)
        self.ini = ini
        self.issues = list(ini.issues)
        # A group's variable reaches each of its hosts: its problem is said once, and past
        # what the error shows nothing more is collected (nor a suggestion computed for it).
        self._said: set[InventoryIssue] = set(self.issues)
        self.cut = False
        self._unknown: set[Position] = set()
        self.warnings: list[InventoryIssue] = []
        self.values: dict[tuple[str | int, ...], Position] = {}
        self.keys: dict[tuple[str | int, ...], Position] = {}
        self.tree = GroupTree(list(ini.defined), ini.children, ini.group_hosts)
        self._files: dict[str, dict[str, Var]] = {}
        self._merged: dict[frozenset[str], dict[str, Layered]] = {}
        self._priorities: dict[str, int] = {}

    def issue(self, at: Position, field: str, message: str) -> None:
        found = InventoryIssue(at.file, at.line, at.column, field, message)
        if found in self._said or self._full():
            return
        self._said.add(found)
        self.issues.append(found)

    def _full(self) -> bool:
        """Whether the error already holds more problems than it shows; notes the cut."""
        if len(self.issues) > MAX_SHOWN:
            self.cut = True
        return self.cut

    def put(self, target: dict[str, Any], loc: tuple[str | int, ...], var: Var) -> None:
        target[str(loc[-1])] = var.value
        self.values[loc] = var.value_at
        self.keys[loc] = var.key_at

    def build(self) -> tuple[dict[str, Any], MapLocator]:
        ini = self.ini
        structure = [*self.tree.issues, *self._undefined_vars()]
        if structure:  # the tree is not one Ansible would read: nothing more is meaningful
            raise InventoryError([*self.issues, *structure], more=self.cut)
        order = self._roles()
        self._typo_groups()
        self._unmapped()
        reaching = [self._host_vars(name) for name, _ in order]
        everyone = self._everyone()
        cluster = self._cluster(order, reaching, everyone)
        ssh: dict[str, Any] = {}
        for name, var in everyone.items():
            if name not in CLUSTER_VARS:
                self._global_var(name, var, ssh)
        nodes = [
            self._node(index, name, role, reaching[index])
            for index, (name, role) in enumerate(order)
        ]
        raw: dict[str, Any] = {"cluster": cluster, "ssh": ssh, "nodes": nodes}
        first = Position(self.file, 1, 1)
        self.values[("nodes",)] = ini.headers.get(INIT_GROUP, ini.headers.get(MASTER_GROUP, first))
        self.values.setdefault(("cluster",), ini.headers.get(ALL, first))
        return raw, MapLocator(first, self.values, self.keys)

    def _undefined_vars(self) -> list[InventoryIssue]:
        """``[group:vars]`` of a group no section defines: Ansible refuses the file, and the
        variables would otherwise reach no host without a word."""
        return [
            InventoryIssue(
                at.file,
                at.line,
                at.column,
                "",
                f"[{group}:vars] is for a group no section defines (Ansible refuses it too): "
                f"add [{group}] with its hosts or [{group}:children] with its groups, or move "
                "the variables to [all:vars]",
            )
            for group, at in self.ini.vars_at.items()
            if group not in self.ini.defined and group not in (ALL, UNGROUPED)
        ]

    def _groups_of(self, name: str) -> frozenset[str]:
        """Every group a host is in: those whose sections list it and all their ancestors."""
        out: set[str] = set()
        for group in self.ini.hosts[name].groups:
            out |= self.tree.ancestors(group)
        return frozenset(out)

    def _reach(self, name: str, group: str) -> Position:
        """The host's line through which it is in ``group`` (the first, in file order)."""
        host = self.ini.hosts[name]
        for direct in host.groups:
            if group in self.tree.ancestors(direct):
                return host.at_in.get(direct, host.at)
        return host.at

    def _roles(self) -> list[tuple[str, str]]:
        """Nodes in order with their roles: ``[init-master]``'s host, then ``[masters]``',
        then ``[workers]``', each group with the hosts of its children."""
        tree = self.tree
        init_hosts = tree.hosts(INIT_GROUP)
        if len(init_hosts) > 1:
            self.issue(
                self._reach(init_hosts[1], INIT_GROUP),
                "",
                f"[{INIT_GROUP}] holds one host, the first control plane; "
                f"move the others to [{MASTER_GROUP}]",
            )
        order: list[tuple[str, str]] = []
        seen: set[str] = set()
        for group, role in (
            (INIT_GROUP, "control-plane"),
            (MASTER_GROUP, "control-plane"),
            (WORKER_GROUP, "worker"),
        ):
            for name in init_hosts if group == INIT_GROUP else tree.hosts(group):
                if name in seen:
                    if role == "worker":
                        self.issue(
                            self._reach(name, group),
                            "",
                            f"host {name!r} is both a control plane and in [{group}]",
                        )
                    continue
                seen.add(name)
                order.append((name, role))
        return order

    def _typo_groups(self) -> None:
        """A group named like a role group (``[worker]``, ``[master]``) and under none is a
        typo whose hosts would not be nodes: refused, with the name meant."""
        for group, at in self.ini.defined.items():
            if group in ROLE_GROUPS or self.tree.ancestors(group) & set(ROLE_GROUPS):
                continue
            hint = suggest(group, ROLE_GROUPS)
            if hint is not None:
                self.issue(at, "", f"unknown group [{group}]; did you mean [{hint}]?")

    def _unmapped(self) -> None:
        """A host no role group reaches is not a node. Ansible inventories hold such hosts
        (a bastion, a load balancer), so it is a warning, not a refusal; but it is never
        dropped without a word, as a worker whose group was not listed under ``[workers]``
        would be."""
        roles = set(ROLE_GROUPS)
        for name, host in self.ini.hosts.items():
            if self._groups_of(name) & roles:
                continue
            groups = ", ".join(f"[{g}]" for g in host.groups)
            self.warnings.append(
                InventoryIssue(
                    host.at.file,
                    host.at.line,
                    host.at.column,
                    "",
                    f"host {name!r} is not a node: its groups ({groups}) are not "
                    f"[{INIT_GROUP}], [{MASTER_GROUP}] or [{WORKER_GROUP}] nor under them; "
                    f"if it is one, list its group under [{WORKER_GROUP}:children] (or "
                    f"[{MASTER_GROUP}:children])",
                )
            )

    def _priority(self, group: str) -> int:
        """``ansible_group_priority`` of the group's INI vars (Ansible reads it only there)."""
        if group not in self._priorities:
            var = self.ini.group_vars.get(group, {}).get("ansible_group_priority")
            value = 1
            if var is not None:
                text = str(var.value).strip()
                if re.fullmatch(r"-?[0-9]+", text):
                    value = int(text)
                else:
                    self.issue(
                        var.value_at, "", f"ansible_group_priority must be a whole number, got {text!r}"
                    )
            self._priorities[group] = value
        return self._priorities[group]

    def _file_vars(self, group: str) -> dict[str, Var]:
        """``group_vars/<group>.yml`` beside the inventory, read once."""
        if group not in self._files:
            found = _group_vars_file(self.path.parent, group)
            self._files[group] = {} if found is None else _read_group_vars(found, self.issues)
        return self._files[group]

    def _group_vars(self, groups: frozenset[str]) -> dict[str, Layered]:
        """The variables a host in exactly these groups gets from them, in Ansible's order:
        the file's ``[all:vars]``, the file's other groups' vars (shallow groups first, a
        child over its parent, then ``ansible_group_priority``, then name), then
        ``group_vars/all.yml``, then the other ``group_vars/`` files in the same order."""
        merged = self._merged.get(groups)
        if merged is not None:
            return merged
        ordered = sorted(
            (g for g in groups if g != ALL),
            key=lambda g: self.tree.sort_key(g, self._priority(g)),
        )
        merged = {}
        layers: list[tuple[dict[str, Var], bool]] = [
            (self.ini.group_vars.get(ALL, {}), True),
            *((self.ini.group_vars.get(g, {}), False) for g in ordered),
            (self._file_vars(ALL), True),
            *((self._file_vars(g), False) for g in ordered),
        ]
        for variables, everyone in layers:
            for key, var in variables.items():
                merged[key] = Layered(var, everyone)
        self._merged[groups] = merged
        return merged

    def _host_vars(self, name: str) -> dict[str, Layered]:
        """Everything that reaches one host; its own line's vars win over every group's."""
        merged = dict(self._group_vars(self._groups_of(name)))
        for key, var in self.ini.hosts[name].vars.items():
            merged[key] = Layered(var, False)
        return merged

    def _everyone(self) -> dict[str, Var]:
        """What ``all`` gives every host: ``[all:vars]`` below ``group_vars/all.yml``."""
        return {**self.ini.group_vars.get(ALL, {}), **self._file_vars(ALL)}

    def _cluster(
        self,
        order: list[tuple[str, str]],
        reaching: list[dict[str, Layered]],
        everyone: dict[str, Var],
    ) -> dict[str, Any]:
        """The cluster's settings: one value for all nodes. Ansible gives each host its own;
        one set where it reaches only some nodes (a role group, a host line) is refused."""
        cluster: dict[str, Any] = {}
        for name, target in CLUSTER_VARS.items():
            got = [r[name].var if name in r else None for r in reaching]
            chosen = next((v for v in got if v is not None), None) if got else everyone.get(name)
            if chosen is None:
                continue
            places = {v.value_at for v in got if v is not None}
            if len(places) > 1 or None in got:
                base = everyone.get(name)
                self._partial_cluster_var(name, order, [None if v == base else v for v in got])
            value = chosen.value
            if name == "certSANs" and isinstance(value, str):
                value = [s.strip() for s in value.split(",") if s.strip()]
            self.put(cluster, ("cluster", target), Var(value, chosen.key_at, chosen.value_at))
        return cluster

    def _partial_cluster_var(
        self, name: str, order: list[tuple[str, str]], got: list[Var | None]
    ) -> None:
        """Each place that sets a cluster setting for some nodes only (``got``: what reaches
        each node, ``None`` where ``all``'s value or nothing does)."""
        reaches: dict[Position, tuple[Var, list[str]]] = {}
        for (node, _), var in zip(order, got, strict=True):
            if var is not None:
                reaches.setdefault(var.key_at, (var, []))[1].append(node)
        for var, nodes in reaches.values():
            shown = ", ".join(nodes[:3]) + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")
            self.issue(
                var.key_at,
                "",
                f"{name} is a cluster setting, but this sets it for {shown} only, not for "
                f"all {len(order)} nodes: set it once in [all:vars], group_vars/all.yml or the "
                "vars of a group holding every node",
            )

    def _global_var(self, name: str, var: Var, ssh: dict[str, Any]) -> None:
        if name in ADDRESS_VARS or name in NODE_IP_VARS:
            self.issue(var.key_at, "", f"{name} names one host: set it on the host's line")
        elif name != "ansible_group_priority":
            self._ssh_var(name, var, ssh, ("ssh",))

    def _ssh_var(
        self, name: str, var: Var, target: dict[str, Any], prefix: tuple[str | int, ...]
    ) -> None:
        if name in ANSIBLE_SSH_VARS:
            self.put(target, (*prefix, ANSIBLE_SSH_VARS[name]), _typed(ANSIBLE_SSH_VARS[name], var))
        elif name in SSH_FIELDS:
            if prefix == ("ssh",) and name == "hostKeyFingerprint":
                self.issue(
                    var.key_at,
                    "",
                    "a host key fingerprint belongs to one host: set it on the host's line",
                )
                return
            self.put(target, (*prefix, name), _typed(name, var))
        elif name in SSH_ARGS_VARS:
            for option, value in self._ssh_args(var):
                self.put(target, (*prefix, option), Var(value, var.key_at, var.value_at))
        elif name.startswith("ansible_"):
            return  # Ansible's own settings (interpreter, shell, become): nothing to do here
        elif var.key_at not in self._unknown and not self._full():
            self._unknown.add(var.key_at)  # a group's variable comes once per host
            hint = suggest(name, KNOWN_VARS)
            message = f"unknown variable {name!r}"
            self.issue(var.key_at, "", message + (f"; did you mean {hint!r}?" if hint else ""))

    def _ssh_args(self, var: Var) -> list[tuple[str, Any]]:
        """The options of an ssh command line that have a meaning here."""
        try:
            words = shlex.split(str(var.value))
        except ValueError as exc:
            self.issue(var.value_at, "", f"cannot split ssh arguments: {exc}")
            return []
        out: list[tuple[str, Any]] = []
        flags = {"-J": "jumpHost", "-p": "port", "-i": "identityFile", "-l": "user"}
        i = 0
        while i < len(words):
            word = words[i]
            option: str | None = None
            if word == "-o" and i + 1 < len(words):
                option, i = words[i + 1], i + 1
            elif word.startswith("-o") and len(word) > 2:
                option = word[2:]
            elif word in flags and i + 1 < len(words):
                out.append((flags[word], _convert(flags[word], words[i + 1])))
                i += 1
            if option is not None:
                key, _, value = option.replace(" ", "=", 1).partition("=")
                if key.lower() == "proxycommand":
                    self.issue(var.value_at, "", PROXY_COMMAND_REFUSED)
                    i += 1
                    continue
                mapped = _ssh_option(key.lower(), value)
                if mapped is not None:
                    out.append(mapped)
            i += 1
        return out

    def _node(
        self, index: int, name: str, role: str, reaching: dict[str, Layered]
    ) -> dict[str, Any]:
        host = self.ini.hosts[name]
        loc: tuple[str | int, ...] = ("nodes", index)
        self.values[loc] = host.at
        self.values[(*loc, "name")] = host.at
        self.values[(*loc, "role")] = host.at
        node: dict[str, Any] = {"name": name, "address": name, "role": role}
        self.values[(*loc, "address")] = host.at
        ssh: dict[str, Any] = {}
        for key, layered in reaching.items():
            var = layered.var
            if layered.everyone or key in CLUSTER_VARS or key == "ansible_group_priority":
                continue  # in the inventory's ssh: once, or in the cluster's settings
            if key in ADDRESS_VARS:
                node["address"] = var.value
                self.values[(*loc, "address")] = var.value_at
            elif key in NODE_IP_VARS:
                node["nodeIP"] = var.value
                self.values[(*loc, "nodeIP")] = var.value_at
            else:
                self._ssh_var(key, var, ssh, (*loc, "ssh"))
        if ssh:
            node["ssh"] = ssh
            self.values.setdefault((*loc, "ssh"), host.at)
        return node


PROXY_COMMAND_REFUSED = (
    "ProxyCommand is not supported in ssh arguments (it would be dropped, and the nodes reached "
    "another way): use -J / -o ProxyJump=HOST (jumpHost), or put the ProxyCommand in the ssh "
    "config file the inventory names (ssh.configFile, ~/.ssh/config by default)"
)


def _ssh_option(key: str, value: str) -> tuple[str, Any] | None:
    if key == "stricthostkeychecking":
        policy = {"no": "accept-new", "off": "accept-new", "accept-new": "accept-new"}
        return "hostKeyPolicy", policy.get(value.lower(), "strict")
    if key == "userknownhostsfile":
        # /dev/null with StrictHostKeyChecking=no meant "check nothing"; keep the default file
        return None if value.strip() in ("/dev/null", "none") else ("knownHosts", value)
    names = {
        "proxyjump": "jumpHost",
        "connecttimeout": "connectTimeout",
        "serveraliveinterval": "keepaliveInterval",
        "port": "port",
        "user": "user",
        "identityfile": "identityFile",
    }
    if key in names:
        return names[key], _convert(names[key], value)
    return None


def _convert(name: str, value: str) -> Any:
    """INI values are text; numbers become numbers where the model wants them, and stay text
    (reported as such) when they are not numbers."""
    text = value.strip()
    if name in INT_FIELDS and re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if name in NUMBER_FIELDS:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _typed(name: str, var: Var) -> Var:
    if isinstance(var.value, str):
        return Var(_convert(name, var.value), var.key_at, var.value_at)
    return var


def load_ini_inventory(path: Path, text: str) -> Inventory:
    """Load and validate an Ansible INI inventory (with ``group_vars/`` beside it)."""
    builder = _Builder(path, parse_ini(path, text))
    raw, locator = builder.build()
    own = builder.issues
    try:
        inventory = build_inventory(raw, locator, path)
    except InventoryError as exc:
        found = [*own, *(_for_ini(i, path) for i in exc.issues)]
        raise InventoryError(_once_per_place(found), more=builder.cut) from None
    if own:
        raise InventoryError(own, more=builder.cut)
    return inventory.model_copy(update={"warnings": tuple(sorted(set(builder.warnings)))})


def _once_per_place(issues: list[InventoryIssue]) -> list[InventoryIssue]:
    """One issue per place: a bad value in a group's vars reaches each of its nodes (as
    ``nodes[0].ssh.port``, ``nodes[1].ssh.port``, ...), and it is fixed once, on its line."""
    out: dict[tuple[str, int, int, str, str], InventoryIssue] = {}
    for issue in sorted(set(issues)):
        field = re.sub(r"^nodes\[[0-9]+\]", "nodes[]", issue.field)
        out.setdefault((issue.file, issue.line, issue.column, field, issue.message), issue)
    return list(out.values())


def _for_ini(issue: InventoryIssue, path: Path) -> InventoryIssue:
    """Say what an INI user would set, where the YAML layout's words would puzzle."""
    if issue.field == "cluster" and "'name' is missing" in issue.message:
        return InventoryIssue(
            issue.file,
            issue.line,
            issue.column,
            "clusterName",
            "is not set: add clusterName=NAME to [all:vars] "
            f"or clusterName: NAME to {path.parent / 'group_vars/all.yml'}",
        )
    if issue.field == field_path(("nodes",)) and "control-plane" in issue.message:
        return InventoryIssue(
            issue.file,
            issue.line,
            issue.column,
            "",
            f"no control plane: put a host in [{INIT_GROUP}] or [{MASTER_GROUP}]",
        )
    return issue
