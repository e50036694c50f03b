"""From loaded data to an ``Inventory``, or to every problem in it, each with its place.

Both loaders produce the same plain data (the YAML layout) plus a ``Locator``. Validation is done
part by part (cluster, ssh, each node) so that one bad part does not hide the others, then the
rules spanning parts run over the parts that are valid. pydantic's error locations are mapped to
lines, its messages rewritten into ``must be ..., got ...`` and unknown keys get a suggestion.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from k8slk_ops.inventory import checks
from k8slk_ops.inventory.addons import Addon, load_addons
from k8slk_ops.inventory.errors import InventoryError, InventoryIssue, Loc, field_path
from k8slk_ops.inventory.kubeadm_check import kubeadm_problems
from k8slk_ops.inventory.located import Locator
from k8slk_ops.inventory.model import (
    DEFAULT_POD_SUBNET,
    DEFAULT_SERVICE_SUBNET,
    NO_CONTROL_PLANE,
    ClusterSpec,
    Inventory,
    NodeSpec,
    Problem,
    SSHSettings,
    duplicates,
    subnet_overlap,
    unpinned,
)

M = TypeVar("M", bound=BaseModel)
TOP_LEVEL = ("cluster", "ssh", "nodes")
MAX_NODES = 10_000  # twice what Kubernetes supports in one cluster


class Collector:
    """Turns problems at field paths into located issues."""

    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self.issues: list[InventoryIssue] = []

    def add(self, loc: Loc, message: str, *, at_key: bool = False) -> None:
        pos = self.locator.key(loc) if at_key else self.locator.value(loc)
        self.issues.append(InventoryIssue(pos.file, pos.line, pos.column, field_path(loc), message))

    def validate(
        self, model: type[M], data: object, prefix: Loc, context: dict[str, Any]
    ) -> M | None:
        """``model`` from ``data``, or None after recording each of its errors."""
        try:
            return model.model_validate(data, context=context)
        except ValidationError as exc:
            for err in exc.errors():
                self._add_pydantic(model, prefix, err)
            return None

    def _add_pydantic(self, model: type[BaseModel], prefix: Loc, err: ErrorDetails) -> None:
        raw_loc = list(err["loc"])
        is_key = bool(raw_loc) and raw_loc[-1] == "[key]"
        if is_key:
            raw_loc.pop()
        loc = (*prefix, *raw_loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            name = raw_loc[-1] if raw_loc else ""
            self.add(
                loc, unknown_field_message(name, field_names(model, raw_loc[:-1])), at_key=True
            )
        elif kind == "missing":
            self.add(loc[:-1], f"required field {loc[-1]!r} is missing", at_key=True)
            return
        else:
            self.add(loc, rewrite_message(err), at_key=is_key)


def unknown_field_message(name: object, valid: tuple[str, ...]) -> str:
    """``unknown field 'adress'; did you mean 'address'?`` when something is close."""
    message = f"unknown field {name!r}"
    hint = suggest(str(name), valid)
    if hint is not None:
        message += f"; did you mean {hint!r}?"
    elif valid:
        message += f" (valid: {', '.join(valid)})"
    return message


def suggest(name: str, valid: tuple[str, ...]) -> str | None:
    """The valid name closest to ``name``: same letters ignoring case and ``_``/``-``, else the
    nearest by edit similarity."""

    def norm(s: str) -> str:
        return s.replace("_", "").replace("-", "").lower()

    for candidate in valid:
        if norm(candidate) == norm(name):
            return candidate
    by_norm = {norm(v): v for v in valid}
    close = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.6)
    return by_norm[close[0]] if close else None


def field_names(model: type[BaseModel], loc: Loc) -> tuple[str, ...]:
    """The keys a file may use at ``loc`` inside ``model`` (aliases, as written in files)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return ()
        if isinstance(part, int):
            continue
        info = next(
            (f for n, f in current.model_fields.items() if (f.alias or n) == part or n == part),
            None,
        )
        current = _model_in(info.annotation) if info is not None else None
    if current is None:
        return ()
    return tuple(f.alias or n for n, f in current.model_fields.items())


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside an annotation like ``X | None`` or ``tuple[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


_TYPE_WORDS: Mapping[str, str] = {
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "path_type": "must be a path (a string)",
}


def describe(value: object) -> str:
    """How a YAML reader would name a value: ``null``, ``a list``, ``'text'``, ``42``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return str(value)
    return f"a {type(value).__name__}"


def rewrite_message(err: ErrorDetails) -> str:
    """pydantic's message in the inventory's voice: what is expected, then what was found."""
    kind = err["type"]
    value = err.get("input")
    got = f", got {describe(value)}"
    if kind == "literal_error":
        expected = str((err.get("ctx") or {}).get("expected", ""))
        return f"must be {expected}{got}"
    if kind in _TYPE_WORDS:
        hint = " (quote it)" if kind == "string_type" and isinstance(value, int | float) else ""
        return f"{_TYPE_WORDS[kind]}{got}{hint}"
    msg = err["msg"]
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        return "must be " + msg.removeprefix("Input should be ") + got
    return msg


def build_inventory(raw: object, locator: Locator, source: Path) -> Inventory:
    """Validate loaded data into an Inventory, or raise InventoryError with every problem."""
    out = Collector(locator)
    context: dict[str, Any] = {"base_dir": Path(source).absolute().parent}
    if not isinstance(raw, dict):
        out.add(
            (), f"the top level must be a mapping with {', '.join(TOP_LEVEL)}, got {describe(raw)}"
        )
        raise InventoryError(out.issues)
    for key in raw:
        if key not in TOP_LEVEL:
            out.add((key,), unknown_field_message(key, TOP_LEVEL), at_key=True)

    cluster = None
    if "cluster" not in raw:
        out.add(("cluster",), "required field 'cluster' is missing")
    else:
        cluster = out.validate(ClusterSpec, raw["cluster"], ("cluster",), context)

    ssh_raw = raw.get("ssh")
    if isinstance(ssh_raw, dict) and "hostKeyFingerprint" in ssh_raw:
        out.add(
            ("ssh", "hostKeyFingerprint"),
            "a host key fingerprint belongs to one node: set it in the node's ssh",
        )
        ssh_raw = {k: v for k, v in ssh_raw.items() if k != "hostKeyFingerprint"}
    ssh = out.validate(SSHSettings, {} if ssh_raw is None else ssh_raw, ("ssh",), context)

    nodes: list[tuple[int, NodeSpec]] = []
    all_valid = True  # every node's role is known, so "no control plane" can be told
    nodes_raw = raw.get("nodes")
    if "nodes" not in raw:
        out.add(("nodes",), "required field 'nodes' is missing")
        all_valid = False
    elif not isinstance(nodes_raw, list):
        out.add(("nodes",), f"must be a list of nodes, got {describe(nodes_raw)}")
        all_valid = False
    elif not nodes_raw:
        out.add(("nodes",), "must list at least one node")
        all_valid = False
    elif len(nodes_raw) > MAX_NODES:
        out.add(("nodes",), f"lists {len(nodes_raw)} nodes; an inventory holds at most {MAX_NODES}")
        raise InventoryError(out.issues)
    else:
        for index, item in enumerate(nodes_raw):
            node = out.validate(NodeSpec, item, ("nodes", index), context)
            if node is not None:
                nodes.append((index, node))
            elif not (isinstance(item, dict) and item.get("role") == "worker"):
                all_valid = False  # an invalid node may be the control plane

    for loc, message in _partial_cross_check(raw, cluster, ssh, nodes, roles_known=all_valid):
        out.add(loc, message)
    if out.issues or cluster is None or ssh is None:
        raise InventoryError(out.issues)
    inventory = Inventory(cluster=cluster, ssh=ssh, nodes=tuple(n for _, n in nodes), source=source)
    for loc, message in [*missing_identity_files(inventory), *kubeadm_problems(inventory)]:
        out.add(loc, message, at_key=True)
    manifests = _addons(inventory, out, context["base_dir"])
    if out.issues:
        raise InventoryError(out.issues)
    return inventory.model_copy(update={"addon_manifests": manifests})


def _addons(inventory: Inventory, out: Collector, base_dir: Path) -> tuple[Addon, ...]:
    """The addon manifests, read now so that a bad one stops the run before anything connects."""
    cluster = inventory.cluster

    def issue_at(index: int, message: str) -> InventoryIssue:
        out.add(("cluster", "addons", index), message)
        return out.issues.pop()

    values: dict[str, str | None] = {
        "podSubnet": cluster.pod_subnet,
        "serviceSubnet": cluster.service_subnet,
        "clusterName": cluster.name,
        "controlPlaneEndpoint": inventory.endpoint,
        "kubernetesVersion": cluster.kubernetes_version,
    }
    try:
        return load_addons(cluster.addons, base_dir, values, issue_at)
    except InventoryError as exc:
        out.issues.extend(exc.issues)
        return ()


def _checked(check: Callable[[str], str], value: object) -> str | None:
    """``check(value)`` when value is a string that passes, else None (reported elsewhere)."""
    if not isinstance(value, str):
        return None
    try:
        return check(value)
    except ValueError:
        return None


def _partial_cross_check(
    raw: dict[Any, Any],
    cluster: ClusterSpec | None,
    ssh: SSHSettings | None,
    nodes: list[tuple[int, NodeSpec]],
    *,
    roles_known: bool,
) -> list[Problem]:
    """The rules spanning fields, over the values that are valid even where their node or
    section is not, so they are reported together with the field errors."""
    items = raw.get("nodes")
    items = items if isinstance(items, list) else []
    fields: dict[str, list[tuple[int, str]]] = {"name": [], "address": [], "nodeIP": []}
    for index, item in enumerate(items):
        if isinstance(item, dict):
            for field, check in (
                ("name", checks.dns_subdomain), ("address", checks.host), ("nodeIP", checks.ip)
            ):
                value = _checked(check, item.get(field))
                if value is not None:
                    fields[field].append((index, value))
    problems = duplicates(fields["name"], "name", "node name")
    problems += duplicates(fields["address"], "address", "address")
    problems += duplicates(fields["nodeIP"], "nodeIP", "node IP")
    if roles_known and items and not any(n.is_control_plane for _, n in nodes):
        problems.append((("nodes",), NO_CONTROL_PLANE))
    section = raw.get("cluster")
    if isinstance(section, dict):
        pod = _checked(checks.cidr_text, section.get("podSubnet", DEFAULT_POD_SUBNET))
        service = _checked(checks.cidr_text, section.get("serviceSubnet", DEFAULT_SERVICE_SUBNET))
        if pod is not None and service is not None:
            at = "podSubnet" if "serviceSubnet" not in section else "serviceSubnet"
            problems += subnet_overlap(pod, service, at)
    if ssh is not None:
        problems += unpinned(ssh, nodes)
    return problems


def missing_identity_files(inventory: Inventory) -> list[Problem]:
    """An ``identityFile`` that is not a file would only fail at login, node by node."""
    declared: list[tuple[Loc, Path | None]] = [(("ssh", "identityFile"), inventory.ssh.identity_file)]
    for index, node in enumerate(inventory.nodes):
        if "identity_file" in node.ssh.model_fields_set:
            declared.append((("nodes", index, "ssh", "identityFile"), node.ssh.identity_file))
    return [
        (
            loc,
            f"no such file: {path} (the private key to log in with; leave identityFile out "
            "to use ssh-agent and the default keys in ~/.ssh)",
        )
        for loc, path in declared
        if path is not None and not path.is_file()
    ]
