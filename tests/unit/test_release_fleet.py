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
