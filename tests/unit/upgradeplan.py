"""Reading ``kubeadm upgrade plan`` as kubeadm prints it: the oracle the lab double's plan is
checked with (test_lab_doubles_upgrade), itself checked against real kubeadm output
(test_kubeadm_certs_upgrade). The tool reads no plan (kubeadm.upgrade_refusal decides from the
Nodes' versions), so this lives with the tests.

The plan names the cluster's version, kubeadm's, the target and the commands to run; its
component tables changed shape over time (a NODE column appeared), so rows are read from their
ends.
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
