"""``kubeadm upgrade apply`` and ``upgrade node``: what they report; whether a roll is allowed.

Apply's success line changed in v1.32; both forms count. The tool reads no ``upgrade plan``: it
decides from the versions the Nodes report (``upgrade_refusal``), with kubeadm's own rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from k8slk_ops.kubeadm.errors import VersionError
from k8slk_ops.kubeadm.logs import log_message
from k8slk_ops.kubeadm.versions import KubeVersion, upgrade_step_allowed

_APPLY_OK_RES = (
    re.compile(r'\[upgrade/successful\] SUCCESS! Your cluster was upgraded to "(?P<v>[^"]+)"'),
    re.compile(
        r'\[upgrade\] SUCCESS! A control plane node of your cluster was upgraded to "(?P<v>[^"]+)"'
    ),
)
NODE_OK_LINE = "[upgrade] The configuration for this node was successfully updated!"


def _version(text: str) -> KubeVersion | None:
    try:
        return KubeVersion.parse(text)
    except VersionError:
        return None


def upgraded_to(output: str) -> KubeVersion | None:
    """The version ``kubeadm upgrade apply`` reports success for, either line form."""
    for raw in output.splitlines():
        line = log_message(raw)
        for pattern in _APPLY_OK_RES:
            m = pattern.search(line)
            if m is not None:
                return _version(m["v"])
    return None


def is_upgrade_apply_success(output: str, version: str | KubeVersion | None = None) -> bool:
    """True when apply printed its success line (for ``version``, when given)."""
    got = upgraded_to(output)
    if got is None:
        return False
    return version is None or got == KubeVersion.parse(version)


def is_upgrade_node_success(output: str) -> bool:
    """True when ``kubeadm upgrade node`` printed its success line."""
    return any(log_message(raw).strip() == NODE_OK_LINE for raw in output.splitlines())


@dataclass(frozen=True)
class NodeVersion:
    """A node's kubelet version as its Node object reports it, and its role."""

    name: str
    version: KubeVersion
    control_plane: bool


def upgrade_refusal(target: KubeVersion, nodes: tuple[NodeVersion, ...]) -> str:
    """Why kubeadm would refuse to roll these nodes to ``target``, or ''. Pure.

    kubeadm upgrades one minor at a time and never downgrades a node; a kubelet newer than the
    control plane's API server is outside the skew policy, so workers ahead of the control
    planes are refused too. The cluster's version is the oldest control plane's.
    """
    planes = [n for n in nodes if n.control_plane]
    if not planes:
        return "no control plane reports a version"
    oldest_cp = min(planes, key=lambda n: n.version)
    for n in nodes:
        if n.version.major != target.major or n.version > target:
            return (
                f"{n.name} runs {n.version}, newer than the target {target}: kubeadm does not "
                "downgrade"
            )
    if not upgrade_step_allowed(oldest_cp.version, target):  # a minor skipped (none is newer)
        nxt = f"v{oldest_cp.version.major}.{oldest_cp.version.minor + 1}"
        return (
            f"{oldest_cp.name} runs {oldest_cp.version}; {target} skips a minor version. kubeadm "
            f"upgrades one minor at a time: upgrade to the latest {nxt}.x first"
        )
    ahead = [n for n in nodes if not n.control_plane and n.version > oldest_cp.version]
    if ahead:
        return (
            f"worker {ahead[0].name} runs {ahead[0].version}, ahead of control plane "
            f"{oldest_cp.name} at {oldest_cp.version}: a kubelet is never newer than the API "
            "server; upgrade the control planes first"
        )
    return ""
