"""Probing the cluster without a network: facts read again mid-run, connections dialled again
with the host-key decision of the moment, membership read in one place."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from k8slk_ops.base.errors import CannotStart
from k8slk_ops.cluster.membership import NODE_LIST_TIMEOUT, members_of
from k8slk_ops.engine.context import ClusterFacts, PlanContext, RunContext, RunOptions
from k8slk_ops.engine.probe import Cluster
from k8slk_ops.inventory import load_inventory
from k8slk_ops.node.facts import parse_facts
from k8slk_ops.output.events import Event
from k8slk_ops.ssh import CommandTimeout, HostKeyMismatch, SSHTarget
from k8slk_ops.ssh.target import CommandResult

INVENTORY = """\
cluster: {name: lab}
nodes:
  - {name: cp-1, address: 127.0.9.11, role: control-plane}
  - {name: w-1, address: 127.0.9.21, role: worker}
  - {name: w-2, address: 127.0.9.22, role: worker}
"""

WAITING = "task kubelet 1 RUNNING\ntask kubeadm 2 RUNNING\nkubeadm_version=v1.31.3\n"
JOINED = "marker=1\ntask kubelet 1 RUNNING\ntask kubeadm 2 STOPPED\nkubeadm_version=v1.31.3\n"
PRIMARY = "marker=1\nadmin_conf=1\ntask kubelet 1 RUNNING\nkubeadm_version=v1.31.3\n"


def nodes_json(*names: str) -> bytes:
    items = [
        {
            "metadata": {"name": n, "labels": {"node-role.kubernetes.io/control-plane": ""}
                         if n.startswith("cp") else {}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.31.3"}},
        }
        for n in names
    ]
    return json.dumps({"items": items}).encode()


class FakeNode:
    """What a LinuxKitNode answers, from a script the test changes as it goes."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name

    async def facts(self) -> Any:
        self.world.reads.append(self.name)
        return parse_facts(self.world.facts[self.name])

    async def kubectl(self, *args: str, timeout: float | None = 60) -> CommandResult:
        self.world.kubectl_calls.append((self.name, args))
        self.world.kubectl_timeouts.append(timeout)
        self.world.asked.setdefault(self.name, asyncio.Event()).set()
        if self.name in self.world.waits_for:  # answers only once the other was asked too
            other = self.world.asked.setdefault(self.world.waits_for[self.name], asyncio.Event())
            await asyncio.wait_for(other.wait(), 5)
        if self.world.api_silent or self.name in self.world.silent:
            raise CommandTimeout(f"kubectl on {self.name} timed out")
        if self.world.api_down:
            return CommandResult(1, b"", b"The connection to the server was refused")
        return CommandResult(0, nodes_json(*self.world.members), b"")


class World:
    def __init__(self) -> None:
        self.facts = {"cp-1": PRIMARY, "w-1": WAITING, "w-2": WAITING}
        self.members = ["cp-1"]
        self.api_down = False
        self.api_silent = False
        self.silent: set[str] = set()  # nodes whose API takes requests and never answers
        self.waits_for: dict[str, str] = {}
        self.asked: dict[str, asyncio.Event] = {}
        self.kubectl_timeouts: list[float | None] = []
        self.dials: list[SSHTarget] = []
        self.reads: list[str] = []
        self.kubectl_calls: list[tuple[str, tuple[str, ...]]] = []
        self.refuse: set[str] = set()

    async def open(self, target: SSHTarget) -> Any:
        self.dials.append(target)
        if target.name in self.refuse and target.host_key_policy == "strict":
            raise HostKeyMismatch(
                f"host key of {target.name} changed", node=target.name, address=target.address,
                port=target.port, presented="SHA256:new", expected=("SHA256:old",),
                known_hosts=None,
            )
        return FakeNode(self, target.name)


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
def world() -> World:
    return World()


def make(tmp_path: Path, world: World, *, refuse: bool = True) -> Cluster:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    return Cluster(load_inventory(path), Sink(), concurrency=4, refuse_host_key_errors=refuse,
                   opener=world.open)


async def test_gather_reads_each_node_once_over_one_connection(
    tmp_path: Path, world: World
) -> None:
    cluster = make(tmp_path, world)
    await cluster.gather(["w-1", "w-2"])
    await cluster.gather(["w-1", "w-2"])
    assert sorted(world.reads) == ["w-1", "w-2"]
    assert len(world.dials) == 2


