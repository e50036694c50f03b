"""kubectl get nodes -o json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k8slk_ops.kubeadm import ParseError, parse_nodes_json


def node(name: str, labels: dict[str, str], ready: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": extra.get("spec", {}),
        "status": {
            "addresses": [
                {"type": "Hostname", "address": name},
                {"type": "InternalIP", "address": "10.0.0.11"},
            ],
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready, "reason": "KubeletReady"},
            ],
            "nodeInfo": {"kubeletVersion": "v1.31.3"},
        },
    }


def test_list() -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            node("cp-1", {"node-role.kubernetes.io/control-plane": ""}, "True"),
            node("old-cp", {"node-role.kubernetes.io/master": ""}, "Unknown"),
            node(
                "w-1",
                {"kubernetes.io/role": "worker", "zone": "a"},
                "False",
                spec={"unschedulable": True},
            ),
        ],
        "metadata": {"resourceVersion": ""},
    }
    cp, old, w = parse_nodes_json(json.dumps(doc))
    assert (cp.name, cp.roles, cp.ready, cp.control_plane) == (
        "cp-1",
        ("control-plane",),
        True,
        True,
    )
    assert cp.kubelet_version == "v1.31.3" and cp.internal_ip == "10.0.0.11"
    assert not cp.unschedulable
    assert old.control_plane and not old.ready
    assert w.roles == ("worker",) and not w.control_plane and not w.ready and w.unschedulable


def test_single_node_and_empty_list() -> None:
    (n,) = parse_nodes_json(json.dumps(node("cp-1", {}, "True")))
    assert n.roles == () and n.ready
    assert parse_nodes_json('{"kind": "List", "items": []}') == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The connection to the server localhost:8080 was refused",
        "[]",
        '{"kind": "List"}',
        '{"kind": "List", "items": [{"metadata": {}}]}',
        '{"kind": "List", "items": [1]}',
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse_nodes_json(text)
