"""A playbook's host patterns against an inventory, before anything connects.

Some groups depend on the cluster's state (``absent``, ``members``, ``primary``,
``selected``), so which nodes a stage will run on is only known after the facts are read. But
a pattern can be wrong whatever the state: a node name the inventory lacks, or a named node
intersected with a group it can never be in (``w-1:&control-planes``). Those are refused here,
with the playbook's file and line. A group that is merely empty in this inventory (``workers``
in a cluster of control planes only) is not a mistake and passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from k8slk_ops.base import hosts
from k8slk_ops.inventory.model import Inventory


class StageHosts(Protocol):
    """What the check reads of a stage (``playbook.Stage``): its host patterns and where it is
    written. A protocol, not the playbook's own type: the inventory package imports nothing of
    the engine, and the playbook module imports the inventory's loaders."""

    @property
    def hosts(self) -> tuple[str, ...]: ...

    @property
    def where(self) -> str: ...


class PlaybookHosts(Protocol):
    """What the check reads of a playbook (``playbook.Playbook``)."""

    @property
    def stages(self) -> Sequence[StageHosts]: ...

    @property
    def always(self) -> Sequence[StageHosts]: ...


def check_hosts(playbook: PlaybookHosts, inventory: Inventory) -> list[str]:
    """Every stage pattern naming an unknown node or able to match no node, with its place."""
    names = set(inventory.names)
    problems: list[str] = []
    for stage in (*playbook.stages, *playbook.always):
        for pattern in stage.hosts:
            unknown = [n for n in hosts.names_in(pattern) if n not in names]
            if unknown:
                problems.extend(
                    f"{stage.where}: no host group or node named {n!r} in the inventory"
                    for n in unknown
                )
            elif _names_a_node_positively(pattern) and not _possible(pattern, inventory):
                problems.append(
                    f"{stage.where}: {pattern!r} matches no node of the inventory, whatever "
                    "the cluster's state"
                )
    return problems


def _names_a_node_positively(pattern: str) -> bool:
    """Whether a node name is selected or intersected (not only excluded) in the pattern."""
    terms = pattern.split(":")
    return any(t[1:] not in hosts.GROUPS for t in terms if t[:1] == "&") or (
        terms[0] not in hosts.GROUPS
    )


def _possible(pattern: str, inventory: Inventory) -> set[str]:
    """The nodes the pattern could select in some cluster state (an upper bound)."""
    terms = pattern.split(":")
    chosen = _bound(terms[0], inventory, upper=True)
    for term in terms[1:]:
        if term.startswith("&"):
            chosen &= _bound(term[1:], inventory, upper=True)
        elif term.startswith("!"):
            chosen -= _bound(term[1:], inventory, upper=False)
        else:
            chosen |= _bound(term, inventory, upper=True)
    return chosen


def _bound(word: str, inventory: Inventory, *, upper: bool) -> set[str]:
    """The nodes a term may select (``upper``) or surely selects, whatever the facts say."""
    every = {n.name for n in inventory.nodes}
    control_planes = {n.name for n in inventory.control_planes}
    exact = {
        "all": every,
        "control-planes": control_planes,
        "workers": every - control_planes,
    }
    if word in exact:
        return set(exact[word])
    if word in hosts.GROUPS:  # depends on the facts or the command line
        if not upper:
            return set()
        return control_planes if "primary" in word or "control-planes" in word else every
    return {word} & every
