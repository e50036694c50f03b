"""The old Ansible inventories: INI groups and vars, read into the YAML layout.

The automation this tool replaces kept clusters as an INI ``hosts`` file with the groups
``[init-master]``, ``[masters]`` and ``[workers]``, and the cluster's variables in ``[all:vars]``
(or another group's vars, like ``[k8s:vars]``) and in ``group_vars/all.yml`` beside it. Its users
can point this tool at that file unchanged. The data is rewritten into the YAML layout with the
place of every value remembered, then validated like any inventory, so errors name INI lines.

Precedence follows Ansible's: vars in the file (``[all:vars]`` below other groups' vars), then
``group_vars/all.yml``, then ``group_vars/<group>.yml``; a host line's own vars win. The
``[init-master]`` host becomes the first control plane. SSH options in
``ansible_ssh_common_args`` are read where they have a meaning here; ``StrictHostKeyChecking=no``
becomes ``accept-new``: host keys are recorded on first use and checked after, never ignored.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8slk_ops.inventory.errors import InventoryError, InventoryIssue, field_path
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
_SECTION = re.compile(r"^\[([^\]\s]+)\]\s*(?:[#;].*)?$")
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::([0-9]+))?\]")


def looks_like_ini(text: str) -> bool:
    """True when the first meaningful line is an INI section header like ``[masters]``."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        return bool(re.match(r"^\[[\w.:-]+\]\s*$", stripped))
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
        header = _SECTION.match(stripped)
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
            if kind == "hosts":
                ini.group_hosts.setdefault(group, [])
            continue
        if kind == "vars":
            _parse_var_line(ini, file, number, line, group)
        elif kind == "hosts":
            _parse_host_line(ini, file, number, line, group)
        # children: group membership only; nothing of it matters here
    return ini


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


class _Builder:
    """Gives the parsed INI its meaning: the YAML layout plus where each value came from."""

    def __init__(self, path: Path, ini: IniFile) -> None:
        self.path = path
        self.file = str(path)
        self.ini = ini
        self.issues = list(ini.issues)
        self.values: dict[tuple[str | int, ...], Position] = {}
        self.keys: dict[tuple[str | int, ...], Position] = {}

    def issue(self, at: Position, field: str, message: str) -> None:
        self.issues.append(InventoryIssue(at.file, at.line, at.column, field, message))

    def put(self, target: dict[str, Any], loc: tuple[str | int, ...], var: Var) -> None:
        target[str(loc[-1])] = var.value
        self.values[loc] = var.value_at
        self.keys[loc] = var.key_at

    def build(self) -> tuple[dict[str, Any], MapLocator]:
        ini = self.ini
        layered = self._layered_vars()
        cluster: dict[str, Any] = {}
        ssh: dict[str, Any] = {}
        for name, var in layered.items():
            self._global_var(name, var, cluster, ssh)
        for group in ini.group_hosts:
            if group not in ROLE_GROUPS:
                hint = suggest(group, ROLE_GROUPS)
                if hint is not None:
                    self.issue(
                        ini.headers.get(group, Position(self.file, 1, 1)),
                        "",
                        f"unknown group [{group}]; did you mean [{hint}]?",
                    )
        init_hosts = ini.group_hosts.get(INIT_GROUP, [])
        if len(init_hosts) > 1:
            second = ini.hosts[init_hosts[1]].at
            self.issue(
                second,
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
            for name in ini.group_hosts.get(group, []):
                if name in seen:
                    if role == "worker":
                        self.issue(
                            ini.hosts[name].at_in.get(group, ini.hosts[name].at),
                            "",
                            f"host {name!r} is both a control plane and in [{group}]",
                        )
                    continue
                seen.add(name)
                order.append((name, role))
        nodes = [self._node(index, name, role, layered) for index, (name, role) in enumerate(order)]
        raw: dict[str, Any] = {"cluster": cluster, "ssh": ssh, "nodes": nodes}
        first = Position(self.file, 1, 1)
        self.values[("nodes",)] = ini.headers.get(INIT_GROUP, ini.headers.get(MASTER_GROUP, first))
        self.values.setdefault(("cluster",), ini.headers.get("all", first))
        return raw, MapLocator(first, self.values, self.keys)

    def _layered_vars(self) -> dict[str, Var]:
        """Group vars that apply to the whole cluster, highest precedence last."""
        ini = self.ini
        out: dict[str, Var] = {}
        out.update(ini.group_vars.get("all", {}))
        for group, variables in ini.group_vars.items():
            if group != "all" and group not in ROLE_GROUPS:
                out.update(variables)
        directory = self.path.parent
        for group in ("all", *(g for g in ini.group_vars if g not in ("all", *ROLE_GROUPS))):
            found = _group_vars_file(directory, group)
            if found is not None:
                out.update(_read_group_vars(found, self.issues))
        return out

    def _role_group_vars(self, groups: list[str]) -> dict[str, Var]:
        out: dict[str, Var] = {}
        for group in groups:
            if group in ROLE_GROUPS:
                out.update(self.ini.group_vars.get(group, {}))
                found = _group_vars_file(self.path.parent, group)
                if found is not None:
                    out.update(_read_group_vars(found, self.issues))
        return out

    def _global_var(
        self, name: str, var: Var, cluster: dict[str, Any], ssh: dict[str, Any]
    ) -> None:
        if name in CLUSTER_VARS:
            value = var.value
            if name == "certSANs" and isinstance(value, str):
                value = [s.strip() for s in value.split(",") if s.strip()]
            self.put(cluster, ("cluster", CLUSTER_VARS[name]), Var(value, var.key_at, var.value_at))
        elif name in ADDRESS_VARS:
            self.issue(var.key_at, "", f"{name} names one host: set it on the host's line")
        else:
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
        else:
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

    def _node(self, index: int, name: str, role: str, layered: dict[str, Var]) -> dict[str, Any]:
        host = self.ini.hosts[name]
        loc: tuple[str | int, ...] = ("nodes", index)
        self.values[loc] = host.at
        self.values[(*loc, "name")] = host.at
        self.values[(*loc, "role")] = host.at
        node: dict[str, Any] = {"name": name, "address": name, "role": role}
        self.values[(*loc, "address")] = host.at
        ssh: dict[str, Any] = {}
        variables = {**self._role_group_vars(host.groups), **host.vars}
        for key, var in variables.items():
            if key in ADDRESS_VARS:
                node["address"] = var.value
                self.values[(*loc, "address")] = var.value_at
            elif key in NODE_IP_VARS:
                node["nodeIP"] = var.value
                self.values[(*loc, "nodeIP")] = var.value_at
            elif key in CLUSTER_VARS:
                self.issue(
                    var.key_at,
                    "",
                    f"{key} is a cluster setting: set it in [all:vars] or group_vars/all.yml",
                )
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
        raise InventoryError([*own, *(_for_ini(i, path) for i in exc.issues)]) from None
    if own:
        raise InventoryError(own)
    return inventory


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
