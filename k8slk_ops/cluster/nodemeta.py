"""The labels and taints the inventory owns on a Node, and what differs: typed changes. Pure.

A Node carries labels and taints from many hands: kubeadm (the control plane's role label and
taint), the kubelet (``kubernetes.io/hostname``), other tools, an operator with kubectl. The
inventory owns only those it lists. To take away a key the inventory no longer lists without
ever touching one it never set, the tool records on the Node which keys it set, in two
annotations (as Talos records the labels it owns):

- ``k8slk-ops.io/owned-labels``: the label keys, sorted, comma-separated;
- ``k8slk-ops.io/owned-taints``: the taints as ``key:effect`` (a taint's identity), likewise.

So, per node: a label or taint the inventory lists is set to the inventory's value (a value
changed by hand is set back); one recorded as owned that the inventory dropped is removed; any
other is left alone. Both annotations then name exactly what the inventory lists.

``differences`` is the one place that compares; ``apply`` plans and applies from it, and a
read-only report of drift can list it. Nothing here touches the network.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from k8slk_ops.kubeadm.kubectl import Taint

if TYPE_CHECKING:
    from k8slk_ops.inventory import NodeSpec

OWNED_LABELS = "k8slk-ops.io/owned-labels"
OWNED_TAINTS = "k8slk-ops.io/owned-taints"


def _keys(text: str) -> frozenset[str]:
    return frozenset(k for k in (p.strip() for p in text.split(",")) if k)


@dataclass(frozen=True)
class OwnedKeys:
    """Which labels (keys) and taints (``key:effect``) the tool set on a Node."""

    labels: frozenset[str] = frozenset()
    taints: frozenset[str] = frozenset()

    def annotations(self) -> dict[str, str | None]:
        """The two annotations as a merge patch writes them (None: removed, when empty)."""
        return {
            OWNED_LABELS: ",".join(sorted(self.labels)) or None,
            OWNED_TAINTS: ",".join(sorted(self.taints)) or None,
        }


def owned_keys(annotations: Mapping[str, str]) -> OwnedKeys:
    """The keys a Node's annotations say the tool set (none when it never set any)."""
    return OwnedKeys(
        _keys(annotations.get(OWNED_LABELS, "")), _keys(annotations.get(OWNED_TAINTS, ""))
    )


@dataclass(frozen=True)
class Desired:
    """What the inventory lists for one node."""

    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()

    @classmethod
    def of(cls, spec: NodeSpec) -> Desired:
        return cls(
            dict(spec.labels), tuple(Taint(t.key, t.effect, t.value) for t in spec.taints)
        )

    @property
    def empty(self) -> bool:
        return not self.labels and not self.taints


class Carrying(Protocol):
    """What a cluster member read from ``kubectl get nodes`` carries (``membership.Member``);
    a protocol so that this pure module does not import the one that reads the cluster."""

    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def taints(self) -> tuple[Taint, ...]: ...
    @property
    def owned(self) -> OwnedKeys: ...


@dataclass(frozen=True)
class Current:
    """What a Node carries now: its labels, its taints and the keys recorded as owned."""

    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    owned: OwnedKeys = field(default_factory=OwnedKeys)

    @classmethod
    def of(cls, member: Carrying) -> Current:
        return cls(member.labels, member.taints, member.owned)


class Change(enum.StrEnum):
    ADD = "add"  # the inventory lists it, the Node lacks it
    UPDATE = "update"  # the Node has it with another value (changed by hand, or in the file)
    REMOVE = "remove"  # recorded as owned, no longer listed


@dataclass(frozen=True)
class LabelChange:
    key: str
    change: Change
    old: str | None  # the Node's value (None: absent)
    new: str | None  # the inventory's value (None: removed)

    def __str__(self) -> str:
        if self.change is Change.REMOVE:
            return f"remove label {self.key} (={self.old}; no longer in the inventory)"
        if self.change is Change.UPDATE:
            return f"set label {self.key}={self.new} (was {self.old})"
        return f"add label {self.key}={self.new}"


@dataclass(frozen=True)
class TaintChange:
    ident: str  # key:effect
    change: Change
    old: Taint | None
    new: Taint | None

    def __str__(self) -> str:
        if self.change is Change.REMOVE:
            return f"remove taint {self.old} (no longer in the inventory)"
        if self.change is Change.UPDATE:
            return f"set taint {self.new} (was {self.old})"
        return f"add taint {self.new}"


