"""Host patterns: groups, names, intersection and exclusion."""

from __future__ import annotations

import pytest

from k8slk_ops.base import hosts

U = hosts.Universe(
    nodes=[("cp-1", "control-plane"), ("cp-2", "control-plane"), ("w-1", "worker"),
           ("w-2", "worker"), ("w-3", "worker")],
    primary="cp-1",
    members=frozenset({"cp-1", "w-1"}),
    selected=frozenset(),
)


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["all"], ["cp-1", "cp-2", "w-1", "w-2", "w-3"]),
        (["workers"], ["w-1", "w-2", "w-3"]),
        (["primary"], ["cp-1"]),
        (["secondary-control-planes"], ["cp-2"]),
        (["absent"], ["cp-2", "w-2", "w-3"]),
        (["workers:&absent"], ["w-2", "w-3"]),
        (["all:!primary:!w-3"], ["cp-2", "w-1", "w-2"]),
        (["w-3", "primary"], ["cp-1", "w-3"]),
        (["members:&workers"], ["w-1"]),
        (["selected"], ["cp-1", "cp-2", "w-1", "w-2", "w-3"]),
    ],
)
def test_resolve(patterns: list[str], expected: list[str]) -> None:
    assert hosts.resolve(patterns, U) == expected


def test_selected_limits_to_named_nodes() -> None:
    u = hosts.Universe(U.nodes, U.primary, U.members, frozenset({"w-2"}))
    assert hosts.resolve(["workers:&selected:&absent"], u) == ["w-2"]


@pytest.mark.parametrize("bad", ["&workers", "wörkers", "workers:&Bad_Name", "all:!"])
def test_malformed_patterns_are_explained(bad: str) -> None:
    assert hosts.check(bad)


def test_names_in_lists_node_names_only() -> None:
    assert hosts.names_in("workers:&w-1:!cp-9") == ["w-1", "cp-9"]
