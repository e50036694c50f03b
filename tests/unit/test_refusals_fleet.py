"""``remove-node`` of a control plane asks first, in-process against the fleet: without a
terminal and without ``--yes`` it is refused (exit 2, no node contacted, the refusal in
``--metrics-file``); with ``--yes`` it goes on; a worker's removal asks nothing."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory


def run_samples(path: Path) -> dict[str, tuple[dict[str, str], float]]:
    """The run's own samples (one each) of a metrics file, parsed by prometheus_client."""
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            if s.name != "k8slk_ops_run_nodes":
                out[s.name] = (dict(s.labels), s.value)
    return out


def test_removing_a_control_plane_needs_yes_without_a_terminal(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet: InProcessFleet = fleet_factory(4, 3)
    assert k8slk("bootstrap", fleet.inventory).code == 0
    accepted = fleet.stats()["accepted"]
    prom = tmp_path / "rm.prom"

    refused = k8slk("remove-node", fleet.inventory, "cp-3", "--metrics-file", prom)
    assert refused.code == 2, refused.why()
    assert ("error: remove-node needs --yes when there is no terminal to confirm on; nothing "
            "was touched") in refused.stderr
    assert fleet.stats()["accepted"] == accepted  # not one connection
    got = run_samples(prom)
    run = {"command": "remove-node", "cluster": got["k8slk_ops_run_exit_code"][0]["cluster"]}
    assert run["cluster"] != ""
    assert got["k8slk_ops_run_exit_code"] == (run, 2.0)
    assert got["k8slk_ops_run_result"] == ({**run, "result": "usage"}, 1.0)
    assert set(fleet.members()) == {"cp-1", "cp-2", "cp-3", "w-1"}
    assert fleet.etcd_members() == {"cp-1", "cp-2", "cp-3"}

    # Named beside a worker, the control plane still makes the whole run ask.
    both = k8slk("remove-node", fleet.inventory, "w-1", "cp-3")
    assert both.code == 2 and "--yes" in both.stderr
    assert fleet.stats()["accepted"] == accepted

    dry = k8slk("remove-node", fleet.inventory, "cp-3", "--dry-run", "--json")
    assert dry.code == 0, dry.why()  # a dry run changes nothing: nothing to confirm
    assert fleet.count("kubectl drain") == 0

    done = k8slk("remove-node", fleet.inventory, "cp-3", "--yes", "--json",
                 "--metrics-file", prom)
    assert done.code == 0, done.why()
    assert done.outcomes["cp-3"] == "ok"
    assert set(fleet.members()) == {"cp-1", "cp-2", "w-1"}
    assert fleet.etcd_members() == {"cp-1", "cp-2"}
    assert run_samples(prom)["k8slk_ops_run_exit_code"][1] == 0


def test_removing_a_worker_asks_nothing(fleet: InProcessFleet, k8slk: K8slk) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    run = k8slk("remove-node", fleet.inventory, "w-2", "--json")
    assert run.code == 0, run.why()
    assert run.outcomes["w-2"] == "ok"
    assert set(fleet.members()) == {"cp-1", "w-1"}
