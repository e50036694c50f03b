"""YAML with line numbers: turn a validation error's location into ``file:line: field: message``.

ruamel.yaml's round-trip loader remembers where every key and item stood; pydantic reports
errors by location (``stages.2.steps.0``). This module joins the two so that every error about
a user's file points at the line to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from k8slk_ops.errors import UsageError

Loc = Sequence[str | int]


@dataclass(frozen=True)
class Located:
    """A loaded document: plain data plus the round-trip tree that knows the lines."""

    path: Path
    value: Any  # plain dicts/lists/scalars
    tree: Any  # ruamel CommentedMap/Seq (with .lc)

    def line_of(self, loc: Loc) -> int:
        """1-based line of the deepest node of ``loc`` that exists in the file (0 if none)."""
        node = self.tree
        line = 0
        for part in loc:
            lc = getattr(node, "lc", None)
            try:
                if isinstance(part, int) and isinstance(node, list):
                    if lc is not None:
                        line = lc.item(part)[0] + 1
                    node = node[part]
                elif isinstance(node, dict) and part in node:
                    if lc is not None:
                        line = lc.key(part)[0] + 1
                    node = node[part]
                else:
                    break
            except (KeyError, IndexError, TypeError, AttributeError):
                break
        return line

    def where(self, loc: Loc, message: str) -> str:
        field = _field_path(loc)
        line = self.line_of(loc)
        prefix = f"{self.path}:{line}" if line else str(self.path)
        return f"{prefix}: {field}: {message}" if field else f"{prefix}: {message}"

    def format_validation_error(self, exc: ValidationError, prefix: Loc = ()) -> str:
        lines = []
        for err in exc.errors():
            loc = (*prefix, *err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            elif err["type"] == "missing":
                msg = "required field is missing"
            lines.append(self.where(loc, msg))
        return "\n".join(lines)


def load_yaml_with_lines(path: Path) -> Located:
    """Load one YAML document; missing files and syntax errors become UsageError with a line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}{line}: YAML error: {exc.problem or exc}") from None
    except Exception as exc:  # ruamel raises a few unmarked kinds (duplicate keys, ...)
        raise UsageError(f"{path}: YAML error: {exc}") from None
    if tree is None:
        raise UsageError(f"{path}: the file is empty")
    if not isinstance(tree, dict):
        raise UsageError(f"{path}:1: the top level must be a mapping")
    return Located(path, _plain(tree), tree)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _field_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
