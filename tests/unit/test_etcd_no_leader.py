"""A member that knows it has no leader says so at once in ``endpoint status`` (answered by the
member itself); ``endpoint health`` is a quorum read that, without quorum, only fails after its
timeout. So a lost quorum is told from the first, in seconds, and the second is not waited for."""

from __future__ import annotations

from typing import Any

import pytest

from k8slk_ops.ssh.target import CommandResult
from k8slk_ops.steps import etcd
from tests.unit.test_etcd_snapshot import ENDPOINT_STATUS, MEMBER_LIST

NO_LEADER_STATUS = ENDPOINT_STATUS.replace('"leader":10276657743932975437', '"leader":0')


class FakeControlPlane:
    """kubelet_exec of crictl in a control plane whose etcd member has no leader."""

    name = "cp-1"

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def kubelet_exec(self, argv: list[str], input: bytes | None = None,
                           timeout: float | None = None) -> CommandResult:
        if argv[:2] == ["crictl", "ps"]:
            return CommandResult(0, b"abc123\n", b"")
        words = [a for a in argv[3:] if not a.startswith("--")]
        self.asked.append(" ".join(words[1:3]))
        if words[1:3] == ["endpoint", "status"]:
            return CommandResult(0, NO_LEADER_STATUS.encode(), b"")
        if words[1:3] == ["member", "list"]:
            return CommandResult(0, MEMBER_LIST.encode(), b"")
        raise AssertionError(f"not to be asked without a leader: {argv}")


async def test_etcd_status_says_quorum_lost_without_a_quorum_read() -> None:
    node = FakeControlPlane()
    health = await etcd.member_health(node)  # type: ignore[arg-type]
    assert not health.healthy and health.error.startswith("quorum lost")
    assert "endpoint health" not in node.asked


async def test_snapshot_refuses_a_member_without_leader_at_once() -> None:
    node: Any = FakeControlPlane()
    pod = await etcd.EtcdPod.find(node)
    with pytest.raises(etcd.EtcdPodError, match="not healthy, no snapshot taken: quorum lost"):
        await etcd._require_healthy(pod)
    assert node.asked == ["endpoint status"]