@dataclass(frozen=True)
class NodeMetaDiff:
    """What differs between the inventory and one Node, and the ownership record after."""

    node: str
    labels: tuple[LabelChange, ...] = ()
    taints: tuple[TaintChange, ...] = ()
    owned_before: OwnedKeys = field(default_factory=OwnedKeys)
    owned_after: OwnedKeys = field(default_factory=OwnedKeys)

    @property
    def record_changes(self) -> bool:
        """The annotations that say what the tool owns need writing."""
        return self.owned_before != self.owned_after

    @property
    def empty(self) -> bool:
        return not self.labels and not self.taints and not self.record_changes

    def summaries(self) -> list[str]:
        """Each change in words, for a plan (the record last, only when it is all there is
        to say or it changes what is owned)."""
        lines = [str(c) for c in (*self.labels, *self.taints)]
        if self.record_changes and not lines:
            lines.append(
                f"record as owned: labels {_listed(self.owned_after.labels)}, taints "
                f"{_listed(self.owned_after.taints)} (annotations {OWNED_LABELS}, {OWNED_TAINTS})"
            )
        return lines


def _listed(keys: Iterable[str]) -> str:
    return ", ".join(sorted(keys)) or "none"


def differences(node: str, desired: Desired, current: Current) -> NodeMetaDiff:
    """The changes that make ``node``'s Node carry what the inventory lists. Pure; callable
    from anywhere (``apply`` plans and applies from it; a read-only drift report lists it).

    ``desired``: ``Desired.of(inventory.node(name))``. ``current``: ``Current.of(member)``
    for a member of ``kubectl get nodes -o json`` (``membership.list_members``). The result is
    empty when the Node already matches: every listed label and taint with its value, nothing
    recorded as owned left over, and the ownership annotations naming exactly what is listed.
    A label or taint the tool never recorded as its own is never in the result unless the
    inventory lists its key."""
    label_changes: list[LabelChange] = []
    for key, value in sorted(desired.labels.items()):
        have = current.labels.get(key)
        if have is None:
            label_changes.append(LabelChange(key, Change.ADD, None, value))
        elif have != value:
            label_changes.append(LabelChange(key, Change.UPDATE, have, value))
    for key in sorted(current.owned.labels - set(desired.labels)):
        if key in current.labels:
            label_changes.append(LabelChange(key, Change.REMOVE, current.labels[key], None))
    have_taints = {t.ident: t for t in current.taints}
    want_taints = {t.ident: t for t in desired.taints}
    taint_changes: list[TaintChange] = []
    for ident, taint in sorted(want_taints.items()):
        old = have_taints.get(ident)
        if old is None:
            taint_changes.append(TaintChange(ident, Change.ADD, None, taint))
        elif old.value != taint.value:
            taint_changes.append(TaintChange(ident, Change.UPDATE, old, taint))
    for ident in sorted(current.owned.taints - set(want_taints)):
        if ident in have_taints:
            taint_changes.append(TaintChange(ident, Change.REMOVE, have_taints[ident], None))
    return NodeMetaDiff(
        node,
        tuple(label_changes),
        tuple(taint_changes),
        current.owned,
        OwnedKeys(frozenset(desired.labels), frozenset(want_taints)),
    )


def taints_after(current: tuple[Taint, ...], diff: NodeMetaDiff) -> list[Taint]:
    """The Node's whole taint list once ``diff`` is applied: those it keeps in their order
    (with the time the API stamped on them), then those added."""
    dropped = {c.ident for c in diff.taints}
    kept = [t for t in current if t.ident not in dropped]
    added = [c.new for c in diff.taints if c.new is not None]
    return kept + added


def merge_patch(current: Current, diff: NodeMetaDiff) -> dict[str, Any]:
    """The JSON merge patch (``kubectl patch node --type=merge``) that applies ``diff`` in one
    request: labels set or removed (null), the ownership annotations, and, when a taint
    changes, the whole taint list (a merge patch replaces a list; the hand-set taints read
    with the Node are in it unchanged)."""
    metadata: dict[str, Any] = {}
    if diff.labels:
        metadata["labels"] = {c.key: c.new for c in diff.labels}
    if diff.record_changes:
        metadata["annotations"] = diff.owned_after.annotations()
    patch: dict[str, Any] = {}
    if metadata:
        patch["metadata"] = metadata
    if diff.taints:
        patch["spec"] = {"taints": [_taint_json(t) for t in taints_after(current.taints, diff)]}
    return patch


def _taint_json(taint: Taint) -> dict[str, str]:
    out = {"key": taint.key, "effect": taint.effect}
    if taint.value:
        out["value"] = taint.value
    if taint.time_added:
        out["timeAdded"] = taint.time_added
    return out


def patch_text(current: Current, diff: NodeMetaDiff) -> str:
    """``merge_patch`` as the ``-p`` argument: compact JSON, keys sorted."""
    return json.dumps(merge_patch(current, diff), sort_keys=True, separators=(",", ":"))
