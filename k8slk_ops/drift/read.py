"""What the cluster printed, read into ``drift``'s typed facts (pure: text in, values out).

kube-system's ConfigMaps come from one ``kubectl get configmaps -o json`` (a ``List``): kubeadm's
``kubeadm-config`` (key ``ClusterConfiguration``), the kubelets' ``kubelet-config`` (key
``kubelet``; ``kubelet-config-1.NN`` before Kubernetes 1.24) and the tool's addon record. Each
control plane's static pod manifests come from one read of the node's files; their flags are
taken from the container's command, as kubeadm writes them (``--name=value``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from k8slk_ops.cluster import addonrecord
from k8slk_ops.drift.model import ConfigDoc, StaticPod
from k8slk_ops.node import paths

KUBEADM_CONFIG = "kubeadm-config"
KUBELET_CONFIG = "kubelet-config"
_KUBELET_CONFIG_OF_MINOR = re.compile(r"kubelet-config-1\.(\d+)\Z")
# The control plane's static pods, and where the ClusterConfiguration keeps each one's flags.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "kube-apiserver": ("apiServer", "extraArgs"),
    "kube-controller-manager": ("controllerManager", "extraArgs"),
    "kube-scheduler": ("scheduler", "extraArgs"),
    "etcd": ("etcd", "local", "extraArgs"),
}


def manifest_path(component: str) -> str:
    """Where a component's static pod manifest is, as the node's SSH shell sees it."""
    return f"{paths.MANIFESTS}/{component}.yaml"


class ReadError(Exception):
    """What kubectl printed is not what was asked for."""


@dataclass(frozen=True)
class ConfigMaps:
    """kube-system's ConfigMaps as ``drift`` reads them."""

    kubeadm_config: ConfigDoc
    kubelet_config: ConfigDoc
    addon_record: Mapping[str, addonrecord.RecordEntry]


def _where(name: str) -> str:
    return f"ConfigMap kube-system/{name}"


def _data(item: Mapping[str, Any]) -> dict[str, str]:
    data = item.get("data")
    if not isinstance(data, Mapping):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _config_doc(name: str, items: Mapping[str, Mapping[str, Any]], key: str) -> ConfigDoc:
    item = items.get(name)
    where = _where(name)
    if item is None:
        return ConfigDoc(where, None)
    text = _data(item).get(key)
    if text is None:
        return ConfigDoc(f"{where} (key {key})", None)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return ConfigDoc(where, None, f"its {key} is not YAML: {str(exc).splitlines()[0]}")
    if not isinstance(doc, Mapping):
        return ConfigDoc(where, None, f"its {key} is not a mapping")
    return ConfigDoc(where, doc)


def _kubelet_config_name(names: list[str]) -> str:
    """``kubelet-config`` (Kubernetes 1.24 on), else the newest ``kubelet-config-1.NN``."""
    if KUBELET_CONFIG in names:
        return KUBELET_CONFIG
    minors = [(int(m[1]), n) for n in names if (m := _KUBELET_CONFIG_OF_MINOR.match(n))]
    return max(minors)[1] if minors else KUBELET_CONFIG


def parse_configmaps(text: str) -> ConfigMaps:
    """``kubectl get configmaps -n kube-system -o json``, read; ReadError if it is not a List."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReadError(f"kubectl get configmaps did not print JSON: {exc}") from None
    raw = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(raw, list):
        raise ReadError("kubectl get configmaps did not print a List")
    items: dict[str, Mapping[str, Any]] = {}
    for item in raw:
        meta = item.get("metadata") if isinstance(item, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            items[meta["name"]] = item
    record = items.get(addonrecord.NAME)
    return ConfigMaps(
        kubeadm_config=_config_doc(KUBEADM_CONFIG, items, "ClusterConfiguration"),
        kubelet_config=_config_doc(_kubelet_config_name(sorted(items)), items, "kubelet"),
        addon_record=addonrecord.record_data(record) if record is not None else {},
    )


def parse_static_pod(component: str, path: str, data: bytes | None) -> StaticPod:
    """A manifest's container flags; ``flags`` None when absent or not a pod with a command."""
    if data is None:
        return StaticPod(component, path, None)
    try:
        doc = yaml.safe_load(data.decode(errors="replace"))
        command = doc["spec"]["containers"][0]["command"]
        if not isinstance(command, list):
            raise TypeError
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return StaticPod(component, path, None,
                         "not a static pod whose container has a command (edited by hand?)")
    flags: dict[str, tuple[str, ...]] = {}
    for arg in (str(a) for a in command):
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            flags[name] = (*flags.get(name, ()), value)
    return StaticPod(component, path, flags)
