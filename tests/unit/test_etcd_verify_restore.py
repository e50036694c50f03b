"""``etcd snapshot --verify-restore``'s pure parts: the command lines, etcdctl's answers, the
plan, the report's row and message, and the metrics (read with prometheus_client's parser)."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from k8slk_ops.cluster import etcdrestore, restorecheck
from k8slk_ops.cluster.restorecheck import CheckError, RestoreCheck
from k8slk_ops.engine.context import ClusterFacts, Member, PlanContext, RunState
from k8slk_ops.engine.outcomes import note_etcd
from k8slk_ops.engine.plan import make_plan
from k8slk_ops.engine.playbook import load_builtin
from k8slk_ops.node.facts import TaskState
from k8slk_ops.output import metrics
from k8slk_ops.output.events import NodeReport, Outcome, RunReport
from k8slk_ops.output.rows import RestoreCheckRow
from k8slk_ops.steps import STEPS
from tests.unit.test_playbook_plan import CONFIGURED, actions, context

IMAGE_34 = "registry.k8s.io/etcd:3.4.23-0"
IMAGE_35 = "registry.k8s.io/etcd:3.5.15-0"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- command lines ------------------------------------------------------------------------


def test_the_restore_uses_the_images_offline_tool_into_the_scratch_directory() -> None:
    assert restorecheck.restore_argv(IMAGE_34)[:4] == [
        "etcdctl", "snapshot", "restore", "/restore/snapshot.db"]
    argv = restorecheck.restore_argv(IMAGE_35)
    assert argv[0] == "etcdutl"
    assert "--data-dir=/restore/data" in argv
    assert "--initial-cluster=verify=http://127.0.0.1:32380" in argv
    assert "--skip-hash-check" not in argv  # a file from `snapshot save` carries its hash


def test_the_throwaway_etcd_runs_detached_in_a_container_of_its_own() -> None:
    argv = restorecheck.server_argv(IMAGE_34, "r1")
    scratch = "/var/node/var/lib/k8slk-ops-verify-r1"
    assert argv[:5] == ["ctr", "--namespace", "k8s.io", "run", "-d"]
    assert "--rm" not in argv  # ctr refuses --rm with -d: the cleanup deletes it by name
    assert "--net-host" not in argv  # its own network namespace: its loopback is its own
    assert argv[argv.index("--log-uri") + 1] == f"file://{scratch}/etcd.log"
    assert f"type=bind,src={scratch},dst=/restore,options=rbind:rw" in argv
    at = argv.index(IMAGE_34)
    assert argv[at + 1] == "k8slk-etcd-verify-r1"
    etcd = argv[at + 2:]
    assert etcd[0] == "etcd"
    assert "--listen-client-urls=http://127.0.0.1:32379" in etcd
    assert "--data-dir=/restore/data" in etcd
    # Not the node's etcd ports, whatever the namespace.
    assert not any(":2379" in a or ":2380" in a for a in etcd)


def test_the_restore_helper_still_runs_one_off_containers_of_the_restore_directory() -> None:
    argv = etcdrestore.ctr_run_argv(IMAGE_34, "cid", ["etcdctl", "version"])
    assert argv[:5] == ["ctr", "--namespace", "k8s.io", "run", "--rm"]
    assert f"type=bind,src={etcdrestore.RESTORE_DIR},dst=/restore,options=rbind:rw" in argv


def test_reads_go_through_the_throwaway_containers_exec_and_are_serializable() -> None:
    count = restorecheck.count_argv("r1", "x1", 120)
    assert count[:8] == ["ctr", "--namespace", "k8s.io", "task", "exec", "--exec-id", "x1",
                         "k8slk-etcd-verify-r1"]
    assert "--endpoints=http://127.0.0.1:32379" in count
    assert "--dial-timeout=120s" in count  # the dial is the wait for it to serve
    assert {"--limit=1", "--consistency=s", "--keys-only"} <= set(count)
    nodes = restorecheck.nodes_argv("r1", "x2")
    assert nodes[nodes.index("get") + 1] == "/registry/minions/"
    assert "--keys-only" in nodes  # never a value
    assert restorecheck.tasks_argv() == ["ctr", "--namespace", "k8s.io", "task", "ls"]


def test_the_throwaway_tasks_state_from_ctrs_listing() -> None:
    listing = ("TASK                    PID     STATUS\n"
               "k8slk-etcd-verify-r1    4242    RUNNING\n"
               "k8slk-etcd-verify-r2    4343    STOPPED\n")
    assert restorecheck.task_state(listing, "r1") is TaskState.RUNNING
    assert restorecheck.task_state(listing, "r2") is TaskState.STOPPED
    assert restorecheck.task_state(listing, "r3") is TaskState.MISSING
    # ctr's output lost (it happens): nothing is known, the task is not taken for gone.
    assert restorecheck.task_state("", "r1") is TaskState.UNKNOWN


def test_cleanup_removes_the_container_and_the_directory_and_says_what_is_left() -> None:
    argv = restorecheck.cleanup_argv("r1")
    assert argv[:2] == ["sh", "-c"]
    assert argv[-2:] == ["k8slk-etcd-verify-r1", "/var/node/var/lib/k8slk-ops-verify-r1"]
    script = argv[2]
    assert 'task delete --force "$1"' in script
    assert 'container delete "$1"' in script
    assert 'rm -rf "$2"' in script
    assert "exit 1" in script
    hand = restorecheck.cleanup_by_hand("r1")
    assert "container delete k8slk-etcd-verify-r1" in hand
    assert "rm -rf /var/node/var/lib/k8slk-ops-verify-r1" in hand


# --- etcdctl's answers ----------------------------------------------------------------------


HEADER = {"cluster_id": 1, "member_id": 2, "revision": 40, "raft_term": 2}


def test_the_key_count_is_etcds_count_of_the_whole_range() -> None:
    text = json.dumps({"header": HEADER, "kvs": [{"key": _b64("/registry/a")}], "more": True,
                       "count": 412})
    assert restorecheck.parse_count(text) == 412
    # protobuf's JSON leaves a zero out: an empty store has no count at all.
    assert restorecheck.parse_count(json.dumps({"header": HEADER})) == 0


@pytest.mark.parametrize("text", ["", "Error: context deadline exceeded", "[]",
                                  '{"count": 3}', '{"header": {}, "count": "3"}',
                                  '{"header": {}, "count": -1}'])
def test_answers_that_are_not_a_range_are_refused(text: str) -> None:
    with pytest.raises(CheckError):
        restorecheck.parse_count(text)


def test_node_names_come_from_the_keys_sorted() -> None:
    text = json.dumps({"header": HEADER, "count": 2, "kvs": [
        {"key": _b64("/registry/minions/w-1"), "create_revision": 9},
        {"key": _b64("/registry/minions/cp-1"), "create_revision": 5},
    ]})
    assert restorecheck.parse_node_names(text) == ("cp-1", "w-1")
    assert restorecheck.parse_node_names(json.dumps({"header": HEADER})) == ()


@pytest.mark.parametrize("key", ["/registry/pods/x", "/registry/minions/a/b"])
def test_a_key_outside_the_nodes_is_refused(key: str) -> None:
    text = json.dumps({"header": HEADER, "kvs": [{"key": _b64(key)}]})
    with pytest.raises(CheckError, match="is not under"):
        restorecheck.parse_node_names(text)


def test_a_key_that_is_not_base64_is_refused() -> None:
    with pytest.raises(CheckError, match="base64"):
        restorecheck.parse_node_names(json.dumps({"header": HEADER, "kvs": [{"key": "%%"}]}))


# --- the plan -------------------------------------------------------------------------------


def _plan_ctx(tmp_path: Path, verify: bool) -> PlanContext:
    names = ["cp-1", "cp-2", "w-1", "w-2"]
    members = {n: Member(n, True, n.startswith("cp")) for n in names}
    ctx = context(tmp_path, ClusterFacts(primary="cp-1", initialised=True, members=members),
                  dict.fromkeys(names, CONFIGURED))
    return dataclasses.replace(ctx, options=dataclasses.replace(
        ctx.options, snapshot_verify_restore=verify))


def test_the_plan_restores_on_the_primary_after_the_snapshot(tmp_path: Path) -> None:
    plan = make_plan(load_builtin("etcd-snapshot", STEPS), _plan_ctx(tmp_path, True))
    steps = actions(plan.to_json(), "snapshot")
    assert list(steps) == ["cp-1"]
    first, second = steps["cp-1"]
    assert first.startswith("etcdctl snapshot save")
    assert "restore it there with the node's etcd image" in second
    assert "/var/node/var/lib/k8slk-ops-verify-r1" in second
    assert "remove the container and the directory" in second


def test_without_the_flag_only_the_snapshot_is_planned(tmp_path: Path) -> None:
    plan = make_plan(load_builtin("etcd-snapshot", STEPS), _plan_ctx(tmp_path, False))
    (only,) = actions(plan.to_json(), "snapshot")["cp-1"]
    assert only.startswith("etcdctl snapshot save")


# --- the report and the metrics ---------------------------------------------------------------


def _report(check: RestoreCheck | None) -> RunReport:
    report = RunReport("etcd snapshot", "prod", "inv.yml",
                       started=datetime(2026, 12, 7, 6, 0, tzinfo=UTC),
                       ended=datetime(2026, 12, 7, 6, 1, tzinfo=UTC))
    report.nodes = [NodeReport("cp-1", "control-plane", "10.0.0.1", Outcome.UNCHANGED),
                    NodeReport("w-1", "worker", "10.0.0.2", Outcome.SKIPPED)]
    state = RunState(restore_check=check)
    note_etcd(report, state)
    return report


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name]


def test_a_verified_restore_is_a_message_a_row_and_two_metrics() -> None:
    check = RestoreCheck("cp-1", True, 412, ("cp-1", "w-1"))
    report = _report(check)
    line = "restore verified: 412 keys, 2 nodes (cp-1, w-1)"
    assert line in report.messages
    assert report.node("cp-1").message == line
    assert report.node("w-1").message == ""
    assert report.data["restoreCheck"] == {"node": "cp-1", "verified": True, "keys": 412,
                                           "nodes": ["cp-1", "w-1"], "error": ""}
    assert RestoreCheckRow(check).to_json()["restoreCheck"]["nodes"] == ["cp-1", "w-1"]
    text = metrics.render(report)
    run = {"command": "etcd snapshot", "cluster": "prod"}
    assert _samples(text, "k8slk_ops_etcd_snapshot_restore_verified") == [(run, 1.0)]
    assert _samples(text, "k8slk_ops_etcd_snapshot_restore_keys") == [(run, 412.0)]


def test_a_failed_check_is_a_zero_and_no_key_count() -> None:
    report = _report(RestoreCheck("cp-1", False, error="the restored etcd holds no keys"))
    assert "restore not verified: the restored etcd holds no keys" in report.messages
    text = metrics.render(report)
    run = {"command": "etcd snapshot", "cluster": "prod"}
    assert _samples(text, "k8slk_ops_etcd_snapshot_restore_verified") == [(run, 0.0)]
    assert _samples(text, "k8slk_ops_etcd_snapshot_restore_keys") == []


def test_no_check_no_restore_metric() -> None:
    report = _report(None)
    assert "restoreCheck" not in report.data
    assert _samples(metrics.render(report), "k8slk_ops_etcd_snapshot_restore_verified") == []


def test_the_log_excerpt_keeps_the_lines_that_say_why() -> None:
    refused = ("flag provided but not defined: -no-such-flag\n"
               "Usage:\n\n  etcd [flags]\n    Start an etcd server.\n\n"
               "  etcd gateway\n    Run the stateless pass-through etcd TCP proxy.\n")
    assert restorecheck.log_excerpt(refused, 5) == [
        "flag provided but not defined: -no-such-flag"]
    quiet = "".join(f"line {i}\n" for i in range(9))
    assert restorecheck.log_excerpt(quiet, 3) == ["line 6", "line 7", "line 8"]
    assert restorecheck.log_excerpt("", 3) == []
