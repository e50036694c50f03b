"""The cluster lock under the ways it can be fooled: a run acting on a membership read before
it held the lock, a connection that drops while the Lease is taken, ``--break-lock`` judging a
holder by this machine's clock, and a holder record that is not one.

Runs against the in-process fleet; a second machine is a process of its own (its own local
lock), as in test_cluster_lock_fleet.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from k8slk_ops.cluster import lock
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory
from tests.unit.test_cluster_lock_fleet import LEASE, LOCK_FILE, OtherMachine

KEY = ("kube-system", "k8slk-ops-lock")


@pytest.fixture
def ha(fleet_factory: FleetFactory, k8slk: K8slk) -> InProcessFleet:
    fleet = fleet_factory(4, 3)  # cp-1, cp-2, cp-3, w-1
    run = k8slk("bootstrap", fleet.inventory)
    assert run.code == 0, run.why()
    return fleet


@pytest.fixture
def cluster(fleet: InProcessFleet, k8slk: K8slk) -> InProcessFleet:
    run = k8slk("bootstrap", fleet.inventory)
    assert run.code == 0, run.why()
    return fleet


@pytest.fixture
def short_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """--break-lock watches a Lease for a fraction of a second instead of a renew interval."""
    monkeypatch.setattr(lock, "BREAK_WATCH_SECONDS", 0.3)
    monkeypatch.setattr(lock, "BREAK_POLL_SECONDS", 0.05)


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _holder(**kw: Any) -> str:
    record: dict[str, Any] = {"run_id": "20260101T000000-abcdef", "user": "ops",
                              "host": "elsewhere", "pid": 4242, "command": "remove-node",
                              "since": time.time() - 30}
    record.update(kw)
    return json.dumps(record, sort_keys=True)


def _plant_lease(fleet: InProcessFleet, identity: str, renewed: float) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": KEY[1], "namespace": KEY[0], "resourceVersion": "7"},
        "spec": {"holderIdentity": identity, "leaseDurationSeconds": 120,
                 "renewTime": _stamp(renewed)},
    }
    fleet.call(lambda: fleet.fleet.cluster.leases.__setitem__(KEY, lease))


def _keep_renewing(fleet: InProcessFleet) -> None:
    """The Lease's holder renews it between any two reads, as a live run does every 20 s;
    its clock is an hour behind this machine's."""
    count = [8]

    def renew() -> None:
        lease = fleet.fleet.cluster.leases.get(KEY)
        if lease is not None and "elsewhere" in lease["spec"]["holderIdentity"]:
            count[0] += 1
            lease["metadata"]["resourceVersion"] = str(count[0])
            lease["spec"]["renewTime"] = _stamp(time.time() - 3600 + count[0])

    fleet.on_command("cp-1", lambda line: "get lease" in line, renew, times=1000)


# -- 1: the membership the guard counts is read under the lock ---------------------------------


