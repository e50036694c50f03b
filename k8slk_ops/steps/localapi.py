"""Waiting for a control plane's own API server after its boot.

A control plane that has just booted runs its static pods again from the manifests kept on its
persistent disk: etcd first has to find its peers (or, alone, replay its log) and the API server
answers ``/readyz`` only once its etcd does. ``kubeadm upgrade apply`` and ``upgrade node`` read
the cluster's configuration through that API, so they are started only once it is ready. The
node's own API is asked (``--server`` set to the address in its kube-apiserver manifest), not the
controlPlaneEndpoint, which another control plane may answer.
"""

from __future__ import annotations

import asyncio
import time

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.base.nextstep import NextStep
from k8slk_ops.cluster.membership import request_timeout
from k8slk_ops.inventory import checks
from k8slk_ops.node import paths
from k8slk_ops.node.linuxkit import LinuxKitNode, kubelet_stopped

POLL_MAX = 3.0  # the longest pause between two looks


def server_url(host: str, port: int) -> str:
    """``https://host:port``, an IPv6 address in brackets."""
    return f"https://{checks.format_hostport(host, port)}"


async def wait_ready(lk: LinuxKitNode, timeout: float, phase: str) -> None:
    """Return once the node's API answers ``/readyz``; NodeError with its last answer when
    ``timeout`` seconds pass first."""
    manifest = await lk.read_file(f"{paths.MANIFESTS}/kube-apiserver.yaml")
    where = kubeadm.apiserver_address(manifest.decode(errors="replace")) if manifest else None
    if where is None:
        raise NodeError("cannot tell where the API serves: no --advertise-address in "
                        f"{paths.MANIFESTS}/kube-apiserver.yaml", phase=phase)
    server = server_url(*where)
    deadline = time.monotonic() + timeout
    pause = 0.2
    while True:
        result = await lk.kubectl("get", "--raw", "/readyz", f"--server={server}",
                                  request_timeout(5.0), timeout=30)
        if result.exit_status == 0:
            return
        if kubelet_stopped(result):
            why = kubeadm.failure_summary(result.stderr)
            raise NodeError(
                f"the kubelet container on {lk.name} is not running ({why}): its API server "
                "cannot come back before the node boots again", phase=phase,
                next_step=NextStep(f"reboot {lk.name} (nothing on a LinuxKit node starts a "
                                   "stopped service again; its boot does), then run the same "
                                   "command again"))
        if time.monotonic() + pause > deadline:
            why = kubeadm.failure_summary(result.stderr or result.stdout)
            raise NodeError(f"{lk.name}'s API at {server} is not ready after {timeout:.0f} s: "
                            f"{why}", phase=phase)
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, POLL_MAX)
