"""The typed values of ``drift``: what the inventory wants, what the cluster has, each difference.

``Wanted`` is rendered from the inventory by the tool's own renderer (``steps/drift.py``);
``Found`` is what one run read from the cluster (the node list, kube-system's ConfigMaps, each
control plane's static pod manifests). Both are plain data: the comparisons (``kinds.py``) are
pure functions of them, tested with tables of facts in and items out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from k8slk_ops.base.nextstep import NextStep
from k8slk_ops.cluster.nodemeta import Desired

if TYPE_CHECKING:
    from k8slk_ops.cluster.addonrecord import RecordEntry
    from k8slk_ops.cluster.membership import Member

# What a value that is not there reads as, in a report.
ABSENT = "(absent)"


@dataclass(frozen=True)
class DriftItem:
    """One difference: of which kind, where (a node, or an object of the cluster), what differs
    (a field, a flag, a manifest), the value the inventory and the tool render, the value found,
    and what fixes it."""

    kind: str
    where: str
    what: str
    expected: str
    found: str
    fix: NextStep

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "what": self.what,
                "expected": self.expected, "found": self.found, "fix": self.fix.to_json()}


@dataclass(frozen=True)
class DriftResult:
    """Every difference found, and every kind that was compared (each one counted in the
    metrics, 0 when it found none, so that an alert can be written on any of them)."""

    items: tuple[DriftItem, ...]
    kinds: tuple[str, ...]

    def count(self, kind: str) -> int:
        return sum(1 for i in self.items if i.kind == kind)

    def to_json(self) -> dict[str, Any]:
        return {"items": [i.to_json() for i in self.items],
                "counts": {k: self.count(k) for k in self.kinds}}


@dataclass(frozen=True)
class WantedAddon:
    """An addon manifest of ``cluster.addons``: its name, its key in the record, its SHA-256."""

    name: str
    key: str
    sha256: str


@dataclass(frozen=True)
class Wanted:
    """What the inventory and the tool render for the cluster."""

    inventory: str  # the inventory's path, for the commands that fix things
    nodes: Mapping[str, str]  # name -> role, in inventory order
    # ``cluster.kubernetesVersion`` when the inventory pins one, else "" (then the cluster's
    # own version, from its kubeadm-config, is what every kubelet should run).
    kubernetes_version: str
    # The ClusterConfiguration and KubeletConfiguration init renders, as data (without
    # ``kubernetesVersion`` when the inventory does not pin one: then it is not the inventory's).
    cluster_configuration: Mapping[str, Any]
    kubelet_configuration: Mapping[str, Any]
    addons: tuple[WantedAddon, ...] = ()
    kube_proxy: bool = True
    # The labels and taints each node's inventory entry lists (owned through the Node's
    # annotations: nodemeta.py).
    node_metadata: Mapping[str, Desired] = field(default_factory=dict)

    @property
    def control_planes(self) -> tuple[str, ...]:
        return tuple(n for n, role in self.nodes.items() if role == "control-plane")


@dataclass(frozen=True)
class ConfigDoc:
    """A configuration kubeadm keeps in a ConfigMap (``kubeadm-config``, ``kubelet-config``),
    parsed: ``doc`` is None when the ConfigMap or its key is absent (``error`` empty) or its
    text is not a YAML mapping (``error`` says why)."""

    where: str  # ``ConfigMap kube-system/kubeadm-config``
    doc: Mapping[str, Any] | None
    error: str = ""


@dataclass(frozen=True)
class StaticPod:
    """A control plane component's static pod manifest on one node: the flags of its
    container's command (``--name=value``, as kubeadm writes them; a flag given twice keeps
    both values in order). ``flags`` is None when the manifest is absent or unreadable."""

    component: str  # kube-apiserver, kube-controller-manager, kube-scheduler, etcd
    path: str
    flags: Mapping[str, tuple[str, ...]] | None
    error: str = ""


@dataclass(frozen=True)
class Found:
    """What the cluster holds, as this run read it once."""

    members: Mapping[str, Member]  # the node list (``kubectl get nodes``), by name
    kubeadm_config: ConfigDoc
    kubelet_config: ConfigDoc
    # the record of applied addon manifests: key -> its SHA-256 and objects
    addon_record: Mapping[str, RecordEntry]
    # control plane -> component -> its manifest; a control plane that could not be read
    # is missing (it is reported unreachable, not as drift)
    static_pods: Mapping[str, Mapping[str, StaticPod]] = field(default_factory=dict)
