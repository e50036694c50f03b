"""The node probe's output parsed into facts, and kubeadm's state read from task + log."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from k8slk_ops.kubeadm import log_message
from k8slk_ops.node import paths
from k8slk_ops.node.facts import (
    FACTS_SCRIPT,
    LOG_CAP_BYTES,
    KubeadmState,
    NodeFacts,
    TaskState,
    kubeadm_state,
    log_probe,
    parse_facts,
    parse_tasks,
)

PROBE = """\
cpus=2
mem_kb=3906250
hostname=node-a
marker=0
admin_conf=0
kubeadm_yaml=1
kubeadm_run=join
task TASK       PID     STATUS
task kubeadm    4242    RUNNING
task kubelet    4100    RUNNING
kubeadm_version=v1.31.3
log 2026-11-25T06:00:00Z kubeadm.out Waiting for /run/kubeadm-run to exist before running kubeadm commands
log 2026-11-25T06:00:09Z kubeadm.out sleeping a bit more to make sure file is written
log 2026-11-25T06:00:14Z kubeadm.out Found kubeadm flag join
"""


def test_probe_output_becomes_facts() -> None:
    facts = parse_facts(PROBE)
    assert facts.cpus == 2
    assert facts.memory_bytes == 3906250 * 1024
    assert facts.kubeadm_yaml is True
    assert facts.marker is False
    assert facts.kubeadm_run == "join"
    assert facts.kubeadm_version == "v1.31.3"
    assert facts.tasks == {"kubeadm": TaskState.RUNNING, "kubelet": TaskState.RUNNING}
    assert facts.kubelet_running
    assert facts.kubeadm_state == KubeadmState.RUNNING
    assert facts.messages[-1] == "Found kubeadm flag join"


def test_resource_minimums_warn() -> None:
    facts = parse_facts("cpus=1\nmem_kb=1000000\n")
    warnings = facts.resource_warnings()
    assert any("1 CPU" in w for w in warnings)
    assert any("3 GB" in w for w in warnings)
    assert parse_facts("cpus=4\nmem_kb=8000000\n").resource_warnings() == []


def test_garbage_is_ignored() -> None:
    facts = parse_facts("nonsense\n=\ncpus=x\nkubeadm_version=\n")
    assert facts.cpus == 0
    assert facts.kubeadm_version == ""
    assert facts.kubeadm_state == KubeadmState.UNKNOWN  # no task list: nothing is known
    assert "the task list" in facts.incomplete()


def test_an_empty_task_list_is_unknown_and_a_listing_without_kubeadm_is_missing() -> None:
    empty = parse_facts("cpus=2\nhostname=w-1\n")
    assert empty.kubeadm_task == TaskState.UNKNOWN and empty.kubeadm_state == KubeadmState.UNKNOWN
    listed = parse_facts("cpus=2\nhostname=w-1\ntask TASK PID STATUS\n"
                         "task kubelet 10 RUNNING\nkubeadm_version=v1.31.2\n")
    assert listed.kubeadm_task == TaskState.MISSING and listed.incomplete() == []
    lost_version = parse_facts("cpus=2\nhostname=w-1\ntask TASK PID STATUS\n"
                               "task kubelet 10 RUNNING\n")
    assert lost_version.incomplete() == ["kubeadm's version"]


def test_log_message_strips_the_prefix_only_when_present() -> None:
    assert log_message("2019-09-16T21:03:16Z kubeadm.out kubeadm has completed") == (
        "kubeadm has completed"
    )
    assert log_message("plain text line") == "plain text line"
    assert log_message("2019-09-16T21:03:16Z kubeadm.out") == ""


def test_kubeadm_states() -> None:
    waiting = ["Waiting for /run/kubeadm-run to exist before running kubeadm commands"]
    assert kubeadm_state(TaskState.RUNNING, waiting) == KubeadmState.WAITING
    done = [*waiting, "Found kubeadm flag init", "kubeadm has completed... removing configuration"]
    assert kubeadm_state(TaskState.STOPPED, done) == KubeadmState.COMPLETED
    failed = [*waiting, "Found kubeadm flag join", "error execution phase preflight: x"]
    assert kubeadm_state(TaskState.STOPPED, failed) == KubeadmState.FAILED
    configured = ["Kubernetes Node already has kubelet configuration"]
    assert kubeadm_state(TaskState.STOPPED, configured) == KubeadmState.CONFIGURED
    assert kubeadm_state(TaskState.MISSING, []) == KubeadmState.MISSING


def test_parse_tasks_accepts_unknown_states() -> None:
    tasks = parse_tasks(["TASK PID STATUS", "kubelet 1 RUNNING", "kubeadm 2 WEIRD", "short"])
    assert tasks == {"kubelet": TaskState.RUNNING, "kubeadm": TaskState.UNKNOWN}


# -- the log section of the probe, run for real (awk) on logs written here ------------------

T = "2026-11-25T06:00:{:02d}Z kubeadm.out {}"
WAITING = "Waiting for /run/kubeadm-run to exist before running kubeadm commands"
SETTLING = "sleeping a bit more to make sure file is written"
COMPLETED = "kubeadm has completed... removing configuration"
CONFIGURED = "Kubernetes Node already has kubelet configuration"


def init_log(printed: int, *, flag: str = "init") -> list[str]:
    """A boot's log: waiting, the trigger, the flag, then ``printed`` lines of kubeadm."""
    head = [T.format(0, WAITING), T.format(9, SETTLING), T.format(14, f"Found kubeadm flag {flag}")]
    return head + [
        T.format(15, f"[wait-control-plane] I1125 06:00:15.{i:06d} round_trippers.go:553] "
                 "GET https://10.0.0.11:6443/healthz?timeout=10s  in 0 milliseconds")
        for i in range(printed)
    ]


