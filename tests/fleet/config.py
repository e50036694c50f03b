"""Reading /run/kubeadm.yaml as kubeadm does: documents by kind, API versions by release.

Only what the simulated kubeadm checks is read; the point is to fail where real kubeadm fails
on what k8slk-ops renders (a removed API version, v1beta4's list-shaped extra args, a missing
document), not to re-implement kubeadm's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # PyYAML without libyaml
    _Loader = yaml.SafeLoader


class ConfigError(Exception):
    """What kubeadm prints when it rejects its config file."""


@dataclass
class KubeadmConfig:
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> document
    api: str = ""

    def get(self, kind: str) -> dict[str, Any]:
        return self.docs.get(kind) or {}


def _minor(version: str) -> int:
    parts = version.lstrip("v").split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def supported_apis(kubeadm_version: str) -> set[str]:
    """Config API versions a kubeadm release reads (docs/node.md)."""
    minor = _minor(kubeadm_version)
    apis = set()
    if minor < 27:
        apis.add("kubeadm.k8s.io/v1beta2")
    if 22 <= minor < 36:
        apis.add("kubeadm.k8s.io/v1beta3")
    if minor >= 31:
        apis.add("kubeadm.k8s.io/v1beta4")
    return apis


def parse(text: bytes, kubeadm_version: str) -> KubeadmConfig:
    try:
        docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(f"error converting YAML to JSON: {exc}") from None
    config = KubeadmConfig()
    apis = supported_apis(kubeadm_version)
    for doc in docs:
        if not isinstance(doc, dict):
            raise ConfigError("couldn't get version/kind; json parse error: not an object")
        api, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
        if not api or not kind:
            raise ConfigError("Object 'Kind' is missing in the config document")
        if api.startswith("kubeadm.k8s.io/"):
            if api not in apis:
                raise ConfigError(
                    f'no kind "{kind}" is registered for version "{api}" in scheme '
                    '"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"'
                )
            config.api = api
            _check_arg_shapes(doc, api, kind)
        config.docs[kind] = doc
    return config


def _check_arg_shapes(doc: dict[str, Any], api: str, kind: str) -> None:
    """v1beta4 made extra args lists of {name, value}; earlier versions take maps."""
    want_list = api.endswith("v1beta4")
    reg = doc.get("nodeRegistration") or {}
    holders = [("nodeRegistration.kubeletExtraArgs", reg.get("kubeletExtraArgs"))]
    for comp in ("apiServer", "controllerManager", "scheduler"):
        holders.append((f"{comp}.extraArgs", (doc.get(comp) or {}).get("extraArgs")))
    for where, value in holders:
        if value is None:
            continue
        if want_list and not isinstance(value, list):
            raise ConfigError(
                f"strict decoding error: json: cannot unmarshal object into Go struct field "
                f"{kind}.{where} of type []v1beta4.Arg"
            )
        if not want_list and not isinstance(value, dict):
            raise ConfigError(
                f"strict decoding error: json: cannot unmarshal array into Go struct field "
                f"{kind}.{where} of type map[string]string"
            )


def args_of(value: Any) -> dict[str, str]:
    """Extra args in either shape, as a map."""
    if isinstance(value, list):
        return {str(a.get("name")): str(a.get("value")) for a in value if isinstance(a, dict)}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {}


def labels_of(args: dict[str, str]) -> dict[str, str]:
    out = {}
    for item in args.get("node-labels", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key:
            out[key] = value
    return out
