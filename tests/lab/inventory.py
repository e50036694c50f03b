"""The files the tool reads: ``inventory.yml`` (the format k8slk-ops loads, relative paths
relative to it) and ``known_hosts`` (the nodes' host keys)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.lab.state import CONTROL_PLANE, NodeSpec

POD_SUBNET = "10.244.0.0/16"
SERVICE_SUBNET = "10.96.0.0/12"


CNI_MANIFEST = Path(__file__).resolve().parent / "cni" / "lab-cni.yaml"


def copy_cni(lab_dir: Path) -> tuple[str, ...]:
    """The lab's CNI manifest beside the inventory; its path as ``cluster.addons`` lists it."""
    (lab_dir / "cni").mkdir(exist_ok=True)
    write(lab_dir / "cni" / CNI_MANIFEST.name, CNI_MANIFEST.read_text())
    return (f"cni/{CNI_MANIFEST.name}",)


def render(nodes: Sequence[NodeSpec], kubernetes_version: str, endpoint: str = "",
           addons: Sequence[str] = ()) -> str:
    """``endpoint``: the API's address (a load balancer); the first control plane's otherwise.
    ``addons``: manifests (relative to the inventory) for ``cluster.addons``."""
    first_cp = next(n for n in nodes if n.role == CONTROL_PLANE)
    lines = [
        "cluster:",
        "  name: lab",
        f"  kubernetesVersion: {kubernetes_version}",
        f"  controlPlaneEndpoint: {endpoint or first_cp.address}:6443",
        f"  podSubnet: {POD_SUBNET}",
        f"  serviceSubnet: {SERVICE_SUBNET}",
        *([f"  addons: [{', '.join(addons)}]"] if addons else []),
        "ssh:",
        "  user: root",
        "  port: 22",
        "  identityFile: id_ed25519",
        "  knownHosts: known_hosts",
        "  hostKeyPolicy: strict",
        "  connectTimeout: 5",
        "nodes:",
    ]
    lines += [f"  - {{name: {n.name}, address: {n.address}, role: {n.role}}}" for n in nodes]
    return "\n".join(lines) + "\n"


def known_hosts(keys: dict[str, str]) -> str:
    """``address -> "ssh-ed25519 AAAA... comment"`` as known_hosts lines."""
    return "".join(f"{addr} {' '.join(key.split()[:2])}\n" for addr, key in keys.items())


def write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
