"""The removal guard's judgement, from cluster facts alone (no nodes)."""

from __future__ import annotations

from pathlib import Path

from k8slk_ops.engine.context import ClusterFacts, Member, PlanContext, RunOptions
from k8slk_ops.inventory import load_inventory
from k8slk_ops.steps.remove import endpoint_carrier, quorum_problem

INVENTORY = """\
cluster:
  name: lab
  controlPlaneEndpoint: {endpoint}
nodes:
  - {{name: cp-1, address: 10.0.0.11, role: control-plane}}
  - {{name: cp-2, address: 10.0.0.12, role: control-plane}}
  - {{name: cp-3, address: 10.0.0.13, role: control-plane}}
  - {{name: w-1, address: 10.0.0.21, role: worker}}
"""


def context(tmp_path: Path, selected: tuple[str, ...], endpoint: str = "10.0.0.11:6443",
            control_planes: tuple[str, ...] = ("cp-1", "cp-2", "cp-3")) -> PlanContext:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY.format(endpoint=endpoint))
    cluster = ClusterFacts(primary="cp-2", initialised=True)
    for name in (*control_planes, "w-1"):
        cluster.members[name] = Member(name, True, name.startswith("cp"))
    return PlanContext(
        inventory=load_inventory(path),
        options=RunOptions(run_id="r1", selected=selected),
        facts={},
        unreachable={},
        cluster=cluster,
    )


def test_a_worker_or_one_of_three_control_planes_may_go(tmp_path: Path) -> None:
    assert quorum_problem(context(tmp_path, ("w-1",))) == ""
    assert quorum_problem(context(tmp_path, ("cp-3",))) == ""


def test_two_of_three_control_planes_break_quorum(tmp_path: Path) -> None:
    problem = quorum_problem(context(tmp_path, ("cp-2", "cp-3")))
    assert "quorum (1 left, 2 needed)" in problem


def test_the_last_control_plane(tmp_path: Path) -> None:
    ctx = context(tmp_path, ("cp-1",), control_planes=("cp-1",))
    assert quorum_problem(ctx) == "this would remove the last control plane"


def test_the_control_plane_carrying_the_endpoint(tmp_path: Path) -> None:
    ctx = context(tmp_path, ("cp-1",))
    assert endpoint_carrier(ctx) == "cp-1"
    assert "carries the controlPlaneEndpoint (10.0.0.11:6443)" in quorum_problem(ctx)


def test_an_endpoint_of_its_own_carries_nothing(tmp_path: Path) -> None:
    ctx = context(tmp_path, ("cp-1",), endpoint="k8s.example.org:6443")
    assert endpoint_carrier(ctx) is None
    assert quorum_problem(ctx) == ""


def test_a_named_control_plane_reached_at_the_endpoint_ip_carries_it(tmp_path: Path) -> None:
    path = tmp_path / "named.yml"
    path.write_text(INVENTORY.format(endpoint="10.0.0.11:6443")
                    .replace("address: 10.0.0.11", "address: cp-1.lab.test"))
    ctx = context(tmp_path, ("cp-1",))
    named = PlanContext(inventory=load_inventory(path), options=ctx.options, facts={},
                        unreachable={}, cluster=ctx.cluster, node_ips={"cp-1": "10.0.0.11"})
    assert endpoint_carrier(named) == "cp-1"
