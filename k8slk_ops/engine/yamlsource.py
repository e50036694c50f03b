"""YAML files other than inventories (playbooks), with the same line-aware loading.

The inventory package owns YAML parsing with positions (syntax errors, duplicate keys, a
locator from field paths to ``file:line:col``); this module reuses it and adds the formatting of
pydantic errors for other documents, so every error about a user's file points at its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from k8slk_ops.base.errors import UsageError
from k8slk_ops.inventory.errors import InventoryError
from k8slk_ops.inventory.located import Locator
from k8slk_ops.inventory.yaml_loader import load_yaml_document

Loc = Sequence[str | int]


@dataclass(frozen=True)
class Located:
    """A loaded document: plain data plus the locator that knows the lines."""

    path: Path
    value: Any
    locator: Locator

    def line_of(self, loc: Loc) -> int:
        return self.locator.value(tuple(loc)).line

    def where(self, loc: Loc, message: str, *, key: bool = False) -> str:
        pos = self.locator.key(tuple(loc)) if key else self.locator.value(tuple(loc))
        field = _field_path(loc)
        prefix = f"{self.path}:{pos.line}:{pos.column}"
        return f"{prefix}: {field}: {message}" if field else f"{prefix}: {message}"

    def format_validation_error(self, exc: ValidationError, prefix: Loc = ()) -> str:
        lines = []
        for err in exc.errors():
            loc = (*prefix, *err["loc"])
            msg = err["msg"]
            unknown = err["type"] == "extra_forbidden"
            if unknown:
                msg = "unknown field"
            elif err["type"] == "missing":
                msg = "required field is missing"
            lines.append(self.where(loc, msg, key=unknown))
        return "\n".join(lines)


def load_yaml_with_lines(path: Path) -> Located:
    """Load one YAML mapping; unreadable files and syntax errors become UsageError with a line."""
    try:
        value, locator = load_yaml_document(path)
    except InventoryError as exc:
        raise UsageError(str(exc)) from None
    return Located(path, value, locator)


def _field_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
