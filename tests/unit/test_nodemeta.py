"""The labels and taints the inventory owns, as data: inventory and Node in, changes out; once
the changes are applied, none are left."""

from __future__ import annotations

import json

from k8slk_ops.cluster.membership import members_of
from k8slk_ops.cluster.nodemeta import (
    OWNED_LABELS,
    OWNED_TAINTS,
    Change,
    Current,
    Desired,
    OwnedKeys,
    differences,
    merge_patch,
    owned_keys,
)
from k8slk_ops.kubeadm import parse_nodes_json
from k8slk_ops.kubeadm.kubectl import Taint

CP_TAINT = Taint("node-role.kubernetes.io/control-plane", "NoSchedule")


def applied(current: Current, patch: dict[str, object]) -> Current:
    """``current`` after a JSON merge patch, as the API server applies one to a Node."""
    labels = dict(current.labels)
    annotations = {OWNED_LABELS: ",".join(sorted(current.owned.labels)),
                   OWNED_TAINTS: ",".join(sorted(current.owned.taints))}
    meta = patch.get("metadata") or {}
    assert isinstance(meta, dict)
    for target, key in ((labels, "labels"), (annotations, "annotations")):
        for k, v in (meta.get(key) or {}).items():
            if v is None:
                target.pop(k, None)
            else:
                target[k] = v
    taints = current.taints
    spec = patch.get("spec") or {}
    assert isinstance(spec, dict)
    if "taints" in spec:
        taints = tuple(Taint(t["key"], t["effect"], t.get("value", ""), t.get("timeAdded", ""))
                       for t in spec["taints"])
    return Current(labels, taints, owned_keys(annotations))


def test_a_matching_node_has_no_differences() -> None:
    desired = Desired({"zone": "a"}, (Taint("gpu", "NoSchedule", "yes"),))
    current = Current({"zone": "a", "kubernetes.io/hostname": "w-1"},
                      (Taint("gpu", "NoSchedule", "yes"),),
                      OwnedKeys(frozenset({"zone"}), frozenset({"gpu:NoSchedule"})))
    assert differences("w-1", desired, current).empty


def test_inventory_values_are_set_back_and_hand_set_keys_are_left_alone() -> None:
    desired = Desired({"zone": "a", "tier": "web"}, (Taint("gpu", "NoSchedule", "yes"),))
    current = Current(
        {"zone": "b", "team": "blue", "old": "x"},
        (CP_TAINT, Taint("gpu", "NoSchedule", "no"), Taint("hand", "NoExecute", "", "t0")),
        OwnedKeys(frozenset({"zone", "old"}), frozenset({"gone:PreferNoSchedule"})),
    )
    diff = differences("w-1", desired, current)
    assert [(c.key, c.change, c.old, c.new) for c in diff.labels] == [
        ("tier", Change.ADD, None, "web"),
        ("zone", Change.UPDATE, "b", "a"),
        ("old", Change.REMOVE, "x", None),
    ]
    # gone:PreferNoSchedule is owned but no longer on the node: nothing to remove.
    assert [(c.ident, c.change) for c in diff.taints] == [("gpu:NoSchedule", Change.UPDATE)]
    assert diff.owned_after == OwnedKeys(frozenset({"zone", "tier"}),
                                         frozenset({"gpu:NoSchedule"}))
    patch = merge_patch(current, diff)
    assert patch["metadata"]["labels"] == {"tier": "web", "zone": "a", "old": None}
    # The whole list: the hand-set and kubeadm's taints kept as they were, timeAdded too.
    assert patch["spec"]["taints"] == [
        {"key": CP_TAINT.key, "effect": "NoSchedule"},
        {"key": "hand", "effect": "NoExecute", "timeAdded": "t0"},
        {"key": "gpu", "effect": "NoSchedule", "value": "yes"},
    ]
    after = applied(current, patch)
    assert after.labels["team"] == "blue" and "old" not in after.labels
    assert differences("w-1", desired, after).empty


def test_a_key_dropped_from_the_inventory_is_removed_only_when_the_tool_set_it() -> None:
    current = Current({"zone": "a", "rack": "r1"}, (Taint("spot", "PreferNoSchedule"),),
                      OwnedKeys(frozenset({"zone"}), frozenset({"spot:PreferNoSchedule"})))
    diff = differences("w-1", Desired(), current)
    assert [(c.key, c.change) for c in diff.labels] == [("zone", Change.REMOVE)]
    assert [(c.ident, c.change) for c in diff.taints] == [
        ("spot:PreferNoSchedule", Change.REMOVE)]
    patch = merge_patch(current, diff)
    assert patch["metadata"]["annotations"] == {OWNED_LABELS: None, OWNED_TAINTS: None}
    assert patch["spec"]["taints"] == []
    after = applied(current, patch)
    assert dict(after.labels) == {"rack": "r1"}
    assert differences("w-1", Desired(), after).empty


def test_labels_set_at_the_join_are_recorded_as_owned_without_changing_them() -> None:
    desired = Desired({"zone": "a"})
    diff = differences("w-1", desired, Current({"zone": "a"}))
    assert not diff.labels and not diff.taints and diff.record_changes
    assert diff.summaries() == [
        f"record as owned: labels zone, taints none (annotations {OWNED_LABELS}, {OWNED_TAINTS})"]
    assert merge_patch(Current({"zone": "a"}), diff) == {
        "metadata": {"annotations": {OWNED_LABELS: "zone", OWNED_TAINTS: None}}}


def test_the_node_list_gives_labels_taints_and_owned_keys() -> None:
    node = {
        "kind": "Node",
        "metadata": {"name": "w-1", "labels": {"zone": "a"},
                     "annotations": {OWNED_LABELS: "zone", OWNED_TAINTS: "gpu:NoSchedule"}},
        "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"},
                            {"key": "n", "effect": "NoExecute", "timeAdded": "t"},
                            {"effect": "NoSchedule"}]},
        "status": {},
    }
    [status] = parse_nodes_json(json.dumps(node))
    assert status.taints == (Taint("gpu", "NoSchedule", "yes"), Taint("n", "NoExecute"))
    member = members_of(json.dumps(node))["w-1"]
    assert dict(member.labels) == {"zone": "a"}
    assert member.owned == OwnedKeys(frozenset({"zone"}), frozenset({"gpu:NoSchedule"}))
    assert str(member.taints[0]) == "gpu=yes:NoSchedule" and str(member.taints[1]) == "n:NoExecute"
