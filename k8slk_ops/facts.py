"""Node facts: what a LinuxKit node says about itself, gathered in one SSH round trip.

The probe is one POSIX shell script (``FACTS_SCRIPT``) run in the node's SSH shell; it prints
``key=value`` lines plus prefixed sections (``task ``, ``log ``). Parsing that output is pure and
lives here, so it is tested without a node. Nothing is assumed about a node: versions, kubeadm
state and membership all come from here or from the cluster's own node list.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from k8slk_ops import paths
from k8slk_ops.kubeadm import (
    COMPLETED_LINE,
    CONFIGURED_LINE,
    FOUND_FLAG,
    SETTLING_LINE,
    log_message,
)

# The minimums the image's README states.
MIN_CPUS = 2
MIN_MEMORY_BYTES = 3 * 1000 * 1000 * 1000


class TaskState(enum.StrEnum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    CREATED = "CREATED"
    PAUSED = "PAUSED"
    MISSING = "MISSING"
    UNKNOWN = "UNKNOWN"


class KubeadmState(enum.StrEnum):
    """Where the node's one-shot kubeadm task is, read from its task state and its log."""

    WAITING = "waiting"  # polling for /run/kubeadm-run: can be triggered
    RUNNING = "running"  # triggered; kubeadm running (or settling)
    COMPLETED = "completed"  # "kubeadm has completed" in this boot's log
    CONFIGURED = "configured"  # the marker was there at boot: kubeadm never ran this boot
    FAILED = "failed"  # task stopped without the completed line
    MISSING = "missing"  # no kubeadm task at all
    UNKNOWN = "unknown"


FACTS_SCRIPT = f"""
exec 2>/dev/null
echo "cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "mem_kb=$(awk '/^MemTotal:/ {{print $2}}' /proc/meminfo)"
echo "hostname=$(cat /proc/sys/kernel/hostname)"
test -e {paths.MARKER} && echo marker=1 || echo marker=0
test -e {paths.ADMIN_CONF} && echo admin_conf=1 || echo admin_conf=0
test -e {paths.CA_CERT} && echo ca_cert=1 || echo ca_cert=0
test -e {paths.KUBEADM_YAML} && echo kubeadm_yaml=1 || echo kubeadm_yaml=0
test -e {paths.KUBEADM_RUN} && echo "kubeadm_run=$(head -c 64 {paths.KUBEADM_RUN} | tr -d '\\n')"
test -e {paths.LOCK_FILE} && echo "lock=$(head -c 512 {paths.LOCK_FILE} | tr '\\n' ' ')"
ctr --namespace {paths.CONTAINERD_NAMESPACE} tasks ls | sed 's/^/task /'
ctr --namespace {paths.CONTAINERD_NAMESPACE} tasks exec --exec-id "k8slk-facts-$$" kubelet \
  kubeadm version -o short | sed 's/^/kubeadm_version=/'
tail -n 40 {paths.KUBEADM_LOG} | sed 's/^/log /'
true
"""


@dataclass
class NodeFacts:
    """Facts of one node, as of the moment they were gathered."""

    cpus: int = 0
    memory_bytes: int = 0
    hostname: str = ""
    marker: bool = False  # /var/lib/kubelet/config.yaml: kubeadm got as far as kubelet-start
    admin_conf: bool = False
    ca_cert: bool = False
    kubeadm_yaml: bool = False  # a config is waiting on the node (holds secrets when it does)
    kubeadm_run: str | None = None  # the trigger file's content, if present
    lock: str | None = None
    tasks: dict[str, TaskState] = field(default_factory=dict)
    kubeadm_version: str = ""
    log: list[str] = field(default_factory=list)  # last lines of kubeadm.out.log, raw

    @property
    def kubelet_running(self) -> bool:
        return self.tasks.get("kubelet") == TaskState.RUNNING

    @property
    def kubeadm_task(self) -> TaskState:
        return self.tasks.get("kubeadm", TaskState.MISSING)

    @property
    def messages(self) -> list[str]:
        return [log_message(line) for line in self.log]

    @property
    def kubeadm_state(self) -> KubeadmState:
        return kubeadm_state(self.kubeadm_task, self.messages)

    def resource_warnings(self) -> list[str]:
        out = []
        if self.cpus and self.cpus < MIN_CPUS:
            out.append(f"{self.cpus} CPU(s), the image needs at least {MIN_CPUS}")
        if self.memory_bytes and self.memory_bytes < MIN_MEMORY_BYTES:
            gb = self.memory_bytes / 1e9
            out.append(f"{gb:.1f} GB of memory, the image needs at least 3 GB")
        return out


def kubeadm_state(task: TaskState, messages: list[str]) -> KubeadmState:
    """Decide the kubeadm state from the task and this boot's log messages (pure)."""
    if task == TaskState.MISSING:
        return KubeadmState.MISSING
    if any(m.startswith(COMPLETED_LINE) for m in messages):
        return KubeadmState.COMPLETED
    if any(m.startswith(CONFIGURED_LINE) for m in messages):
        return KubeadmState.CONFIGURED
    if task == TaskState.STOPPED:
        return KubeadmState.FAILED
    if any(m.startswith(FOUND_FLAG) or m.startswith(SETTLING_LINE) for m in messages):
        return KubeadmState.RUNNING
    if task == TaskState.RUNNING:
        return KubeadmState.WAITING
    return KubeadmState.UNKNOWN


def parse_tasks(lines: list[str]) -> dict[str, TaskState]:
    """Parse ``ctr tasks ls`` (``TASK PID STATUS`` columns)."""
    tasks: dict[str, TaskState] = {}
    for line in lines:
        cols = line.split()
        if len(cols) < 3 or cols[0] == "TASK":
            continue
        try:
            tasks[cols[0]] = TaskState(cols[-1].upper())
        except ValueError:
            tasks[cols[0]] = TaskState.UNKNOWN
    return tasks


def parse_facts(stdout: str) -> NodeFacts:
    """Turn the probe's output into :class:`NodeFacts`; unknown lines are ignored."""
    facts = NodeFacts()
    task_lines: list[str] = []
    for raw in stdout.splitlines():
        if raw.startswith("task "):
            task_lines.append(raw[5:])
            continue
        if raw.startswith("log "):
            facts.log.append(raw[4:])
            continue
        key, sep, value = raw.partition("=")
        if not sep:
            continue
        value = value.strip()
        if key == "cpus":
            facts.cpus = _int(value)
        elif key == "mem_kb":
            facts.memory_bytes = _int(value) * 1024
        elif key == "hostname":
            facts.hostname = value
        elif key in ("marker", "admin_conf", "ca_cert", "kubeadm_yaml"):
            setattr(facts, key, value == "1")
        elif key == "kubeadm_run":
            facts.kubeadm_run = value
        elif key == "lock":
            facts.lock = value
        elif key == "kubeadm_version" and value:
            facts.kubeadm_version = value
    facts.tasks = parse_tasks(task_lines)
    return facts


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0
