"""Growing, shrinking and inspecting a cluster, end to end against the lab.

One module-scoped lab is bootstrapped with two of its workers left out of the inventory at
first (an inventory without them), so add-node has something to add; the tests then run in
file order on that cluster: status, kubeconfig, plan, add-node, remove-node, reset.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import cli, kubectl_nodes, trigger_state

pytestmark = pytest.mark.lab


def node_states(lab: Any) -> dict[str, str]:
    """Everything a change on a node would touch: trigger, config, marker, kubeadm log size."""
    out = {}
    for node in lab.nodes:
        probe = lab.ssh(
            node.name,
            "ls -l --time-style=+%s /run/node /var/node/var/lib/kubelet 2>&1; "
            "wc -c < /var/log/kubeadm.out.log",
        )
        out[node.name] = probe.stdout
    return out


@pytest.fixture(scope="module")
def cluster(lab_factory_module: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    lab = lab_factory_module(nodes=4, control_planes=1)
    work = tmp_path_factory.mktemp("lifecycle")
    full = yaml.safe_load(lab.inventory_path.read_text())
    partial = dict(full)
    partial["nodes"] = [n for n in full["nodes"] if n["name"] in ("cp-1", "w-1")]
    small = lab.dir / "small.yml"
    small.write_text(yaml.safe_dump(partial))
    boot = cli("bootstrap", str(small), "--json", log_file=work / "boot.log")
    assert boot.code == 0, boot.stderr
    return {"lab": lab, "work": work, "inventory": lab.inventory_path, "small": small}


def test_status_reports_every_node_including_unreachable(cluster: dict[str, Any]) -> None:
    lab = cluster["lab"]
    lab.fault("w-3", "ssh-stop")
    try:
        run = cli("status", str(cluster["inventory"]), "--json", log_file=cluster["work"] / "s.log")
    finally:
        lab.fault("w-3", "ssh-start")
    assert run.code == 1  # a node is unreachable
    rows = {n["name"]: n["details"] for n in run.report["nodes"]}
    assert rows["cp-1"]["ready"] is True and rows["cp-1"]["kubeadm"] == "completed"
    assert rows["cp-1"]["certsExpire"]  # control planes show certificate expiry
    assert rows["w-1"]["registered"] is True
    assert rows["w-2"]["registered"] is False and rows["w-2"]["kubeadm"] == "waiting"
    assert rows["w-3"]["reachable"] is False


def test_status_shows_a_changed_host_key_as_a_row(cluster: dict[str, Any]) -> None:
    lab = cluster["lab"]
    lab.fault("w-3", "reboot")  # not in the cluster yet: a reboot only changes its host key
    try:
        run = cli("status", str(cluster["inventory"]), "--json", log_file=cluster["work"] / "k.log")
    finally:
        lab.rewrite_known_hosts()
    assert run.code == 1
    rows = {n["name"]: n["details"] for n in run.report["nodes"]}
    assert rows["w-3"]["reachable"] is False and rows["w-3"]["hostKey"] == "mismatch"
    assert rows["w-2"]["hostKey"] == "ok" and rows["cp-1"]["ready"] is True
    assert "every boot" in run.stderr  # the LinuxKit advice reaches the operator


def test_kubeconfig_written_and_merged(cluster: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "config"
    target.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: other, cluster: {server: https://x}}]\n"
        "contexts: [{name: other, context: {cluster: other, user: me}}]\n"
        "users: [{name: me, user: {token: t}}]\ncurrent-context: other\n"
    )
    run = cli("kubeconfig", str(cluster["inventory"]), "-o", str(target), "--merge")
    assert run.code == 0, run.stderr
    merged = yaml.safe_load(target.read_text())
    assert {c["name"] for c in merged["contexts"]} >= {"other"}
    assert len(merged["contexts"]) == 2
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    endpoint = yaml.safe_load(cluster["inventory"].read_text())["cluster"]["controlPlaneEndpoint"]
    servers = {c["cluster"]["server"] for c in merged["clusters"]}
    assert f"https://{endpoint}" in servers


def test_plan_shows_actions_and_changes_nothing(cluster: dict[str, Any]) -> None:
    lab = cluster["lab"]
    before = node_states(lab)
    run = cli("plan", "add-node", str(cluster["inventory"]), "--json")
    assert run.code == 0, run.stderr
    plan = {stage["stage"]: stage for stage in run.report["plan"]}
    joined = [n["node"] for n in plan["join-workers"]["nodes"]]
    assert joined == ["w-2", "w-3"]
    summaries = [a["summary"] for n in plan["join-workers"]["nodes"] for a in n["actions"]]
    assert any("kubeadm.yaml" in s for s in summaries)
    assert any("'join'" in s for s in summaries)
    dry = cli("add-node", str(cluster["inventory"]), "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "w-2" in dry.stdout + dry.stderr
    assert node_states(lab) == before


def test_add_node_joins_only_the_named_node_and_ignores_a_broken_one(
    cluster: dict[str, Any]
) -> None:
    lab = cluster["lab"]
    lab.fault("w-1", "ssh-stop")  # an unrelated, broken member must not block adding a node
    try:
        run = cli("add-node", str(cluster["inventory"]), "--node", "w-2", "--json",
                  log_file=cluster["work"] / "add.log")
    finally:
        lab.fault("w-1", "ssh-start")
    assert run.code == 0, run.stderr
    outcomes = {n["name"]: n["outcome"] for n in run.report["nodes"]}
    assert outcomes["w-2"] == "ok"
    assert trigger_state(lab, "w-3") == "absent"
    assert kubectl_nodes(lab)["w-2"]["ready"]
    tokens = lab.kubelet_exec("cp-1", ["kubeadm", "token", "list"]).stdout
    assert "k8slk-ops" not in tokens


def test_add_node_failure_is_reported(cluster: dict[str, Any]) -> None:
    lab = cluster["lab"]
    lab.fault("w-3", "kubeadm-fail", "kubelet-start")
    run = cli("add-node", str(cluster["inventory"]), "--json", log_file=cluster["work"] / "a2.log")
    assert run.code == 1
    node = {n["name"]: n for n in run.report["nodes"]}["w-3"]
    assert node["outcome"] == "failed" and node["phase"] == "join"


def test_remove_node_refuses_the_last_control_plane(cluster: dict[str, Any]) -> None:
    run = cli("remove-node", str(cluster["inventory"]), "cp-1", "--yes", "--json")
    assert run.code == 1
    assert "primary" in run.stderr or "control plane" in run.stderr
    assert kubectl_nodes(cluster["lab"])["cp-1"]["ready"]


def test_the_last_control_plane_goes_only_when_told_twice(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=2, control_planes=1)
    boot = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    once = cli("remove-node", str(lab.inventory_path), "cp-1", "--force", "--yes", "--json",
               log_file=tmp_path / "once.log")
    assert once.code == 1
    assert "last control plane" in once.stdout + once.stderr
    assert kubectl_nodes(lab)["cp-1"]["ready"]
    twice = cli("remove-node", str(lab.inventory_path), "cp-1", "-ff", "--yes", "--json",
                log_file=tmp_path / "twice.log")
    assert twice.code == 0, twice.stderr
    assert not lab.exists("cp-1", "/var/node/etc/kubernetes/admin.conf")
    assert "no Node is left to delete" in twice.log or "no Node object" in twice.log


def test_a_blocked_drain_stops_and_uncordons_unless_forced(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=2, control_planes=1)
    boot = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    lab.fault("w-1", "drain-block")  # a pod its PodDisruptionBudget keeps on w-1

    stopped = cli("remove-node", str(lab.inventory_path), "w-1", "--drain-timeout", "2s",
                  "--json", log_file=tmp_path / "stopped.log")
    assert stopped.code == 1
    node = {n["name"]: n for n in stopped.report["nodes"]}["w-1"]
    assert node["phase"] == "drain"
    assert "global timeout reached: 2s" in node["message"]
    member = kubectl_nodes(lab)["w-1"]
    assert not member["raw"]["spec"].get("unschedulable")  # uncordoned again
    assert lab.exists("w-1", "/var/node/var/lib/kubelet/config.yaml")  # not reset

    forced = cli("remove-node", str(lab.inventory_path), "w-1", "--drain-timeout", "2s",
                 "--force", "--json", log_file=tmp_path / "forced.log")
    assert forced.code == 0, forced.stderr
    assert "forced on" in forced.log
    assert "w-1" not in kubectl_nodes(lab)
    assert not lab.exists("w-1", "/var/node/var/lib/kubelet/config.yaml")


def test_remove_node_drains_resets_and_deletes(cluster: dict[str, Any]) -> None:
    lab = cluster["lab"]
    run = cli("remove-node", str(cluster["inventory"]), "w-2", "--json",
              log_file=cluster["work"] / "rm.log")
    assert run.code == 0, run.stderr
    assert "w-2" not in kubectl_nodes(lab)
    assert not lab.exists("w-2", "/var/node/var/lib/kubelet/config.yaml")


def test_remove_unreachable_node_needs_force(cluster: dict[str, Any]) -> None:
    lab = cluster["lab"]
    lab.fault("w-1", "ssh-stop")
    try:
        refused = cli("remove-node", str(cluster["inventory"]), "w-1", "--json")
        assert refused.code == 1
        created = kubectl_nodes(lab)["w-1"]["raw"]["metadata"]["creationTimestamp"]
        forced = cli("remove-node", str(cluster["inventory"]), "w-1", "--force", "--json")
        assert forced.code == 0, forced.stderr
        # That Node is gone. w-1's kubelet still runs (only its sshd is down) and, as a real
        # kubelet does, registers a new Node at its next heartbeat: how soon it does depends
        # on the machine's load, so a new one may be listed already.
        again = kubectl_nodes(lab).get("w-1")
        assert again is None or again["raw"]["metadata"]["creationTimestamp"] != created
    finally:
        lab.fault("w-1", "ssh-start")


def test_reset_needs_yes_without_a_terminal(cluster: dict[str, Any]) -> None:
    run = cli("reset", str(cluster["inventory"]))
    assert run.code == 2
    assert "--yes" in run.stderr


def test_reset_takes_the_cluster_apart(cluster: dict[str, Any]) -> None:
    lab = cluster["lab"]
    run = cli("reset", str(cluster["inventory"]), "--yes", "--json",
              log_file=cluster["work"] / "reset.log")
    assert run.code in (0, 1), run.stderr  # w-3 failed its join earlier and may refuse
    for node in ("cp-1",):
        assert not lab.exists(node, "/var/node/etc/kubernetes/admin.conf")
        assert not lab.exists(node, "/var/node/var/lib/kubelet/config.yaml")
    report = json.loads(run.stdout)
    assert {n["name"]: n["outcome"] for n in report["nodes"]}["cp-1"] == "ok"
