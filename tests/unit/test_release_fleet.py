"""A worker's connection is closed once nothing later in the run uses it: not kept idle (with
its keepalives) through the other workers' joins, the wait for Ready and the cleanup."""

from __future__ import annotations

from tests.fleet.inprocess import InProcessFleet
from tests.fleet.node import SimNode
from tests.unit.clirun import K8slk


def test_workers_connections_are_closed_after_their_join(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    open_at_cleanup: dict[str, int] = {}

    def at_token_delete(node: SimNode, line: str) -> None:
        if "token delete" in line:  # the always-stage on the primary, the run's last command
            for name in ("cp-1", "w-1", "w-2"):
                open_at_cleanup[name] = len(fleet.fleet.connections[name])

    fleet.call(lambda: fleet.fleet.session_hooks.append(at_token_delete))
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert run.outcomes == {"cp-1": "ok", "w-1": "ok", "w-2": "ok"}
    assert open_at_cleanup == {"cp-1": 1, "w-1": 0, "w-2": 0}


def test_a_removed_workers_connection_is_closed_before_its_node_object_is_deleted(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    open_at_delete: dict[str, int] = {}

    def at_delete() -> None:
        open_at_delete["w-2"] = len(fleet.fleet.connections["w-2"])

    # Reset is the last step on w-2 itself; the drain before it and the delete after it go
    # through the primary.
    fleet.on_command("cp-1", lambda line: "delete node w-2" in line, at_delete)
    run = k8slk("remove-node", fleet.inventory, "w-2", "--json")
    assert run.code == 0, run.why()
    assert open_at_delete == {"w-2": 0}


def test_steps_that_act_through_the_primary_never_use_the_nodes_connection() -> None:
    from k8slk_ops.steps import STEPS

    for step in STEPS.values():
        assert step.needs_node or not step.uses_connection, step.name
