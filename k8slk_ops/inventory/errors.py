"""Inventory problems, each pointing at the file, line and column to fix.

A person fixing an inventory wants every problem at once, not one per run, so loaders collect
``InventoryIssue``s and raise a single ``InventoryError`` holding all of them. Its text is one
line per issue in the ``file:line:column: field: message`` form editors and CI logs link.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from k8slk_ops.base.errors import UsageError

Loc = Sequence[str | int]
MAX_SHOWN = 200  # issues in the message; a file with more is fixed from the top anyway


def field_path(loc: Loc) -> str:
    """``("nodes", 2, "role")`` -> ``nodes[2].role``: how the issue names a field."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True, order=True)
class InventoryIssue:
    """One problem. ``line``/``column`` are 1-based; 0 when the problem has no place."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class InventoryError(UsageError):
    """Every problem found in an inventory; a usage error (exit code 2), nothing was contacted."""

    def __init__(self, issues: Iterable[InventoryIssue], more: bool = False) -> None:
        """``more``: the loader stopped collecting past what is shown, so the count of the
        rest is unknown (a file with thousands of problems is not worth finding them all)."""
        self.issues: tuple[InventoryIssue, ...] = tuple(sorted(set(issues)))
        self.more = more
        shown = [str(i) for i in self.issues[:MAX_SHOWN]]
        if more:
            shown.append(f"... and more problems (not counted past {MAX_SHOWN}): fix these and "
                         "check again")
        elif len(self.issues) > MAX_SHOWN:
            shown.append(f"... and {len(self.issues) - MAX_SHOWN} more problems")
        super().__init__("\n".join(shown))
