"""Deep merge of a user's overrides into what we render.

Dicts merge key by key, recursively; lists and scalars replace; ``None`` removes the key (the
only way to drop a field we render by default). Inputs are never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it (see the module docstring for the rules)."""
    out: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(_plain(value))
    return out


def _plain(value: Any) -> Any:
    """Mappings as dicts and tuples as lists, so later steps see one shape."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def get_path(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path``, or ``None`` when any part is missing."""
    node: Any = doc
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def has_path(doc: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = doc
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def pop_path(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    """Remove and return the value at ``path`` (``None`` if absent); empty parents go too."""
    parents: list[dict[str, Any]] = []
    node: Any = doc
    for part in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return None
        parents.append(node)
        node = node[part]
    if not isinstance(node, dict) or path[-1] not in node:
        return None
    value = node.pop(path[-1])
    for parent, part in zip(reversed(parents), reversed(path[:-1]), strict=True):
        if parent[part]:
            break
        del parent[part]
    return value


def set_path(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``path`` to ``value``, creating the parent dicts it needs."""
    node = doc
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value
