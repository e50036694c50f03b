"""``DIR/lab.json``: what a running lab is made of, so that ``down`` and ``fault`` (often
another process than ``up``) find its slot, nodes and processes."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONTROL_PLANE = "control-plane"
WORKER = "worker"


@dataclass(frozen=True)
class NodeSpec:
    """A node as the inventory names it."""

    name: str
    address: str
    role: str


@dataclass
class NodeState:
    spec: NodeSpec
    kubernetes_version: str
    # Daemon name -> [pid, start time]: the processes the lab started for this node.
    pids: dict[str, list[int]] = field(default_factory=dict)
    boots: int = 0
    no_boot: bool = False  # the next reboot does not come back until ``heal``
    down: bool = False  # halted by a reboot that did not come back


@dataclass
class LabState:
    slot: int
    running: bool
    settle: float
    ready_delay: float
    nodes: list[NodeState]
    balancer: str = ""  # the load balancer's address in front of the API servers, if any
    # kubelet keeps its Node NotReady until a CNI config is in /etc/cni/net.d, as a real one.
    strict_network: bool = True
    # The image the lab's boot server serves: what a node runs after its next reboot from its
    # own shell ("" until ``image`` sets one: each node keeps its version).
    image_version: str = ""
    # Control planes run a real etcd (Debian's etcd-server) as their etcd static pod, and the
    # API doubles keep the cluster's state in it.
    real_etcd: bool = True

    def node(self, name: str) -> NodeState:
        for n in self.nodes:
            if n.spec.name == name:
                return n
        known = ", ".join(n.spec.name for n in self.nodes)
        raise KeyError(f"no node {name!r} in this lab (nodes: {known})")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        nodes = [
            NodeState(NodeSpec(**n["spec"]), n["kubernetes_version"], n["pids"], n["boots"],
                      bool(n.get("no_boot", False)), bool(n.get("down", False)))
            for n in data["nodes"]
        ]
        return cls(data["slot"], data["running"], data["settle"], data["ready_delay"], nodes,
                   data.get("balancer", ""), bool(data.get("strict_network", True)),
                   str(data.get("image_version", "")), bool(data.get("real_etcd", False)))


def save(lab_dir: Path, state: LabState) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = lab_dir / f".lab.json.{os.getpid()}"
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    tmp.replace(lab_dir / "lab.json")


def load(lab_dir: Path) -> LabState:
    return LabState.from_json(json.loads((lab_dir / "lab.json").read_text()))
