"""Component arguments in both styles: a map (v1beta2, v1beta3) or a list (v1beta4).

v1beta4 turned ``extraArgs`` and ``kubeletExtraArgs`` into lists of ``{name, value}`` so that
an argument may repeat. Internally they are ordered ``(name, value)`` pairs; a user may write
either style and gets the style of the node's API version, or a clear error when the list
repeats a name that a map cannot hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from k8slk_ops.kubeadm.errors import RenderError
from k8slk_ops.kubeadm.versions import ConfigApi

Pairs = list[tuple[str, str]]

# Where arguments live, per kind.
ARG_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "InitConfiguration": (("nodeRegistration", "kubeletExtraArgs"),),
    "JoinConfiguration": (("nodeRegistration", "kubeletExtraArgs"),),
    "ClusterConfiguration": (
        ("apiServer", "extraArgs"),
        ("controllerManager", "extraArgs"),
        ("scheduler", "extraArgs"),
        ("etcd", "local", "extraArgs"),
    ),
}


def _text(value: Any, where: str) -> str:
    """Argument values are strings to kubeadm; write numbers and booleans the Go way."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise RenderError(f"{where}: an argument value must be a scalar, not {value!r}")


def to_pairs(value: Any, where: str) -> Pairs:
    """Read arguments written as a map or as a list of ``{name, value}``."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [(str(k), _text(v, where)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        pairs: Pairs = []
        for item in value:
            if not isinstance(item, Mapping) or set(item) - {"name", "value"} or "name" not in item:
                raise RenderError(
                    f"{where}: each list entry must be {{name: ..., value: ...}}, not {item!r}"
                )
            pairs.append((str(item["name"]), _text(item.get("value", ""), where)))
        return pairs
    raise RenderError(f"{where}: arguments must be a map or a list of {{name, value}}")


def merge_pairs(base: Pairs, override: Pairs) -> Pairs:
    """``base`` with every name the override sets replaced by the override's entries."""
    names = {name for name, _ in override}
    return [p for p in base if p[0] not in names] + override


def render_pairs(pairs: Pairs, api: ConfigApi, where: str) -> Any:
    """The arguments in the style ``api`` expects (sorted by name, repeats in their order)."""
    ordered = sorted(pairs, key=lambda p: p[0])
    if api is ConfigApi.V1BETA4:
        return [{"name": n, "value": v} for n, v in ordered]
    out: dict[str, str] = {}
    for name, value in ordered:
        if name in out and out[name] != value:
            raise RenderError(
                f"{where}: argument {name!r} is given more than once; kubeadm.k8s.io/"
                f"{api.value} holds arguments in a map, so it cannot repeat (v1beta4 can)"
            )
        out[name] = value
    return out
