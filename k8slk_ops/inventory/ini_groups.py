"""The group tree of an Ansible INI inventory: ``[group:children]``, read as Ansible reads it.

Real inventories reach their hosts through groups of groups (``[k8s:children]``, a
``[workers:children]`` listing ``[east]`` and ``[west]``). A host belongs to the group whose
section lists it and to every ancestor of that group, and ``all`` is the ancestor of every
group. Variables are merged in Ansible's order, which needs each group's depth (``all`` is 0, a
group without parents 1, a child one more than its deepest parent).

Ansible refuses a ``[group:children]`` that closes a loop, a child group that no section
defines and ``[group:vars]`` of an undefined group; so does this tree, with the line to fix.
Every walk is iterative and the nesting is bounded (``MAX_NESTING``), so a hostile file costs
time in proportion to its size, not its depth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from k8slk_ops.inventory.errors import InventoryIssue
from k8slk_ops.inventory.located import Position

ALL = "all"
UNGROUPED = "ungrouped"
MAX_NESTING = 32  # levels of children under all: as deep as a YAML inventory may nest
SHOWN_IN_LOOP = 10  # groups named in the message about a loop


@dataclass(frozen=True)
class ChildLine:
    """One line of a ``[parent:children]`` section: the child group and where it is named."""

    name: str
    at: Position


def _issue(at: Position, message: str) -> InventoryIssue:
    return InventoryIssue(at.file, at.line, at.column, "", message)


class GroupTree:
    """Groups, their children and depths once the loops, undefined groups and too deep nesting
    are refused (``issues``); what is left is a tree (a DAG) Ansible would accept."""

    def __init__(
        self,
        defined: Sequence[str],
        children: Mapping[str, Sequence[ChildLine]],
        direct_hosts: Mapping[str, Sequence[str]],
    ) -> None:
        self.issues: list[InventoryIssue] = []
        self.direct_hosts = direct_hosts
        known = {ALL, UNGROUPED, *defined}
        lines: dict[str, list[ChildLine]] = {}
        for parent, kids in children.items():
            for kid in kids:
                if kid.name == ALL:
                    self.issues.append(
                        _issue(
                            kid.at,
                            f"[{parent}:children] lists all, the group of every host; "
                            "remove the line (every group is already in all)",
                        )
                    )
                elif kid.name not in known:
                    self.issues.append(
                        _issue(
                            kid.at,
                            f"[{parent}:children] includes undefined group {kid.name!r} "
                            f"(Ansible refuses it too): add a [{kid.name}] section with its "
                            "hosts, or remove the line",
                        )
                    )
                elif parent != ALL:
                    lines.setdefault(parent, []).append(kid)
        order = list(dict.fromkeys([*defined, *lines]))
        self.kids = self._without_loops(order, lines)
        self.parents: dict[str, list[str]] = {}
        for parent, kids in self.kids.items():
            for kid in kids:
                self.parents.setdefault(kid.name, []).append(parent)
        self.groups = [g for g in dict.fromkeys([ALL, UNGROUPED, *order]) if g in known]
        self.depth = self._depths()
        self._ancestors: dict[str, frozenset[str]] = {}

    def _without_loops(
        self, order: list[str], lines: dict[str, list[ChildLine]]
    ) -> dict[str, list[ChildLine]]:
        """The children lines minus each one that closes a loop, which is reported with the
        loop it closes (a depth-first walk in file order: O(groups + lines))."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        kept: dict[str, list[ChildLine]] = {}
        kept_names: dict[str, set[str]] = {}
        for root in order:
            if root in state:
                continue
            state[root] = 1
            path: list[tuple[str, ChildLine | None]] = [(root, None)]
            walks = [iter(lines.get(root, ()))]
            while walks:
                group = path[-1][0]
                kid = next(walks[-1], None)
                if kid is None:
                    state[group] = 2
                    walks.pop()
                    path.pop()
                    continue
                seen = state.get(kid.name)
                if seen == 1:
                    self.issues.append(self._loop(group, kid, path))
                    continue
                if kid.name not in kept_names.setdefault(group, set()):
                    kept_names[group].add(kid.name)
                    kept.setdefault(group, []).append(kid)
                if seen is None:
                    state[kid.name] = 1
                    path.append((kid.name, kid))
                    walks.append(iter(lines.get(kid.name, ())))
        return kept

    @staticmethod
    def _loop(
        group: str, kid: ChildLine, path: list[tuple[str, ChildLine | None]]
    ) -> InventoryIssue:
        """The loop ``kid`` closes, reported at its last line in the file: where, reading the
        file from the top as Ansible does, the loop is made."""
        names = [name for name, _ in path]
        start = names.index(kid.name)
        edges = [(names[i - 1], via) for i, (_, via) in enumerate(path) if i > start and via]
        edges.append((group, kid))
        last = max(range(len(edges)), key=lambda i: (edges[i][1].at.file, edges[i][1].at.line))
        edges = edges[last:] + edges[:last]  # the loop read from the line reported
        parent, closing = edges[0]
        loop = [closing.name, *(line.name for _, line in edges[1:]), closing.name]
        others = [f"line {line.at.line}" for _, line in edges[1:]]
        if len(loop) > SHOWN_IN_LOOP:  # a long loop is fixed at one line: show its ends
            loop = [*loop[: SHOWN_IN_LOOP - 2], "...", loop[-2], loop[-1]]
            others = [*others[: SHOWN_IN_LOOP - 2], f"... {len(others)} lines in all"]
        where = f" (with {', '.join(others)})" if others else ""
        return _issue(
            closing.at,
            f"[{parent}:children] lists {closing.name}, which contains {parent}: "
            f"{' -> '.join(loop)}{where}; a group cannot contain itself (Ansible refuses it "
            "too): remove one of these lines",
        )

    def _depths(self) -> dict[str, int]:
        """Each group's depth, computed parents first (Kahn's order), refused past
        ``MAX_NESTING`` at the children line that goes too deep."""
        depth = {ALL: 0}
        waiting = {g: len(self.parents.get(g, ())) for g in self.groups if g != ALL}
        ready = [g for g, n in waiting.items() if n == 0]
        for group in ready:
            depth[group] = 1
        while ready:
            group = ready.pop()
            for kid in self.kids.get(group, ()):
                level = depth[group] + 1
                if level > MAX_NESTING >= depth[group]:  # where it first goes too deep
                    self.issues.append(
                        _issue(
                            kid.at,
                            f"[{group}:children] nests {kid.name} {level} levels deep; at most "
                            f"{MAX_NESTING} levels of children are read: flatten the groups",
                        )
                    )
                depth[kid.name] = max(depth.get(kid.name, 0), level)
                waiting[kid.name] -= 1
                if waiting[kid.name] == 0:
                    ready.append(kid.name)
        return depth

    def ancestors(self, group: str) -> frozenset[str]:
        """The group, every group that contains it, and ``all``."""
        found = self._ancestors.get(group)
        if found is not None:
            return found
        todo = [group]
        while todo:  # parents first, so each group's set is built from its parents' sets
            current = todo[-1]
            missing = [p for p in self.parents.get(current, ()) if p not in self._ancestors]
            if missing:
                todo.extend(missing)
                continue
            todo.pop()
            if current in self._ancestors:
                continue
            merged = {current, ALL}
            for parent in self.parents.get(current, ()):
                merged |= self._ancestors[parent]
            self._ancestors[current] = frozenset(merged)
        return self._ancestors[group]

    def hosts(self, group: str) -> list[str]:
        """The group's hosts as Ansible lists them: its own first, then its children's, level
        by level, children in the order their lines are written; each host once."""
        out: dict[str, None] = {}
        seen = {group}
        level = [group]
        while level:
            following: list[str] = []
            for current in level:
                out.update(dict.fromkeys(self.direct_hosts.get(current, ())))
                for kid in self.kids.get(current, ()):
                    if kid.name not in seen:
                        seen.add(kid.name)
                        following.append(kid.name)
            level = following
        return list(out)

    def sort_key(self, group: str, priority: int) -> tuple[int, int, str]:
        """Ansible's merge order of a host's groups: shallow before deep, then
        ``ansible_group_priority``, then name; later groups win."""
        return (self.depth.get(group, 1), priority, group)

