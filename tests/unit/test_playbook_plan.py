"""Playbooks load with file:line errors; the bootstrap plan follows the facts (pure, no nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8slk_ops.base.errors import UsageError
from k8slk_ops.engine.context import ClusterFacts, Member, PlanContext, RunOptions
from k8slk_ops.engine.plan import make_plan, needed_nodes
from k8slk_ops.engine.playbook import load_builtin, load_playbook
from k8slk_ops.inventory import load_inventory
from k8slk_ops.node.facts import parse_facts
from k8slk_ops.steps import STEPS

INVENTORY = """\
cluster:
  name: lab
  controlPlaneEndpoint: 127.0.9.11:6443
nodes:
  - {name: cp-1, address: 127.0.9.11, role: control-plane}
  - {name: cp-2, address: 127.0.9.12, role: control-plane}
  - {name: w-1, address: 127.0.9.21, role: worker}
  - {name: w-2, address: 127.0.9.22, role: worker}
"""

WAITING = """\
cpus=2
mem_kb=4000000
task kubelet 1 RUNNING
task kubeadm 2 RUNNING
kubeadm_version=v1.31.3
log 2026-11-25T06:00:00Z kubeadm.out Waiting for /run/kubeadm-run to exist before running kubeadm commands
"""

CONFIGURED = """\
marker=1
admin_conf=1
task kubelet 1 RUNNING
task kubeadm 2 STOPPED
kubeadm_version=v1.31.3
log 2026-11-25T06:00:00Z kubeadm.out Kubernetes Node already has kubelet configuration
"""


def context(tmp_path: Path, cluster: ClusterFacts, facts_text: dict[str, str]) -> PlanContext:
    inv_path = tmp_path / "inv.yml"
    inv_path.write_text(INVENTORY)
    return PlanContext(
        inventory=load_inventory(inv_path),
        options=RunOptions(run_id="r1"),
        facts={name: parse_facts(text) for name, text in facts_text.items()},
        unreachable={},
        cluster=cluster,
    )


def actions(plan_json: list[dict], stage: str) -> dict[str, list[str]]:  # type: ignore[type-arg]
    for entry in plan_json:
        if entry["stage"] == stage:
            return {n["node"]: [a["summary"] for a in n["actions"]] for n in entry["nodes"]}
    raise KeyError(stage)


def test_fresh_cluster_plan(tmp_path: Path) -> None:
    names = ["cp-1", "cp-2", "w-1", "w-2"]
    ctx = context(tmp_path, ClusterFacts(primary="cp-1"), dict.fromkeys(names, WAITING))
    plan = make_plan(load_builtin("bootstrap", STEPS), ctx)
    pj = plan.to_json()
    init = actions(pj, "init")
    assert list(init) == ["cp-1"]
    assert any("kubeadm.k8s.io/v1beta4" in a and "0600" in a for a in init["cp-1"])
    assert any("'init'" in a for a in init["cp-1"])
    assert list(actions(pj, "join-control-planes")) == ["cp-2"]
    assert list(actions(pj, "join-workers")) == ["w-1", "w-2"]
    creds = actions(pj, "credentials")["cp-1"]
    assert any("upload-certs" in a for a in creds)  # a control plane will join
    assert plan.changes


def test_bootstrapped_cluster_plans_no_change(tmp_path: Path) -> None:
    names = ["cp-1", "cp-2", "w-1", "w-2"]
    members = {n: Member(n, True, n.startswith("cp")) for n in names}
    cluster = ClusterFacts(primary="cp-1", initialised=True, members=members)
    ctx = context(tmp_path, cluster, dict.fromkeys(names, CONFIGURED))
    plan = make_plan(load_builtin("bootstrap", STEPS), ctx)
    assert not plan.changes
    text = plan.to_text()
    assert "control plane already initialised" in text
    assert "w-1: nothing to do (already in the cluster)" in text


def test_partial_cluster_joins_only_the_missing(tmp_path: Path) -> None:
    members = {n: Member(n, True, n.startswith("cp")) for n in ("cp-1", "cp-2", "w-1")}
    cluster = ClusterFacts(primary="cp-1", initialised=True, members=members)
    facts = {"cp-1": CONFIGURED, "cp-2": CONFIGURED, "w-1": CONFIGURED, "w-2": WAITING}
    ctx = context(tmp_path, cluster, facts)
    pj = make_plan(load_builtin("bootstrap", STEPS), ctx).to_json()
    assert list(actions(pj, "join-workers")) == ["w-2"]
    assert actions(pj, "join-control-planes") == {}
    creds = actions(pj, "credentials")["cp-1"]
    assert not any("upload-certs" in a for a in creds)  # only a worker joins


def test_unreachable_nodes_are_skipped_in_the_plan(tmp_path: Path) -> None:
    facts = dict.fromkeys(["cp-1", "cp-2", "w-1"], WAITING)
    ctx = context(tmp_path, ClusterFacts(primary="cp-1"), facts)
    ctx.unreachable["w-2"] = "connection refused"
    plan = make_plan(load_builtin("bootstrap", STEPS), ctx)
    assert "w-2" not in actions(plan.to_json(), "join-workers")
    assert "w-2: unreachable" in plan.to_text()


def test_needed_nodes_follow_the_host_groups(tmp_path: Path) -> None:
    ctx = context(tmp_path, ClusterFacts(primary="cp-1"), {})
    book = tmp_path / "pb.yml"
    book.write_text(
        "name: x\nstages:\n  - name: a\n    hosts: primary\n    steps:\n      - preflight: {}\n"
    )
    assert needed_nodes(load_playbook(book, STEPS), ctx) == ["cp-1"]


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("name: x\nstages:\n  - name: a\n    steps:\n      - inti: {}\n", 5, "unknown step 'inti'"),
        ("name: x\nstages:\n  - name: a\n    steps:\n      - init: {timeout: -1}\n", 5, "timeout"),
        ("name: x\nstages:\n  - name: a\n    seriel: 2\n    steps:\n      - init: {}\n", 4,
         "unknown field"),
        ("name: x\nstages:\n  - name: a\n    hosts: wrkers\n    steps:\n      - init: {}\n", 4,
         "no host group or node named 'wrkers'"),
        ("name: x\nstages:\n  - name: a\n    steps:\n      - init: {tmeout: 3}\n", 5,
         "unknown field"),
        ("name: x\nprimary: second\nstages:\n  - name: a\n    steps:\n      - init: {}\n", 2,
         "primary"),
        ("name: x\nstages:\n  - name: a\n    steps:\n      - mint-credentials: {ttl: '30x'}\n",
         5, "unknown unit"),
    ],
)
def test_playbook_errors_name_file_and_line(
    tmp_path: Path, body: str, line: int, words: str
) -> None:
    path = tmp_path / "book.yml"
    path.write_text(body)
    with pytest.raises(UsageError) as err:
        load_playbook(path, STEPS).check_hosts({"cp-1", "w-1"})
    assert f"{path}:{line}" in str(err.value)
    assert words in str(err.value)


def test_builtin_playbooks_load() -> None:
    book = load_builtin("bootstrap", STEPS)
    assert [s.name for s in book.stages][:2] == ["preflight", "init"]
    assert [s.name for s in book.always] == ["cleanup"]
    assert book.primary == "first"
    assert load_builtin("remove-node", STEPS).primary == "not-selected"


def test_when_filters_nodes_on_facts(tmp_path: Path) -> None:
    facts = {"cp-1": CONFIGURED, "cp-2": WAITING, "w-1": WAITING, "w-2": CONFIGURED}
    members = {"cp-1": Member("cp-1", True, True), "w-2": Member("w-2", True, False)}
    ctx = context(tmp_path, ClusterFacts("cp-1", True, members), facts)
    book = tmp_path / "pb.yml"
    book.write_text(
        "name: x\nstages:\n  - name: a\n    hosts: all\n"
        "    when: {kubeadmState: waiting, role: worker}\n"
        "    steps:\n      - run: {command: [echo, '$(rm -rf /)'], in: kubelet}\n"
    )
    pj = make_plan(load_playbook(book, STEPS), ctx).to_json()
    nodes = actions(pj, "a")
    assert list(nodes) == ["w-1"]
    step = pj[0]["nodes"][0]["actions"][0]
    assert step["argv"] == ["echo", "$(rm -rf /)"]


def test_when_rejects_unknown_facts_with_line(tmp_path: Path) -> None:
    book = tmp_path / "pb.yml"
    book.write_text(
        "name: x\nstages:\n  - name: a\n    when: {kubeadmStat: waiting}\n"
        "    steps:\n      - run: {command: uptime}\n"
    )
    with pytest.raises(UsageError) as err:
        load_playbook(book, STEPS)
    assert f"{book}:4" in str(err.value)
    assert "kubeadmStat" in str(err.value)
