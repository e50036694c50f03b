"""``drift``: how the running cluster differs from what the inventory and the tool would make.

Read-only and pure in its comparisons. The run reads the cluster once (``steps/drift.py``: the
node list the run found its primary with, kube-system's ConfigMaps in one ``kubectl get``,
each control plane's static pod manifests in one command per node) into a :class:`Found`; the
tool's own renderer turns the inventory into a :class:`Wanted`; each kind of difference is one
pure function of the two (``kinds.py``) giving :class:`DriftItem`\\ s, each with what fixes it.

Where a new kind goes: one more ``@kind("name")`` function in ``kinds.py``. Its items, its
count in the JSON report and its metric series follow from the registration; a fact no kind
reads yet is one more field of :class:`Found`, filled where the cluster is read.
"""

from k8slk_ops.drift.kinds import KINDS, compare, kind
from k8slk_ops.drift.model import (
    ABSENT,
    ConfigDoc,
    DriftItem,
    DriftResult,
    Found,
    StaticPod,
    Wanted,
    WantedAddon,
)
from k8slk_ops.drift.read import COMPONENTS, ConfigMaps, ReadError, manifest_path

__all__ = [
    "ABSENT",
    "COMPONENTS",
    "KINDS",
    "ConfigDoc",
    "ConfigMaps",
    "DriftItem",
    "DriftResult",
    "Found",
    "ReadError",
    "StaticPod",
    "Wanted",
    "WantedAddon",
    "compare",
    "kind",
    "manifest_path",
]
