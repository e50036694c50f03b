"""A bootstrap's critical path against the in-process fleet: the addons are applied and the join
credentials minted while init finishes (once its API serves its admin), every worker's join is
triggered at once, the wait for Ready follows the node list's watch, and the tokens are deleted
while the nodes turn Ready."""

from __future__ import annotations

import threading
from typing import Any

from tests.fleet.inprocess import InProcessFleet
from tests.fleet.node import SimNode
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory


def _addon_apply(line: str) -> bool:
    return "kubectl apply -f -" in line


def test_credentials_are_minted_while_the_addons_are_applied(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    # The pod network's apply is answered only once the token was created: a run that minted
    # its credentials after the addons would wait here (until the safety release below).
    hold = fleet.hold_answer("cp-1", _addon_apply)
    minted_while_held: list[bool] = []

    def token_created() -> None:
        minted_while_held.append(not hold.gate.is_set())  # the apply not answered yet
        hold.gate.set()

    fleet.on_command("cp-1", lambda line: "kubeadm token create" in line, token_created)
    safety = threading.Timer(20.0, hold.release)
    safety.start()
    try:
        run = k8slk("bootstrap", fleet.inventory, "--json")
    finally:
        safety.cancel()
    assert run.code == 0, run.why()
    assert minted_while_held == [True]
    assert run.outcomes == {"cp-1": "ok", "w-1": "ok", "w-2": "ok"}
    assert not [t for t in fleet.tokens() if t.startswith("k8slk-ops run")]
    assert "- init + addons + credentials stage: 1 nodes" in run.log


def _init_completed(fleet: InProcessFleet) -> bool:
    """cp-1's kubeadm init has printed its last line (on the fleet's thread: from a hook)."""
    return any("kubeadm has completed" in line for line in fleet._node("cp-1").log)


# An init whose phases after upload-config take seconds (kubeadm's five pauses of 1 s), as on a
# real node: what starts at the milestone arrives long before init's last line, however busy
# the machine running the test.
SLOW_INIT = 5.0


def test_addons_and_credentials_start_while_init_finishes(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 1, kubeadm_seconds=SLOW_INIT)
    seen: dict[str, list[bool]] = {"apply": [], "token": []}
    fleet.on_command("cp-1", _addon_apply,
                     lambda: seen["apply"].append(_init_completed(fleet)))
    fleet.on_command("cp-1", lambda line: "kubeadm token create" in line,
                     lambda: seen["token"].append(_init_completed(fleet)))
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert seen == {"apply": [False], "token": [False]}
    assert run.outcomes == {"cp-1": "ok", "w-1": "ok", "w-2": "ok"}


def test_an_init_that_fails_before_its_api_answers_starts_neither(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.fail_kubeadm("cp-1")
    lines = _record_lines(fleet)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 1
    node = run.nodes["cp-1"]
    assert node["phase"] == "init" and "preflight" in node["message"], node
    assert not any(_addon_apply(line) or "token create" in line for line in lines["cp-1"])
    assert "not started: init failed" in run.log
    assert run.outcomes["w-1"] == run.outcomes["w-2"] == "skipped"


def test_an_addon_that_changes_kube_proxy_waits_for_init_to_end(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    # kubeadm's addon phase would overwrite it: applied before init's end, the change is lost.
    fleet = fleet_factory(3, 1, kubeadm_seconds=SLOW_INIT)
    tuned = fleet.directory / "kube-proxy-tuned.yaml"
    tuned.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, "
                     "namespace: kube-system}\ndata: {config.conf: 'mode: ipvs'}\n")
    text = fleet.inventory.read_text()
    fleet.inventory.write_text(text.replace("addons: [pod-network.yaml]",
                                            "addons: [pod-network.yaml, kube-proxy-tuned.yaml]"))
    at_apply: list[bool] = []
    fleet.on_command("cp-1", _addon_apply, lambda: at_apply.append(_init_completed(fleet)),
                     times=4)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    # The pod network (then its record) at once, the kube-proxy change after init's end.
    assert len(at_apply) == 4
    assert (at_apply[0], at_apply[2]) == (False, True)


def test_a_failed_addon_still_stops_every_join_and_deletes_the_token(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    bad = fleet.directory / "bad.yaml"
    bad.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    text = fleet.inventory.read_text()
    fleet.inventory.write_text(text.replace("addons: [pod-network.yaml]",
                                            "addons: [pod-network.yaml, bad.yaml]"))
    lines = _record_lines(fleet)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 1
    assert run.nodes["cp-1"]["phase"] == "addons"
    assert run.outcomes["w-1"] == run.outcomes["w-2"] == "skipped"
    assert set(fleet.members()) == {"cp-1"}
    # The credentials minted beside the failed apply are revoked all the same.
    assert any("kubeadm token create" in line for line in lines["cp-1"])
    assert not [t for t in fleet.tokens() if t.startswith("k8slk-ops run")]


def _record_lines(fleet: InProcessFleet) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}

    def hook(node: SimNode, line: str) -> None:
        lines.setdefault(node.name, []).append(line)

    fleet.call(lambda: fleet.fleet.session_hooks.append(hook))
    return lines


def test_every_worker_join_is_triggered_before_any_of_them_ends(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(5, 1)
    workers = [f"w-{i}" for i in range(1, 5)]
    for name in workers:
        fleet.hold_kubeadm(name)
    result: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: result.update(run=k8slk("bootstrap", fleet.inventory, "--json"))
    )
    runner.start()
    try:
        for name in workers:  # each join triggered and held: none had to end for the next
            fleet.wait_kubeadm_held(name, timeout=30.0)
    finally:
        for name in workers:
            fleet.release_kubeadm(name)
        runner.join(60.0)
    run = result["run"]
    assert run.code == 0, run.why()
    assert set(run.outcomes.values()) == {"ok"}


def test_ready_is_followed_by_one_watch_of_the_node_list(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(4, 1, ready_delay=0.3)
    lines = _record_lines(fleet)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert set(run.outcomes.values()) == {"ok"}
    on_primary = lines["cp-1"]
    watches = [line for line in on_primary if "get nodes --watch" in line]
    assert len(watches) == 1, watches
    assert "--output-watch-events" in watches[0] and "-o json" in watches[0]
    # The node list is not polled while the watch runs (finding the primary reads it once
    # before the cluster exists, and the lock is taken through it).
    polls = [line for line in on_primary if "get nodes -o json" in line]
    assert len(polls) <= 1, polls
    assert all(report["version"] for report in run.report["nodes"]), run.report["nodes"]


def test_tokens_are_deleted_while_the_nodes_turn_ready(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    # No node turns Ready until the run's token is deleted: a run that revoked its tokens only
    # after the wait for Ready would wait here (until the safety release below).
    fleet = fleet_factory(3, 1, ready_delay=3600.0)
    cluster = fleet.fleet.cluster
    not_ready_at_delete: list[bool] = []

    def deleting() -> None:
        workers = [m for n, m in cluster.members.items() if n.startswith("w-")]
        not_ready_at_delete.append(bool(workers) and not any(cluster.ready(m) for m in workers))
        cluster.ready_delay = 0.0

    fleet.on_command("cp-1", lambda line: "kubeadm token delete" in line, deleting)
    safety = threading.Timer(20.0, lambda: fleet.call(lambda: setattr(cluster, "ready_delay", 0.0)))
    safety.start()
    try:
        run = k8slk("bootstrap", fleet.inventory, "--json")
    finally:
        safety.cancel()
    assert run.code == 0, run.why()
    assert not_ready_at_delete == [True]
    assert not [t for t in fleet.tokens() if t.startswith("k8slk-ops run")]
    stages = [s["stage"] for s in run.report["plan"]]
    assert stages.index("join-workers") < stages.index("revoke") < stages.index("ready")
    assert "- revoke + ready stage: 3 nodes" in run.log
