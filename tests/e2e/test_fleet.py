"""k8slk-ops against the fleet of simulated nodes (tests/fleet): 20 nodes, one process.

Marked ``lab`` with the other end-to-end tests; it needs no root and no containerd, only the
loopback range 127.1.0.0/16. The fleet's own counters (written when it stops) say whether the
tool ever asked a node to skip CA verification or left a config readable by others.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli, fleet_up
from tests.fleet import layout, process

pytestmark = pytest.mark.lab

NODES = 20


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("fleet")
    fleet_up(directory, NODES)
    state: dict[str, Any] = {"dir": directory}
    try:
        inventory = directory / layout.INVENTORY
        state["first"] = cli("bootstrap", str(inventory), "--json",
                             log_file=directory / "run1.log", timeout=300)
        state["second"] = cli("bootstrap", str(inventory), "--json",
                              log_file=directory / "run2.log", timeout=300)
        yield state
    finally:
        process.stop(directory)


@pytest.fixture(scope="module")
def stats(fleet: dict[str, Any]) -> dict[str, Any]:
    """The fleet's counters, read once it stopped."""
    data = process.stop(fleet["dir"])
    assert data, "the fleet wrote no stats.json on its way out"
    return data


def outcomes(run: Any) -> dict[str, str]:
    return {n["name"]: n["outcome"] for n in run.report["nodes"]}


def test_bootstrap_of_the_fleet_is_ok_on_every_node(fleet: dict[str, Any]) -> None:
    run = fleet["first"]
    assert run.code == 0, run.stderr[-3000:]
    assert run.report["exitCode"] == 0
    got = outcomes(run)
    assert len(got) == NODES
    assert set(got.values()) == {"ok"}, got


def test_a_second_bootstrap_changes_nothing(fleet: dict[str, Any]) -> None:
    run = fleet["second"]
    assert run.code == 0, run.stderr[-3000:]
    assert set(outcomes(run).values()) == {"unchanged"}
    assert run.report["changed"] is False


def test_the_kubeconfig_points_at_the_fleets_endpoint(fleet: dict[str, Any]) -> None:
    path = Path(fleet["dir"]) / "fleet.kubeconfig"
    config = layout.load(fleet["dir"])
    assert f"server: https://{config.endpoint}" in path.read_text()
    assert path.stat().st_mode & 0o077 == 0


def test_every_node_registered_and_no_token_is_left(stats: dict[str, Any]) -> None:
    assert stats["members"] == NODES
    assert stats["tokens"] == 0  # the run deleted its init and join tokens


def test_the_tool_kept_the_node_contract(stats: dict[str, Any]) -> None:
    assert stats["audit"] == {"unsafe_skip_ca": 0, "loose_config_mode": 0}
    # One connection per node per run: the second run reconnects once to each node.
    assert stats["authenticated"] == 2 * NODES
    # Each run reads the facts of the control plane it found the cluster through once more,
    # once it holds the cluster lock (operation.Operation._read_under_lock).
    assert stats["commands"]["facts"] == 2 * NODES + 2