async def test_warm_dials_one_wave_ahead_and_reads_nothing(tmp_path: Path, world: World) -> None:
    world.refuse = {"w-2"}
    cluster = make(tmp_path, world)
    cluster.warm(["cp-1", "w-1", "w-2"])
    await cluster.find_primary(["cp-1"], read_only=False)
    for _ in range(3):
        await asyncio.sleep(0)
    assert sorted(t.name for t in world.dials) == ["cp-1", "w-1", "w-2"]
    assert world.reads == ["cp-1"]  # the workers were dialled, not read
    with pytest.raises(CannotStart, match="host key"):  # the refused dial, met when read
        await cluster.gather(["w-1", "w-2"])
    assert len(world.dials) == 3  # the warm connections served the reads
    more = make(tmp_path, World())
    more.concurrency = 2
    more.warm(["cp-1", "w-1", "w-2"])  # more than one wave: read in waves, as before
    assert more._warming is None


async def test_refresh_reads_facts_again_for_a_batch(tmp_path: Path, world: World) -> None:
    cluster = make(tmp_path, world)
    await cluster.gather(["w-1", "w-2"])
    world.facts["w-1"] = JOINED
    world.facts["w-2"] = JOINED
    fresh = await cluster.refresh(["w-1", "w-2"])
    assert fresh["w-1"].marker and fresh["w-2"].marker
    assert cluster.facts["w-1"].marker
    assert len(world.dials) == 2  # the same connections


async def test_refresh_of_a_node_gone_away_records_it_unreachable(
    tmp_path: Path, world: World
) -> None:
    cluster = make(tmp_path, world, refuse=False)
    await cluster.gather(["w-1"])
    world.refuse.add("w-1")  # a reboot: new host keys
    with pytest.raises(HostKeyMismatch):
        await cluster.redial("w-1")
    fresh = await cluster.refresh(["w-1"])
    assert fresh == {}
    assert cluster.unreachable["w-1"] == "host key mismatch"
    assert "w-1" not in cluster.facts


async def test_redial_applies_the_host_key_decision_of_the_moment(
    tmp_path: Path, world: World
) -> None:
    cluster = make(tmp_path, world)
    await cluster.gather(["w-1"])
    world.refuse.add("w-1")  # rebooted: LinuxKit made new host keys
    with pytest.raises(HostKeyMismatch):
        await cluster.redial("w-1")
    node = await cluster.redial("w-1", host_key_policy="pinned", host_key_fingerprint="SHA256:new")
    assert node.name == "w-1"
    assert world.dials[-1].host_key_policy == "pinned"
    assert world.dials[-1].host_key_fingerprint == "SHA256:new"
    assert cluster.targets["w-1"].host_key_policy == "pinned"  # and for later dials
    fresh = await cluster.refresh(["w-1"])
    assert "w-1" in fresh and "w-1" not in cluster.unreachable


async def test_a_refused_host_key_stops_a_changing_run(tmp_path: Path, world: World) -> None:
    world.refuse.add("w-2")
    cluster = make(tmp_path, world)
    with pytest.raises(CannotStart, match="nothing was changed"):
        await cluster.gather(["w-1", "w-2"])


async def test_the_primary_and_members_come_from_kubectl(tmp_path: Path, world: World) -> None:
    world.members = ["cp-1", "w-1"]
    cluster = make(tmp_path, world)
    facts = await cluster.find_primary(["cp-1"], read_only=False)
    assert facts.primary == "cp-1" and facts.initialised
    assert set(facts.members) == {"cp-1", "w-1"}
    assert facts.members["cp-1"].control_plane and not facts.members["w-1"].control_plane
    assert world.kubectl_calls == [
        ("cp-1", ("get", "nodes", "-o", "json", "--request-timeout=10s"))
    ]


async def test_a_silent_api_is_waited_for_a_bounded_time_and_said(
    tmp_path: Path, world: World
) -> None:
    """An API server whose etcd lost quorum takes requests and answers late or never: kubectl is
    told to give up after its request timeout, the exec is bounded a little above that, and the
    run says the API did not answer rather than waiting minutes."""
    world.api_silent = True
    cluster = make(tmp_path, world)
    facts = await cluster.find_primary(["cp-1"], read_only=True)
    assert "--request-timeout=10s" in world.kubectl_calls[0][1]
    assert world.kubectl_timeouts == [NODE_LIST_TIMEOUT]
    assert facts.api_error == (
        f"cp-1: kubectl get nodes on cp-1 did not answer within {NODE_LIST_TIMEOUT:.0f} s"
    )


