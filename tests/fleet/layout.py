"""What a fleet is made of: nodes, their addresses, and the files ``up`` writes for the tool.

Node ``i`` (from 1) listens on its own loopback address 127.1.X.Y, so a thousand nodes share
one port number without sharing a socket, and a connection reaches exactly one node. The
inventory is the format k8slk-ops loads; ``fleet.json`` is what ``serve`` and ``down`` read.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONTROL_PLANE = "control-plane"
WORKER = "worker"
DEFAULT_PORT = 2222
DEFAULT_VERSION = "v1.31.3"
MAX_NODES = 254 * 256

INVENTORY = "inventory.yml"
FLEET_JSON = "fleet.json"
KNOWN_HOSTS = "known_hosts"
CLIENT_KEY = "id_ed25519"
CA_CERT = "ca.crt"
PID_FILE = "fleet.pid"
LOG_FILE = "fleet.log"
STATS_FILE = "stats.json"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    address: str
    role: str


@dataclass
class FleetConfig:
    """Everything ``serve`` needs to bring the nodes up; written by ``up`` as fleet.json."""

    nodes: list[NodeSpec]
    port: int = DEFAULT_PORT
    kubernetes_version: str = DEFAULT_VERSION
    settle: float = 5.0  # kubeadm.sh's "sleeping a bit more" before it reads the trigger
    kubeadm_seconds: float = 2.0  # how long one simulated kubeadm init/join runs
    ready_delay: float = 1.0  # from joined to Ready in the node list
    # As on a real node, no Node is Ready before a pod network is applied; the inventory lists
    # the lab's small CNI manifest as its addon unless ``pod_network_addon`` is False.
    strict_network: bool = True
    pod_network_addon: bool = True
    cpus: int = 2
    memory_kb: int = 4_000_000
    # Nodes whose kubeadm fails its preflight (too little memory), to test failure at scale.
    fail_nodes: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        first = next(n for n in self.nodes if n.role == CONTROL_PLANE)
        return f"{first.address}:6443"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FleetConfig:
        data = dict(data)
        data["nodes"] = [NodeSpec(**n) for n in data["nodes"]]
        return cls(**data)


def address(index: int) -> str:
    """The loopback address of node ``index`` (1-based): 127.1.X.Y with Y in 1..254."""
    if not 1 <= index <= MAX_NODES:
        raise ValueError(f"node index {index} out of range 1..{MAX_NODES}")
    x, y = divmod(index - 1, 254)
    return f"127.1.{x}.{y + 1}"


def node_specs(nodes: int, control_planes: int) -> list[NodeSpec]:
    """``cp-1..cp-M`` then ``w-1..w-(N-M)``, addresses in that order."""
    if nodes < 1 or not 1 <= control_planes <= nodes:
        raise ValueError("need at least one node and 1 <= control planes <= nodes")
    out = []
    for i in range(1, nodes + 1):
        if i <= control_planes:
            name, role = f"cp-{i}", CONTROL_PLANE
        else:
            name, role = f"w-{i - control_planes}", WORKER
        out.append(NodeSpec(name, address(i), role))
    return out


# The lab's CNI manifest (a DaemonSet mounting hostPath /etc/cni/net.d): the fleet's pod network.
POD_NETWORK = "pod-network.yaml"
POD_NETWORK_SOURCE = Path(__file__).resolve().parent.parent / "lab" / "cni" / "lab-cni.yaml"


def render_inventory(config: FleetConfig, cluster_name: str = "fleet") -> str:
    """The inventory k8slk-ops loads; paths are relative to it (DIR)."""
    lines = [
        "# Written by `python -m tests.fleet up`: simulated LinuxKit nodes, one asyncssh process.",
        "cluster:",
        f"  name: {cluster_name}",
        f"  kubernetesVersion: {config.kubernetes_version}",
        f"  controlPlaneEndpoint: {config.endpoint}",
        *([f"  addons: [{POD_NETWORK}]"] if config.pod_network_addon else []),
        "ssh:",
        "  user: root",
        f"  port: {config.port}",
        f"  identityFile: {CLIENT_KEY}",
        f"  knownHosts: {KNOWN_HOSTS}",
        "  hostKeyPolicy: strict",
        "  connectTimeout: 10",
        # A path that does not exist: the operator's ~/.ssh/config must not steer the fleet.
        "  configFile: no-ssh-config",
        "nodes:",
    ]
    lines += [f"  - {{name: {n.name}, address: {n.address}, role: {n.role}}}" for n in config.nodes]
    return "\n".join(lines) + "\n"


def write_inventory(directory: Path, config: FleetConfig, path: Path | None = None) -> None:
    """The inventory and the pod network manifest it names, beside it."""
    write_atomic(directory / POD_NETWORK, POD_NETWORK_SOURCE.read_bytes())
    write_atomic(path or directory / INVENTORY, render_inventory(config))


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write beside the target then rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)
    os.chmod(tmp, mode)
    tmp.replace(path)


def save(directory: Path, config: FleetConfig) -> None:
    write_atomic(directory / FLEET_JSON, json.dumps(config.to_json(), indent=1) + "\n")


def load(directory: Path) -> FleetConfig:
    return FleetConfig.from_json(json.loads((directory / FLEET_JSON).read_text()))
