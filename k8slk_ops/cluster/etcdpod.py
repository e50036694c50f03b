"""The etcd static pod of a control plane, reached through ``crictl`` in the kubelet container.

kubeadm's etcd runs as a static pod; the image's kubelet container has ``crictl``, which lists
the pod's container (``crictl ps --name etcd -q``: running containers only) and runs etcdctl in
it (``crictl exec ID etcdctl ...``). The etcd image has etcdctl and no shell, so files are read
from the node's shell through the data directory both share (``paths.ETCD_DATA``).
"""

from __future__ import annotations

from dataclasses import dataclass

from k8slk_ops.cluster import etcdctl
from k8slk_ops.cluster.etcdctl import SnapshotStatus
from k8slk_ops.kubeadm import failure_summary
from k8slk_ops.node.linuxkit import LinuxKitNode
from k8slk_ops.ssh import CommandResult

ETCD_CONTAINER = "etcd"
# How long to wait for a member's client URL to take a connection before calling it silent.
REACH_DIAL_TIMEOUT = "3s"


class EtcdPodError(Exception):
    """The etcd pod is not there, or etcdctl in it failed; the message says why."""


@dataclass
class EtcdPod:
    """The running etcd container of one control plane."""

    node: LinuxKitNode
    container_id: str

    @classmethod
    async def find(cls, node: LinuxKitNode) -> EtcdPod:
        """The running etcd container, or EtcdPodError saying why there is none."""
        result = await node.kubelet_exec(
            ["crictl", "ps", "--name", ETCD_CONTAINER, "-q"], timeout=60
        )
        if result.exit_status != 0:
            detail = failure_summary(result.stderr or result.stdout)
            raise EtcdPodError(f"crictl ps on {node.name} failed: {detail}")
        ids = result.stdout.decode(errors="replace").split()
        if not ids:
            raise EtcdPodError(
                f"no running etcd container on {node.name} (crictl ps --name etcd is empty): "
                "the etcd static pod is stopped or crashing"
            )
        return cls(node, ids[0])

    async def exec(self, argv: list[str], *, timeout: float = 120) -> CommandResult:
        return await self.node.kubelet_exec(
            ["crictl", "exec", self.container_id, *argv], timeout=timeout
        )

    async def etcdctl(self, *args: str, timeout: float = 120) -> str:
        """etcdctl against the local member with kubeadm's client certificate; its stdout."""
        result = await self.exec(etcdctl.client_argv(*args), timeout=timeout)
        if result.exit_status != 0:
            raise EtcdPodError(
                f"etcdctl {' '.join(args[:2])} on {self.node.name}: "
                + etcdctl.failure_reason(result.stderr.decode(errors="replace"))
            )
        return result.stdout.decode(errors="replace")

    async def etcdctl_rows(self, *args: str, timeout: float = 120) -> str:
        """etcdctl's stdout whatever its exit: with ``--cluster``, ``endpoint status`` and
        ``endpoint health`` print a row per member that answered and exit 1 when any did not.
        EtcdPodError only when it printed nothing (etcd itself was not reached)."""
        result = await self.exec(etcdctl.client_argv(*args), timeout=timeout)
        out = result.stdout.decode(errors="replace")
        if result.exit_status != 0 and not out.strip():
            raise EtcdPodError(
                f"etcdctl {' '.join(args[:2])} on {self.node.name}: "
                + etcdctl.failure_reason(result.stderr.decode(errors="replace"))
            )
        return out

    async def reach(self, endpoint: str) -> str:
        """Whether the member at client URL ``endpoint`` answers ``endpoint status`` (answered
        by that member alone, quorum or not): '' when it does, else etcdctl's reason."""
        argv = etcdctl.client_argv_at(endpoint, "endpoint", "status", "-w", "json",
                                      dial_timeout=REACH_DIAL_TIMEOUT)
        result = await self.exec(argv, timeout=60)
        if result.exit_status == 0:
            return ""
        said = result.stderr.decode(errors="replace").lower()
        if "deadline" in said:
            return f"{endpoint} did not answer within {REACH_DIAL_TIMEOUT}"
        if "connection refused" in said:
            return f"nothing listens at {endpoint}"
        return f"{endpoint}: {etcdctl.failure_reason(said)}"

    async def snapshot_status(self, path: str) -> SnapshotStatus:
        """``etcdctl snapshot status`` of a file in the pod's data directory."""
        result = await self.exec(etcdctl.snapshot_status_argv(path), timeout=120)
        if result.exit_status != 0:
            raise EtcdPodError(
                f"etcdctl snapshot status on {self.node.name}: "
                + etcdctl.failure_reason(result.stderr.decode(errors="replace"))
            )
        return etcdctl.parse_snapshot_status(result.stdout.decode(errors="replace"))
