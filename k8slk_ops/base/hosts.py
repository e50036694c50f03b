"""Host patterns: which nodes a stage runs on, in the Ansible style operators already know.

A pattern is terms joined by ``:``; the first selects, ``&term`` intersects, ``!term``
excludes: ``workers:&selected:!absent``. A stage's ``hosts`` may be one pattern or a list (their
union). Terms are the groups below or node names. Pure: resolving needs only the inventory's
names and roles, the primary's name, the cluster's members and the operator's selection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

GROUPS = {
    "all": "every node of the inventory",
    "control-planes": "nodes with role control-plane",
    "workers": "nodes with role worker",
    "primary": "the initialised control plane (else the first control plane)",
    "secondary-control-planes": "control planes other than the primary",
    "selected": "the nodes named on the command line (all when none is named)",
    "absent": "nodes that are not in the cluster yet",
    "members": "nodes that are in the cluster",
    "leaving": "nodes the run takes out of the cluster (apply: those marked remove: true)",
}
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


@dataclass(frozen=True)
class Universe:
    """What resolving a pattern may look at."""

    nodes: Sequence[tuple[str, str]]  # (name, role) in inventory order
    primary: str
    members: frozenset[str]
    selected: frozenset[str]
    leaving: frozenset[str] = frozenset()


def check(pattern: str) -> str | None:
    """Why ``pattern`` is malformed, or None. Node names are checked later, per inventory."""
    terms = pattern.split(":")
    for i, term in enumerate(terms):
        word = term[1:] if term[:1] in "&!" else term
        if i == 0 and term[:1] in "&!":
            return f"a pattern starts with a group or node, not {term!r}"
        if word not in GROUPS and not _NAME.fullmatch(word):
            return f"{word!r} is neither a host group ({', '.join(GROUPS)}) nor a node name"
    return None


def names_in(pattern: str) -> list[str]:
    """The node names (not groups) a pattern mentions."""
    words = (t[1:] if t[:1] in "&!" else t for t in pattern.split(":"))
    return [w for w in words if w not in GROUPS]


def _term(word: str, u: Universe) -> set[str]:
    out = set()
    for name, role in u.nodes:
        if (
            word == "all"
            or (word == "control-planes" and role == "control-plane")
            or (word == "workers" and role == "worker")
            or (word == "primary" and name == u.primary)
            or (word == "secondary-control-planes" and role == "control-plane" and name != u.primary)
            or (word == "selected" and (not u.selected or name in u.selected))
            or (word == "absent" and name not in u.members)
            or (word == "members" and name in u.members)
            or (word == "leaving" and name in u.leaving)
            or word == name
        ):
            out.add(name)
    return out


def resolve(patterns: Iterable[str], u: Universe) -> list[str]:
    """Node names the patterns select, in inventory order, without duplicates."""
    chosen: set[str] = set()
    for pattern in patterns:
        terms = pattern.split(":")
        current = _term(terms[0], u)
        for term in terms[1:]:
            if term.startswith("&"):
                current &= _term(term[1:], u)
            elif term.startswith("!"):
                current -= _term(term[1:], u)
            else:
                current |= _term(term, u)
        chosen |= current
    return [name for name, _ in u.nodes if name in chosen]
