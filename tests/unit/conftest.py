"""Fixtures of the unit tests: the in-process fleet of simulated nodes, and the CLI run
in-process against it. Neither needs root: the fleet listens on loopback addresses above port
1024, and everything it writes is under the test's temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk

FleetFactory = Callable[..., InProcessFleet]


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[FleetFactory]:
    """``fleet_factory(nodes=3, control_planes=1, **timings)``: a started fleet; every fleet it
    started is stopped when the test ends, passed or failed."""
    started: list[InProcessFleet] = []

    def make(nodes: int = 3, control_planes: int = 1, **kw: Any) -> InProcessFleet:
        fleet = InProcessFleet(tmp_path / f"fleet-{len(started) + 1}", nodes, control_planes, **kw)
        started.append(fleet)
        return fleet.start()

    try:
        yield make
    finally:
        for fleet in started:
            fleet.stop()


@pytest.fixture
def fleet(fleet_factory: FleetFactory) -> InProcessFleet:
    """Three fresh nodes: cp-1, w-1, w-2."""
    return fleet_factory(3, 1)


@pytest.fixture
def k8slk(tmp_path: Path) -> K8slk:
    """Runs k8slk-ops in-process: ``k8slk("bootstrap", inventory, "--json")``."""
    work = tmp_path / "cli"
    work.mkdir()
    return K8slk(work)
