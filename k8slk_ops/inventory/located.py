"""Where a value stands in the user's files: the bridge from a field path to ``file:line:col``.

Validation speaks in field paths (``nodes.2.role``); people fix files by line. Each loader hands
the validator a ``Locator`` that knows its own format: the YAML ones read the positions the
parser kept (libyaml's marks, or ruamel.yaml's round-trip ``lc``), the INI one remembers where each host line and variable stood (possibly in
another file, ``group_vars/all.yml``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from k8slk_ops.inventory.errors import Loc


@dataclass(frozen=True)
class Position:
    """A place in a file; ``line``/``column`` 1-based, 0 when unknown."""

    file: str
    line: int = 0
    column: int = 0


class Locator(Protocol):
    """Maps a field path to the place to show. Paths that do not exist fall back to the nearest
    ancestor that does, so a missing field points at the mapping that lacks it."""

    def value(self, loc: Loc) -> Position:
        """Where the value at ``loc`` stands (for a mapping or a list: its key or item)."""
        ...

    def key(self, loc: Loc) -> Position:
        """Where the key of ``loc`` stands (for an unknown key)."""
        ...


class YamlLocator:
    """Positions from a ruamel.yaml round-trip tree (``CommentedMap.lc`` is 0-based)."""

    def __init__(self, file: str, tree: Any) -> None:
        self.file = file
        self.tree = tree

    def value(self, loc: Loc) -> Position:
        return self._walk(loc, want_key=False)

    def key(self, loc: Loc) -> Position:
        return self._walk(loc, want_key=True)

    def _walk(self, loc: Loc, *, want_key: bool) -> Position:
        node = self.tree
        pos = Position(self.file, 1, 1)
        for depth, part in enumerate(loc):
            last = depth == len(loc) - 1
            lc = getattr(node, "lc", None)
            if lc is None:
                break
            try:
                if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                    line, col = lc.item(part)
                    node = node[part]
                elif isinstance(node, dict) and _has_key(node, part):
                    child = node[part]
                    if (want_key and last) or isinstance(child, dict | list):
                        line, col = lc.key(part)
                    else:
                        line, col = lc.value(part)
                    node = child
                else:
                    break
            except (KeyError, IndexError, TypeError, AttributeError):
                break
            pos = Position(self.file, line + 1, col + 1)
        return pos


class SpotLocator:
    """Positions from the spots ``yaml_fast`` records: the same answers as ``YamlLocator`` gives
    for the round-trip tree of the same file (0-based there too). An empty value's place is
    asked of ``exact`` (a ``YamlLocator`` made when first needed), as only ruamel knows it."""

    def __init__(self, file: str, spot: Any, exact: Callable[[], Locator]) -> None:
        self.file = file
        self.spot = spot
        self.exact = exact

    def value(self, loc: Loc) -> Position:
        return self._walk(loc, want_key=False) or self.exact().value(loc)

    def key(self, loc: Loc) -> Position:
        return self._walk(loc, want_key=True) or self.exact().key(loc)

    def _walk(self, loc: Loc, *, want_key: bool) -> Position | None:
        spot = self.spot
        pos = Position(self.file, 1, 1)
        for depth, part in enumerate(loc):
            children = spot.children
            if isinstance(children, list) and isinstance(part, int) and 0 <= part < len(children):
                spot = children[part]
                line, col = spot.line, spot.column
            elif isinstance(children, dict) and _has_key(children, part):
                key_line, key_col, spot = children[part]
                if (want_key and depth == len(loc) - 1) or spot.children is not None:
                    line, col = key_line, key_col
                else:
                    line, col = spot.line, spot.column
            else:
                break
            if line < 0:
                return None
            pos = Position(self.file, line + 1, col + 1)
        return pos


def _has_key(node: dict[Any, Any], part: str | int) -> bool:
    try:
        return part in node
    except TypeError:
        return False


class MapLocator:
    """Positions recorded while parsing a format without a tree (the INI loader)."""

    def __init__(
        self,
        default: Position,
        values: Mapping[tuple[str | int, ...], Position],
        keys: Mapping[tuple[str | int, ...], Position] | None = None,
    ) -> None:
        self.default = default
        self.values = dict(values)
        self.keys = dict(keys or {})

    def value(self, loc: Loc) -> Position:
        path = tuple(loc)
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.default

    def key(self, loc: Loc) -> Position:
        path = tuple(loc)
        if path in self.keys:
            return self.keys[path]
        return self.value(path)
