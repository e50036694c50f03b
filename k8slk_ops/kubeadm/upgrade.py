"""``kubeadm upgrade plan``, ``upgrade apply`` and ``upgrade node``: what they report.

The plan names the cluster's version, kubeadm's, the target and the commands to run; its
component tables changed shape over time (a NODE column appeared), so rows are read from their
ends. Apply's success line changed in v1.32; both forms count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from k8slk_ops.kubeadm.errors import VersionError
from k8slk_ops.kubeadm.logs import log_message
from k8slk_ops.kubeadm.versions import KubeVersion

_VERSIONS_RE = re.compile(
    r"\[upgrade/versions\]\s+(?P<what>Cluster version|kubeadm version|Target version)"
    r":\s*(?P<v>\S+)"
)
_APPLY_CMD_RE = re.compile(r"kubeadm upgrade apply (?P<v>v?\d+\.\d+\.\d+\S*)")
_APPLY_OK_RES = (
    re.compile(r'\[upgrade/successful\] SUCCESS! Your cluster was upgraded to "(?P<v>[^"]+)"'),
    re.compile(
        r'\[upgrade\] SUCCESS! A control plane node of your cluster was upgraded to "(?P<v>[^"]+)"'
    ),
)
NODE_OK_LINE = "[upgrade] The configuration for this node was successfully updated!"
_UP_TO_DATE = "Awesome, you're up-to-date!"


@dataclass(frozen=True)
class ComponentUpgrade:
    """One row of a plan table: ``current`` as printed (``3 x v1.15.3`` in old kubelet rows)."""

    component: str
    node: str | None
    current: str
    target: str


@dataclass(frozen=True)
class UpgradePlan:
    cluster_version: KubeVersion | None = None
    kubeadm_version: KubeVersion | None = None
    target_version: KubeVersion | None = None
    apply_versions: tuple[KubeVersion, ...] = ()  # from the "kubeadm upgrade apply vX" lines
    components: tuple[ComponentUpgrade, ...] = field(default_factory=tuple)
    up_to_date: bool = False


def _version(text: str) -> KubeVersion | None:
    try:
        return KubeVersion.parse(text)
    except VersionError:
        return None


def parse_upgrade_plan(stdout: str) -> UpgradePlan:
    """The versions, the suggested apply commands and the component rows of a plan."""
    found: dict[str, KubeVersion | None] = {}
    applies: list[KubeVersion] = []
    rows: list[ComponentUpgrade] = []
    header: list[str] | None = None
    up_to_date = False
    for raw in stdout.splitlines():
        line = log_message(raw).strip()
        m = _VERSIONS_RE.search(line)
        if m is not None:
            found.setdefault(m["what"], _version(m["v"]))
            continue
        m = _APPLY_CMD_RE.search(line)
        if m is not None:
            v = _version(m["v"])
            if v is not None and v not in applies:
                applies.append(v)
            continue
        if _UP_TO_DATE in line:
            up_to_date = True
        words = line.split()
        if words[:1] == ["COMPONENT"]:
            header = words
            continue
        if header is None or len(words) < 3:
            header = None if not words else header
            continue
        has_node = len(header) > 1 and header[1] == "NODE"
        if has_node and len(words) >= 4:
            rows.append(ComponentUpgrade(words[0], words[1], " ".join(words[2:-1]), words[-1]))
        elif not has_node:
            rows.append(ComponentUpgrade(words[0], None, " ".join(words[1:-1]), words[-1]))
    return UpgradePlan(
        cluster_version=found.get("Cluster version"),
        kubeadm_version=found.get("kubeadm version"),
        target_version=found.get("Target version"),
        apply_versions=tuple(applies),
        components=tuple(rows),
        up_to_date=up_to_date,
    )


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
    if target.minor - oldest_cp.version.minor > 1:
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
