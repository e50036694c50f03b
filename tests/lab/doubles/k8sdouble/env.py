"""Where the doubles find the node: paths under LAB_ROOT and the node's identity."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


def root() -> Path:
    """The container's root as the doubles see it (``/`` inside a lab node)."""
    return Path(os.environ.get("LAB_ROOT") or "/")


def path(p: str) -> Path:
    """An absolute container path, moved under LAB_ROOT."""
    return root() / p.lstrip("/")


# The node contract's paths, all persistent except /run.
K8S = "/etc/kubernetes"
PKI = "/etc/kubernetes/pki"
MANIFESTS = "/etc/kubernetes/manifests"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
SUPER_ADMIN_CONF = "/etc/kubernetes/super-admin.conf"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
CONTROLLER_MANAGER_CONF = "/etc/kubernetes/controller-manager.conf"
SCHEDULER_CONF = "/etc/kubernetes/scheduler.conf"
KUBELET_DIR = "/var/lib/kubelet"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"  # THE marker
KUBELET_CLIENT_PEM = "/var/lib/kubelet/pki/kubelet-client-current.pem"
ETCD_DIR = "/var/lib/etcd"
# What etcd replicates between control planes: one JSON store per cluster (named after its CA),
# shared by every control plane's API double through the lab's /lab/etcd mount.
CLUSTER_STORE_DIR = "/lab/etcd"
ETCD_MEMBER = "/var/lib/etcd/member/lab-member"  # this node's etcd data: a member's name
NODE_JSON = "/lab/node.json"
FAULT_FAIL = "/lab/faults/kubeadm-fail"
FAULT_HANG = "/lab/faults/kubeadm-hang"
FAULT_ETCD_STOP = "/lab/faults/etcd-stop"  # the kubelet keeps the etcd static pod stopped
FAULT_DRAIN_BLOCK = "/lab/faults/drain-block-{node}"  # a pod a PodDisruptionBudget protects

CNI_CONF_DIR = "/etc/cni/net.d"  # the image binds it from /var/node/etc/cni/net.d

API_PORT = 6443


@dataclass(frozen=True)
class Node:
    """The node's identity, from /lab/node.json (written by the lab at every boot)."""

    name: str
    address: str
    role: str
    version: str  # the image's Kubernetes version: kubeadm's, kubelet's and kubectl's
    ready_delay: float
    strict_network: bool  # NotReady until a CNI config is in /etc/cni/net.d
    real_etcd: bool = False  # a real etcd static pod holds the cluster's state
    # The etcd image in the node's containerd (Debian's etcd binaries, tagged with their version).
    etcd_image: str = ""


def node() -> Node:
    """Read /lab/node.json; a node without one is a lab bug, so let it raise."""
    data = json.loads(path(NODE_JSON).read_text())
    return Node(
        name=str(data["name"]),
        address=str(data["address"]),
        role=str(data.get("role", "worker")),
        version=str(data.get("kubernetesVersion", "v1.31.3")),
        ready_delay=float(data.get("readyDelay", 1.0)),
        strict_network=bool(data.get("strictNetwork", False)),
        real_etcd=bool(data.get("realEtcd", False)),
        etcd_image=str(data.get("etcdImage", "")),
    )


def write_atomic(p: str | Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write a file whole or not at all (temp file then rename), creating its directory."""
    target = p if isinstance(p, Path) else path(p)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
