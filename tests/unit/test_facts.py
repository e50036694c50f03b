"""The node probe's output parsed into facts, and kubeadm's state read from task + log."""

from __future__ import annotations

from k8slk_ops.facts import (
    KubeadmState,
    TaskState,
    kubeadm_state,
    parse_facts,
    parse_tasks,
)
from k8slk_ops.kubeadm import log_message

PROBE = """\
cpus=2
mem_kb=3906250
hostname=node-a
marker=0
admin_conf=0
ca_cert=0
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
    assert facts.kubeadm_state == KubeadmState.MISSING


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