async def test_an_initialised_cluster_whose_api_is_silent_cannot_start(
    tmp_path: Path, world: World
) -> None:
    world.api_down = True
    cluster = make(tmp_path, world)
    with pytest.raises(CannotStart, match="no control plane API answers: cp-1: The connection"):
        await cluster.find_primary(["cp-1"], read_only=False)


async def test_a_read_only_run_goes_on_without_an_api_and_keeps_why(
    tmp_path: Path, world: World
) -> None:
    world.api_down = True
    cluster = make(tmp_path, world)
    facts = await cluster.find_primary(["cp-1"], read_only=True)
    assert facts.primary == "cp-1" and facts.initialised and facts.members == {}
    assert facts.api_error.startswith("cp-1: The connection")


HA_INVENTORY = """\
cluster: {name: lab}
nodes:
  - {name: cp-1, address: 127.0.9.11, role: control-plane}
  - {name: cp-2, address: 127.0.9.12, role: control-plane}
  - {name: cp-3, address: 127.0.9.13, role: control-plane}
"""


async def test_after_one_silent_api_the_other_control_planes_are_asked_at_once(
    tmp_path: Path, world: World
) -> None:
    """With quorum lost every API is silent: asking the rest together costs one timeout, not
    one per control plane. cp-2 answers only once cp-3 was asked too (asked one after the
    other, the test would time out); the first that answers, in inventory order, is primary."""
    world.facts = {"cp-1": PRIMARY, "cp-2": PRIMARY, "cp-3": PRIMARY}
    world.silent = {"cp-1", "cp-2"}
    world.waits_for = {"cp-2": "cp-3"}
    path = tmp_path / "ha.yml"
    path.write_text(HA_INVENTORY)
    cluster = Cluster(load_inventory(path), Sink(), concurrency=4, refuse_host_key_errors=True,
                      opener=world.open)
    facts = await cluster.find_primary(["cp-1", "cp-2", "cp-3"], read_only=False)
    assert facts.primary == "cp-3" and set(facts.members) == {"cp-1"}
    assert next(n for n, _ in world.kubectl_calls) == "cp-1"


def test_members_are_built_in_one_place() -> None:
    members = members_of(nodes_json("cp-1", "w-1").decode())
    assert members["w-1"].ready and members["w-1"].kubelet_version == "v1.31.3"


async def test_a_step_reads_facts_again_without_changing_the_plan(
    tmp_path: Path, world: World
) -> None:
    cluster = make(tmp_path, world)
    await cluster.gather(["cp-1", "w-1"])
    plan = PlanContext(
        inventory=cluster.inventory, options=RunOptions(run_id="r1"),
        facts=dict(cluster.facts), unreachable={}, cluster=ClusterFacts(primary="cp-1"),
    )
    ctx = RunContext(plan=plan, sink=Sink(), connect=cluster.connect, add_secret=lambda s: None,
                     probe=cluster)
    world.facts["w-1"] = JOINED  # the node rebooted and joined meanwhile
    world.refuse.add("w-1")
    await ctx.redial("w-1", host_key_policy="pinned", host_key_fingerprint="SHA256:new")
    fresh = await ctx.refresh(["w-1"])
    assert fresh["w-1"].marker and ctx.facts("w-1").marker
    assert not plan.facts["w-1"].marker  # the plan keeps the facts it was made from
    assert ctx.facts("cp-1") is plan.facts["cp-1"]


async def test_without_a_probe_reading_facts_again_is_refused(tmp_path: Path, world: World) -> None:
    cluster = make(tmp_path, world)
    plan = PlanContext(inventory=cluster.inventory, options=RunOptions(), facts={},
                       unreachable={}, cluster=ClusterFacts(primary="cp-1"))
    ctx = RunContext(plan=plan, sink=Sink(), connect=cluster.connect, add_secret=lambda s: None)
    with pytest.raises(RuntimeError, match="no cluster probe"):
        await ctx.refresh(["w-1"])