def test_a_removal_counts_the_control_planes_left_by_a_run_that_finished_before_it_locked(
    ha: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    # The first run reads the node list (three control planes) and, before it takes the lock,
    # a second run removes cp-3 and releases the lock. The first then holds the lock over a
    # cluster of two control planes, where removing cp-2 would break etcd quorum.
    read = ha.hold_answer("cp-1", lambda line: "get nodes" in line)
    first = OtherMachine(tmp_path, "remove-node", ha.inventory, "cp-2", "--yes", "--json")
    try:
        read.wait_arrived()
        second = k8slk("remove-node", ha.inventory, "cp-3", "--yes", "--json")
        assert second.code == 0, second.why()
        assert set(ha.members()) == {"cp-1", "cp-2", "w-1"}
        assert ha.leases() == {}
    finally:
        read.release()
        code, _out, err = first.wait()
    assert code != 0, err
    assert "removing 1 of 2 control planes at once would break etcd quorum" in err, err
    assert set(ha.members()) == {"cp-1", "cp-2", "w-1"}  # cp-2 stayed
    assert {"cp-1", "cp-2"} <= ha.etcd_members()
    assert ha.leases() == {}


# -- 2: a connection dropped before the run starts is "could not start" ------------------------


@pytest.mark.parametrize("dropped", ["kubectl create", "get nodes"])
def test_a_connection_dropped_before_the_run_starts_exits_3_naming_the_node(
    cluster: InProcessFleet, k8slk: K8slk, dropped: str
) -> None:
    node = cluster._node("cp-1")
    cluster.on_command("cp-1", lambda line: dropped in line,
                       lambda: setattr(node, "unfinished_sessions", 1))
    run = k8slk("add-node", cluster.inventory, "--json")
    assert run.code == 3, run.why()
    assert "connection to cp-1" in run.stderr and " broke during " in run.stderr, run.stderr
    assert "run again" in run.stderr and "Traceback" not in run.stderr + run.stdout
    assert run.report["exitCode"] == 3
    assert cluster.leases() == {}  # nothing left behind


# -- 3: --break-lock judges a Lease by its renewals, not by this machine's clock ---------------


def test_a_lease_still_being_renewed_is_broken_only_when_told_twice(
    cluster: InProcessFleet, k8slk: K8slk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "BREAK_POLL_SECONDS", 0.05)
    _plant_lease(cluster, _holder(), renewed=time.time() - 3600)  # an hour "old" here
    _keep_renewing(cluster)
    once = k8slk("add-node", cluster.inventory, "--break-lock", "--json")
    assert once.code == 3, once.why()
    assert "renewed it while watched" in once.stderr and "twice" in once.stderr
    assert "elsewhere" in cluster.leases()[LEASE]["spec"]["holderIdentity"]  # left alone

    twice = k8slk("add-node", cluster.inventory, "--break-lock", "--break-lock", "--json")
    assert twice.code == 0, twice.why()
    assert "breaking the cluster lock (Lease kube-system/k8slk-ops-lock), held by remove-node " \
        "on elsewhere pid 4242" in twice.stderr
    assert cluster.leases() == {}  # released at the end


def test_a_lease_renewed_seconds_ago_but_no_longer_is_broken_with_one_flag(
    cluster: InProcessFleet, k8slk: K8slk, short_watch: None
) -> None:
    _plant_lease(cluster, _holder(), renewed=time.time() - 2)
    run = k8slk("add-node", cluster.inventory, "--break-lock", "--json")
    assert run.code == 0, run.why()
    assert "held by remove-node on elsewhere" in run.stderr and "not renewed" in run.stderr
    assert cluster.leases() == {}


def test_a_held_lease_is_described_by_the_holders_own_clock_never_called_expired(
    cluster: InProcessFleet, k8slk: K8slk
) -> None:
    renewed = time.time() - 3600  # a live holder whose clock runs an hour behind
    _plant_lease(cluster, _holder(), renewed=renewed)
    run = k8slk("add-node", cluster.inventory, "--json")
    assert run.code == 3, run.why()
    assert f"last renewed at {_stamp(renewed)} by its own clock" in run.stderr
    assert "expired" not in run.stderr and "--break-lock" in run.stderr


# -- 4: a broken holder record is named and breakable ------------------------------------------


def test_a_lease_whose_holder_record_is_broken_is_named_then_broken(
    cluster: InProcessFleet, k8slk: K8slk, short_watch: None
) -> None:
    broken = _holder(since="x")
    _plant_lease(cluster, broken, renewed=time.time())
    run = k8slk("add-node", cluster.inventory, "--json")
    assert run.code == 3, run.why()
    assert "an unreadable holder record" in run.stderr and "since:" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout

    again = k8slk("add-node", cluster.inventory, "--break-lock", "--json")
    assert again.code == 0, again.why()
    assert "breaking the cluster lock (Lease kube-system/k8slk-ops-lock), held by an " \
        "unreadable holder record" in again.stderr
    assert cluster.leases() == {}


def test_a_lock_file_whose_holder_record_is_broken_is_named_then_broken(
    cluster: InProcessFleet, k8slk: K8slk
) -> None:
    cluster.write_file("cp-1", LOCK_FILE, _holder(since="x").encode())
    run = k8slk("add-node", cluster.inventory, "--json")
    assert run.code == 3, run.why()
    assert "an unreadable holder record" in run.stderr and "since:" in run.stderr

    again = k8slk("add-node", cluster.inventory, "--break-lock", "--json")
    assert again.code == 0, again.why()
    assert f"breaking the lock file on cp-1 ({LOCK_FILE}), held by an unreadable holder " \
        "record" in again.stderr
    assert cluster.file("cp-1", LOCK_FILE) is None