def probe_log(tmp_path: Path, lines: list[str], cap: int = LOG_CAP_BYTES) -> NodeFacts:
    """The facts the probe's log section gives for ``lines`` (plus a task listing)."""
    path = tmp_path / "kubeadm.out.log"
    path.write_text("".join(line + "\n" for line in lines))
    done = subprocess.run(["sh", "-c", log_probe(str(path), cap)], capture_output=True,
                          text=True, check=True)
    return parse_facts(done.stdout)


@pytest.mark.parametrize("printed", [41, 120, 300])
def test_a_long_running_init_reads_as_running(tmp_path: Path, printed: int) -> None:
    facts = probe_log(tmp_path, init_log(printed))
    assert len(facts.log) == printed + 3 and facts.log_cut == 0
    assert kubeadm_state(TaskState.RUNNING, facts.log) == KubeadmState.RUNNING
    # what the probe used to ship, the last 40 lines, had lost the trigger
    assert kubeadm_state(TaskState.RUNNING, init_log(printed)[-40:]) == KubeadmState.WAITING


def test_the_byte_cap_keeps_the_newest_output_and_every_script_line(tmp_path: Path) -> None:
    lines = [*init_log(120), T.format(59, COMPLETED)]
    facts = probe_log(tmp_path, lines, cap=2000)
    size = sum(len(line) + 1 for line in facts.log if "round_trippers" in line)
    assert 0 < size <= 2000
    assert facts.log_cut > 0 and len(facts.log) + facts.log_cut == len(lines)
    assert facts.log[:3] == lines[:3] and facts.log[-2:] == lines[-2:]  # whole, newest lines
    assert kubeadm_state(TaskState.STOPPED, facts.log) == KubeadmState.COMPLETED
    running = probe_log(tmp_path, init_log(120), cap=500)
    assert kubeadm_state(TaskState.RUNNING, running.log) == KubeadmState.RUNNING
    assert probe_log(tmp_path, init_log(120)).log_cut == 0  # 120 real lines are far below it


def test_only_the_latest_attempt_travels(tmp_path: Path) -> None:
    old = [*init_log(50, flag="join"), T.format(30, COMPLETED)]
    facts = probe_log(tmp_path, [*old, T.format(40, WAITING)])
    assert facts.messages == [WAITING]
    assert kubeadm_state(TaskState.RUNNING, facts.log) == KubeadmState.WAITING


@pytest.mark.parametrize(
    ("task", "messages", "state"),
    [
        (TaskState.RUNNING, [WAITING], KubeadmState.WAITING),
        (TaskState.RUNNING, [], KubeadmState.WAITING),  # about to print its first line
        (TaskState.RUNNING, [WAITING, SETTLING], KubeadmState.RUNNING),
        (TaskState.RUNNING, [WAITING, SETTLING, "Found kubeadm flag join"], KubeadmState.RUNNING),
        (TaskState.STOPPED, [WAITING, "Found kubeadm flag init", COMPLETED],
         KubeadmState.COMPLETED),
        (TaskState.STOPPED, [CONFIGURED], KubeadmState.CONFIGURED),
        (TaskState.STOPPED, [WAITING, "Found kubeadm flag init", "boom"], KubeadmState.FAILED),
        (TaskState.STOPPED, [WAITING, SETTLING, "Unknown kubeadm flag init "],
         KubeadmState.FAILED),
        (TaskState.STOPPED, [WAITING], KubeadmState.FAILED),
        (TaskState.MISSING, [WAITING], KubeadmState.MISSING),
        (TaskState.PAUSED, [WAITING], KubeadmState.UNKNOWN),
        (TaskState.PAUSED, [WAITING, "Found kubeadm flag init"], KubeadmState.RUNNING),
    ],
)
def test_each_state_through_the_probe(
    tmp_path: Path, task: TaskState, messages: list[str], state: KubeadmState
) -> None:
    lines = [T.format(i, m) for i, m in enumerate(messages)]
    facts = probe_log(tmp_path, lines)
    assert facts.messages == messages
    assert kubeadm_state(task, facts.log) == state


def test_the_facts_script_carries_the_log_section() -> None:
    assert log_probe(paths.KUBEADM_LOG) in FACTS_SCRIPT
    assert "tail -n" not in FACTS_SCRIPT  # no line-count cut of the log


def test_only_a_waiting_node_may_be_triggered(tmp_path: Path) -> None:
    running = probe_log(tmp_path, init_log(120))
    running.tasks = {"kubeadm": TaskState.RUNNING}
    refused = running.not_waiting("init")
    assert refused is not None
    assert refused.startswith("kubeadm on this node is running, not waiting for a trigger")
    assert "triggered already" in refused
    failed = parse_facts(f"task kubeadm 1 STOPPED\nlog {WAITING}\nlog Found kubeadm flag join\n")
    assert "failed" in (failed.not_waiting("join") or "")
    assert "reset and reboot" in (failed.not_waiting("join") or "")
    waiting = parse_facts(f"task kubeadm 1 RUNNING\nlog {WAITING}\n")
    assert waiting.not_waiting("join") is None
