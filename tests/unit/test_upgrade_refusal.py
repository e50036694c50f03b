"""What kubeadm refuses, said before anything is touched."""

from __future__ import annotations

from k8slk_ops.kubeadm.upgrade import NodeVersion, upgrade_refusal
from k8slk_ops.kubeadm.versions import KubeVersion

V = KubeVersion.parse


def nodes(*items: tuple[str, str, bool]) -> tuple[NodeVersion, ...]:
    return tuple(NodeVersion(n, V(v), cp) for n, v, cp in items)


def test_one_minor_up_is_fine() -> None:
    assert upgrade_refusal(V("v1.31.2"), nodes(("cp-1", "v1.30.5", True),
                                               ("w-1", "v1.30.5", False))) == ""


def test_a_cluster_half_way_is_fine() -> None:
    assert upgrade_refusal(V("v1.31.2"), nodes(("cp-1", "v1.31.2", True),
                                               ("w-1", "v1.30.5", False))) == ""


def test_skipping_a_minor_is_refused_with_the_way_out() -> None:
    why = upgrade_refusal(V("v1.32.0"), nodes(("cp-1", "v1.30.5", True)))
    assert "skips a minor" in why and "v1.31.x first" in why


def test_a_downgrade_is_refused() -> None:
    why = upgrade_refusal(V("v1.30.1"), nodes(("cp-1", "v1.30.5", True)))
    assert "does not downgrade" in why and "cp-1" in why


def test_workers_ahead_of_control_planes_are_refused() -> None:
    why = upgrade_refusal(V("v1.31.2"), nodes(("cp-1", "v1.30.5", True),
                                              ("w-1", "v1.31.0", False)))
    assert "ahead of control plane" in why and "w-1" in why
