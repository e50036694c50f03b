"""``kubectl get nodes -o json``: which nodes the cluster has, and their state.

Membership is read from the cluster, never assumed: a node whose kubeadm run failed late still
has the kubelet marker, but only the API's node list says whether it joined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from k8slk_ops.kubeadm.errors import ParseError

ROLE_PREFIX = "node-role.kubernetes.io/"
LEGACY_ROLE_LABEL = "kubernetes.io/role"
CONTROL_PLANE_ROLES = frozenset({"control-plane", "master"})


@dataclass(frozen=True, order=True)
class Taint:
    """A taint as a Node carries it. The API tells taints apart by key and effect: a node has
    at most one of each pair, whatever its value."""

    key: str
    effect: str
    value: str = ""
    # When the API stamped it (NoExecute taints): kept when the list is written back whole.
    time_added: str = field(default="", compare=False)

    @property
    def ident(self) -> str:
        """``key:effect``: which taint this is, as ``kubectl taint`` names it for removal."""
        return f"{self.key}:{self.effect}"

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else self.ident


@dataclass(frozen=True)
class NodeStatus:
    name: str
    roles: tuple[str, ...]
    ready: bool
    unschedulable: bool
    kubelet_version: str
    internal_ip: str | None = None
    # The Ready condition's reason and message when it is not True (kubelet's own words, e.g.
    # ``KubeletNotReady`` / ``container runtime network not ready: ... NetworkPluginNotReady``).
    not_ready_reason: str = ""
    not_ready_message: str = ""
    # The Node's annotations whose values are strings (the API allows nothing else).
    annotations: dict[str, str] = field(default_factory=dict)
    # Every label whose value is a string, and every taint with a key and an effect.
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()

    @property
    def control_plane(self) -> bool:
        return bool(CONTROL_PLANE_ROLES & set(self.roles))


def _items(value: Any) -> list[Any]:
    """A list field, or nothing when the API sent something else there."""
    return value if isinstance(value, list) else []


def _node(obj: Any) -> NodeStatus:
    if not isinstance(obj, dict):
        raise ParseError("kubectl get nodes: an item is not an object")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not isinstance(meta, dict) or not isinstance(spec, dict) or not isinstance(status, dict):
        raise ParseError("kubectl get nodes: malformed node object")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ParseError("kubectl get nodes: a node without a name")
    labels = meta.get("labels") or {}
    roles: set[str] = set()
    if isinstance(labels, dict):
        for key, value in labels.items():
            if isinstance(key, str) and key.startswith(ROLE_PREFIX) and key != ROLE_PREFIX:
                roles.add(key[len(ROLE_PREFIX) :])
            elif key == LEGACY_ROLE_LABEL and isinstance(value, str) and value:
                roles.add(value)
    ready, reason, message = False, "", ""
    for cond in _items(status.get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            ready = cond.get("status") == "True"
            reason = "" if ready else _text(cond.get("reason"))
            message = "" if ready else _text(cond.get("message"))
    info = status.get("nodeInfo") or {}
    version = info.get("kubeletVersion", "") if isinstance(info, dict) else ""
    internal_ip = None
    for addr in _items(status.get("addresses")):
        if isinstance(addr, dict) and addr.get("type") == "InternalIP":
            internal_ip = str(addr.get("address"))
            break
    raw = meta.get("annotations") or {}
    annotations = (
        {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(raw, dict) else {}
    )
    return NodeStatus(
        labels=(
            {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(labels, dict) else {}
        ),
        taints=tuple(
            Taint(_text(t.get("key")), _text(t.get("effect")), _text(t.get("value")),
                  _text(t.get("timeAdded")))
            for t in _items(spec.get("taints"))
            if isinstance(t, dict) and _text(t.get("key")) and _text(t.get("effect"))
        ),
        name=name,
        roles=tuple(sorted(roles)),
        ready=ready,
        unschedulable=spec.get("unschedulable") is True,
        kubelet_version=str(version),
        internal_ip=internal_ip,
        not_ready_reason=reason,
        not_ready_message=message,
        annotations=annotations,
    )


def _text(value: Any, limit: int = 500) -> str:
    """A string field from the API, one line and bounded (a node's words reach the terminal)."""
    if not isinstance(value, str):
        return ""
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())[:limit]


def parse_nodes_json(stdout: str) -> list[NodeStatus]:
    """Nodes from a ``List`` (or a single ``Node``) as kubectl prints it with ``-o json``."""
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise ParseError(f"kubectl get nodes -o json did not print JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ParseError("kubectl get nodes -o json: expected an object")
    if doc.get("kind") == "Node":
        return [_node(doc)]
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError("kubectl get nodes -o json: no items list")
    return [_node(item) for item in items]


# The event types of a watch (``kubectl get --watch --output-watch-events -o json``).
WATCH_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


@dataclass(frozen=True)
class NodeEvent:
    """One line of ``kubectl get nodes --watch --output-watch-events -o json``.

    ``node`` is the Node's state after an ADDED or MODIFIED event, its last state for DELETED,
    and None for a BOOKMARK (only a resourceVersion) or an ERROR (``message``: the API's
    Status, such as a resourceVersion too old to watch from)."""

    type: str
    node: NodeStatus | None
    resource_version: str = ""
    message: str = ""


def parse_node_event(line: str) -> NodeEvent:
    """One watch event line; ParseError for anything that is not one (kubectl prints each
    event as one compact JSON object on its own line)."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ParseError(f"kubectl get nodes --watch printed a line that is not JSON: {exc}") \
            from None
    if not isinstance(doc, dict) or not isinstance(doc.get("object"), dict):
        raise ParseError("kubectl get nodes --watch: an event without an object")
    kind = doc.get("type")
    if kind not in WATCH_TYPES:
        raise ParseError(f"kubectl get nodes --watch: unknown event type {_text(kind, 40)!r}")
    obj = doc["object"]
    meta = obj.get("metadata")
    version = _text(meta.get("resourceVersion"), 40) if isinstance(meta, dict) else ""
    if kind == "ERROR":
        return NodeEvent(kind, None, version, _text(obj.get("message")))
    if kind == "BOOKMARK":
        return NodeEvent(kind, None, version)
    return NodeEvent(kind, _node(obj), version)
