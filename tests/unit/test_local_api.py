"""A control plane that has just booted: kubeadm upgrade starts only once the node's own API
answers /readyz (its etcd and API server come back from their manifests first)."""

from __future__ import annotations

import pytest

from k8slk_ops.base.errors import NodeError
from k8slk_ops.ssh.target import CommandResult
from k8slk_ops.steps import localapi

MANIFEST = b"""apiVersion: v1
kind: Pod
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address=10.0.0.11
    - --secure-port=6443
"""
REFUSED = CommandResult(1, b"", b"The connection to the server 10.0.0.11:6443 was refused - "
                        b"did you specify the right host or port?\n")


class BootingControlPlane:
    name = "cp-1"

    def __init__(self, down_for: int) -> None:
        self.down_for = down_for
        self.asked: list[tuple[str, ...]] = []

    async def read_file(self, path: str) -> bytes | None:
        return MANIFEST if path.endswith("/kube-apiserver.yaml") else None

    async def kubectl(self, *args: str, timeout: float | None = 60) -> CommandResult:
        self.asked.append(args)
        if len(self.asked) <= self.down_for:
            return REFUSED
        return CommandResult(0, b"ok", b"")


async def _no_wait(seconds: float) -> None:
    return None


async def test_waits_for_the_nodes_own_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localapi.asyncio, "sleep", _no_wait)
    node = BootingControlPlane(down_for=3)
    await localapi.wait_ready(node, 60, "upgrade")  # type: ignore[arg-type]
    assert len(node.asked) == 4
    assert node.asked[0][:3] == ("get", "--raw", "/readyz")
    assert "--server=https://10.0.0.11:6443" in node.asked[0]


async def test_an_api_that_never_comes_back_fails_with_its_last_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr(localapi.asyncio, "sleep", sleep)
    monkeypatch.setattr(localapi.time, "monotonic", lambda: clock[0])
    with pytest.raises(NodeError, match="not ready after 30 s: The connection to the server"):
        await localapi.wait_ready(BootingControlPlane(down_for=10**6), 30, "upgrade")  # type: ignore[arg-type]


def test_an_ipv6_server_is_bracketed() -> None:
    assert localapi.server_url("fd00::1", 6443) == "https://[fd00::1]:6443"


class StoppedKubelet(BootingControlPlane):
    """The kubelet container's task stopped: every exec into it fails as real ``ctr`` does."""

    async def kubectl(self, *args: str, timeout: float | None = 60) -> CommandResult:
        self.asked.append(args)
        return CommandResult(1, b"", b"ctr: cannot exec in a stopped state: unknown\n")


async def test_a_stopped_kubelet_container_fails_at_once_and_says_to_reboot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing restarts a stopped service on a LinuxKit node: waiting out the timeout (600 s by
    default) for its API would only delay the same failure."""
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr(localapi.asyncio, "sleep", sleep)
    monkeypatch.setattr(localapi.time, "monotonic", lambda: clock[0])
    node = StoppedKubelet(down_for=0)
    with pytest.raises(NodeError, match="kubelet container on cp-1 is not running") as caught:
        await localapi.wait_ready(node, 600, "restore")  # type: ignore[arg-type]
    assert len(node.asked) == 1
    assert caught.value.next_step is not None
    assert caught.value.next_step.action.startswith("reboot cp-1 ")
