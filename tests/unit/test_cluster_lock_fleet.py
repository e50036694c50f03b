"""One cluster lock whatever the command and whichever control plane a run works through.

Two runs from two machines (two processes with their own local lock) against one in-process
fleet: the first holds its drain until the second has tried, so both are truly under way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory

LEASE = "kube-system/k8slk-ops-lock"
LOCK_FILE = "/run/k8slk-ops.lock"
ROOT = Path(__file__).resolve().parents[2]


class OtherMachine:
    """k8slk-ops run as its own process, with its own cache (so its own local lock)."""

    def __init__(self, tmp: Path, *args: str | Path) -> None:
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "other-machine"), COLUMNS="200")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "k8slk_ops", *map(str, args)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def wait(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, out, err


def drain_arrives(fleet: InProcessFleet, via: str) -> threading.Event:
    seen = threading.Event()
    fleet.on_command(via, lambda line: "drain" in line, seen.set)
    return seen


@pytest.fixture
def ha(fleet_factory: FleetFactory, k8slk: K8slk) -> InProcessFleet:
    fleet = fleet_factory(4, 3)  # cp-1, cp-2, cp-3, w-1
    run = k8slk("bootstrap", fleet.inventory)
    assert run.code == 0, run.why()
    return fleet


def cp1_last(fleet: InProcessFleet, tmp: Path) -> Path:
    """The same cluster as another operator lists it: cp-1 after the others."""
    lines = fleet.inventory.read_text().splitlines()
    cp1 = [line for line in lines if line.startswith("  - {name: cp-1,")]
    rest = [line for line in lines if line not in cp1]
    last = max(i for i, line in enumerate(rest) if line.startswith("  - {name: "))
    path = fleet.inventory.parent / "cp-1-last.yml"
    path.write_text("\n".join(rest[: last + 1] + cp1 + rest[last + 1 :]) + "\n")
    return path


def test_two_remove_nodes_of_two_control_planes_one_proceeds(
    ha: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    # Removing cp-2 works through cp-1; removing cp-3 with cp-1 listed last works through cp-2:
    # the lock must not depend on either.
    ha.hold_drain("cp-2")
    seen = drain_arrives(ha, "cp-1")
    first = OtherMachine(tmp_path, "remove-node", ha.inventory, "cp-2", "--yes", "--json")
    try:
        assert seen.wait(60), first.proc.stderr.read() if first.proc.poll() is not None else ""
        assert LEASE in ha.leases()
        second = k8slk("remove-node", cp1_last(ha, tmp_path), "cp-3", "--yes", "--json")
        assert second.code == 3, second.why()
        assert "Lease kube-system/k8slk-ops-lock" in second.stderr
        assert f"pid {first.proc.pid}" in second.stderr and "remove-node" in second.stderr
    finally:
        ha.release_drain("cp-2")
        code, _out, err = first.wait()
    assert code == 0, err
    assert set(ha.members()) == {"cp-1", "cp-3", "w-1"}  # only cp-2 went
    assert ha.leases() == {}  # released at the end


def test_add_node_waits_for_a_remove_node_under_way(
    ha: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    ha.hold_drain("w-1")
    seen = drain_arrives(ha, "cp-1")
    first = OtherMachine(tmp_path, "remove-node", ha.inventory, "w-1", "--json")
    try:
        assert seen.wait(60)
        second = k8slk("add-node", ha.inventory, "--json")
        assert second.code == 3, second.why()
        assert f"pid {first.proc.pid}" in second.stderr
    finally:
        ha.release_drain("w-1")
        code, _, err = first.wait()
    assert code == 0, err
    assert ha.leases() == {}


def test_a_lost_lease_stops_the_run_before_its_next_changing_stage(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    ha.hold_drain("w-1")

    def steal() -> None:
        lease = ha.fleet.cluster.leases[("kube-system", "k8slk-ops-lock")]
        lease["spec"]["holderIdentity"] = "someone else"
        ha.fleet.cluster.drain_gates.pop("w-1").set()

    ha.on_command("cp-1", lambda line: "drain" in line, steal)
    run = k8slk("remove-node", ha.inventory, "w-1", "--json")
    assert run.code == 3, run.why()
    assert "the cluster lock was lost" in run.stderr
    assert run.outcomes["w-1"] != "ok"
    assert "w-1" in ha.members()  # reset and delete never ran


def test_a_live_lease_from_this_host_is_broken_only_when_told_twice(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    holder = {"run_id": "20260101T000000-abcdef", "user": "ops", "host": os.uname().nodename,
              "pid": os.getpid(), "command": "remove-node", "since": time.time()}
    ha.call(lambda: ha.fleet.cluster.leases.__setitem__(("kube-system", "k8slk-ops-lock"), {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "k8slk-ops-lock", "namespace": "kube-system",
                     "resourceVersion": "7"},
        "spec": {"holderIdentity": json.dumps(holder, sort_keys=True)},
    }))
    once = k8slk("add-node", ha.inventory, "--break-lock", "--json")
    assert once.code == 3, once.why()
    assert "still running on this host" in once.stderr and "twice" in once.stderr
    assert LEASE in ha.leases()
    twice = k8slk("add-node", ha.inventory, "--break-lock", "--break-lock", "--json")
    assert twice.code == 0, twice.why()
    assert "breaking the cluster lock (Lease kube-system/k8slk-ops-lock), held by remove-node" \
        in twice.stderr
    assert f"pid {os.getpid()}" in twice.stderr and "20260101T000000-abcdef" in twice.stderr
    assert ha.leases() == {}


def test_a_bootstrap_before_the_cluster_exists_locks_every_control_plane(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = fleet_factory(3, 2)  # cp-1, cp-2, w-1
    holder = {"run_id": "20260101T000000-abcdef", "user": "ops", "host": "elsewhere",
              "pid": 4242, "command": "bootstrap", "since": 0.0}
    fleet.write_file("cp-2", LOCK_FILE, json.dumps(holder).encode())  # not the first one
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 3, run.why()
    assert "cp-2" in run.stderr and "20260101T000000-abcdef" in run.stderr
    assert fleet.file("cp-1", LOCK_FILE) is None  # what it took, it gave back
    assert fleet.members() == {}


def test_removing_the_last_control_plane_takes_the_lease_with_it(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    run = k8slk("remove-node", fleet.inventory, "cp-1", "--force", "--force", "--yes", "--json")
    assert run.code == 0, run.why()
    assert run.outcomes["cp-1"] == "ok"
    assert "lock was lost" not in run.stderr
