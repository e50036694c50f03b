"""Three control planes and workers on the fleet: the control planes join one at a time with
the certificate key of a fresh ``upload-certs``, which the simulated kubeadm checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.helpers import bootstrap_fleet

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("fleet-ha")
    run, stats = bootstrap_fleet(directory, 8, control_planes=3)
    yield {"run": run, "stats": stats}


def test_every_node_joins_and_control_planes_are_control_planes(ha: dict[str, Any]) -> None:
    run = ha["run"]
    assert run.code == 0, run.stderr[-3000:]
    assert {n["name"]: n["outcome"] for n in run.report["nodes"]} == {
        **{f"cp-{i}": "ok" for i in (1, 2, 3)},
        **{f"w-{i}": "ok" for i in range(1, 6)},
    }
    assert ha["stats"]["members"] == 8
    assert ha["stats"]["commands"].get("kubeadm init phase") == 1  # one upload-certs per run


def test_only_kubeadms_own_certificate_token_outlives_the_run(ha: dict[str, Any]) -> None:
    # upload-certs makes a 2 h token that keeps the kubeadm-certs secret alive; the run's own
    # init and join tokens are gone.
    assert ha["stats"]["tokens"] == 1
    assert ha["stats"]["audit"] == {"unsafe_skip_ca": 0, "loose_config_mode": 0}
