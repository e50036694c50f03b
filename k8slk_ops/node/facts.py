"""Node facts: what a LinuxKit node says about itself, gathered in one SSH round trip.

The probe is one POSIX shell script (``FACTS_SCRIPT``) run in the node's SSH shell; it prints
``key=value`` lines plus prefixed sections (``task ``, ``log ``). Parsing that output is pure and
lives here, so it is tested without a node. Nothing is assumed about a node: versions, kubeadm
state and membership all come from here or from the cluster's own node list.

The kubeadm log is shipped so that ``kubeadm.KubeadmLogState``, the one reading of it, sees what
it needs: the latest attempt of this boot (from the script's last ``Waiting for ...`` or
``already has kubelet configuration`` line on), with every line of the script's own, however
long kubeadm's output in between, and of that output the newest ``LOG_CAP_BYTES`` (docs/node.md).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from k8slk_ops.base.nextstep import REBOOT, NextStep, Rerun
from k8slk_ops.kubeadm import (
    ATTEMPT_LINES,
    MARKER_LINES,
    KubeadmLogState,
    KubeadmState,
    log_message,
)
from k8slk_ops.node import paths

__all__ = [
    "FACTS_SCRIPT",
    "LOG_CAP_BYTES",
    "KubeadmState",
    "NodeFacts",
    "TaskState",
    "kubeadm_state",
    "log_probe",
    "parse_facts",
    "parse_tasks",
    "tasks_header",
]

# The minimums the image's README states.
MIN_CPUS = 2
MIN_MEMORY_BYTES = 3 * 1000 * 1000 * 1000

# At most this much of kubeadm's own output (the newest lines, whole lines, prefixes counted)
# travels with the facts. A real init prints 60-80 lines (about 6 KiB); the cap only bounds a
# runaway log (memlogd rotates the file at 1 MB), the script's own lines are always shipped.
LOG_CAP_BYTES = 64 * 1024


class TaskState(enum.StrEnum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    CREATED = "CREATED"
    PAUSED = "PAUSED"
    MISSING = "MISSING"
    UNKNOWN = "UNKNOWN"


def _awk_any(needles: Iterable[str]) -> str:
    """An awk condition true when the line holds any of ``needles`` (plain substrings)."""
    for needle in needles:
        if any(c in needle for c in "'\"\\\n"):
            raise ValueError(f"cannot quote {needle!r} for the probe")
    return " || ".join(f'index($0, "{needle}")' for needle in needles)


def log_probe(path: str, cap: int = LOG_CAP_BYTES) -> str:
    """The probe's log section: one awk pass over ``path``, printing ``log `` lines.

    awk only selects lines (a line *holding* a marker counts as one; the reading happens in
    Python): a line that starts an attempt forgets the lines before it; at the end the script's
    lines are printed, and kubeadm's lines newest first while they fit in ``cap`` bytes; older
    ones are left out and counted in ``log_cut=N``. One read of the file, so a log growing while
    it is read is never seen torn; ``LC_ALL=C`` makes ``length`` count bytes.
    """
    program = "; ".join(
        [
            f"{_awk_any(ATTEMPT_LINES)} {{ n = 0 }}",
            f"{{ line[++n] = $0; mark[n] = ({_awk_any(MARKER_LINES)}) }}",
            "END { room = cap; cut = 0; "
            "for (i = n; i > 0; i--) { show[i] = mark[i]; if (mark[i]) continue; "
            "size = length(line[i]) + 1; "
            "if (size <= room) { room -= size; show[i] = 1 } else { room = -1; cut++ } }; "
            'if (cut) print "log_cut=" cut; '
            'for (i = 1; i <= n; i++) if (show[i]) print "log " line[i] }',
        ]
    )
    return f"LC_ALL=C awk -v cap={int(cap)} '{program}' {path}"


FACTS_SCRIPT = f"""
exec 2>/dev/null
echo "cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "mem_kb=$(awk '/^MemTotal:/ {{print $2}}' /proc/meminfo)"
echo "hostname=$(cat /proc/sys/kernel/hostname)"
test -e {paths.MARKER} && echo marker=1 || echo marker=0
test -e {paths.ADMIN_CONF} && echo admin_conf=1 || echo admin_conf=0
test -e {paths.KUBEADM_YAML} && echo kubeadm_yaml=1 || echo kubeadm_yaml=0
test -e {paths.KUBEADM_RUN} && echo "kubeadm_run=$(head -c 64 {paths.KUBEADM_RUN} | tr -d '\\n')"
test -e {paths.LOCK_FILE} && echo "lock=$(head -c 512 {paths.LOCK_FILE} | tr '\\n' ' ')"
test -e {paths.REBUILD_MARKER} && echo "rebuild=$(head -c 128 {paths.REBUILD_MARKER} | tr '\\n' ' ')"
ctr --namespace {paths.CONTAINERD_NAMESPACE} tasks ls | sed 's/^/task /'
ctr --namespace {paths.CONTAINERD_NAMESPACE} tasks exec --exec-id "k8slk-facts-$$" kubelet \\
  kubeadm version -o short | sed 's/^/kubeadm_version=/'
{log_probe(paths.KUBEADM_LOG)}
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
    kubeadm_yaml: bool = False  # a config is waiting on the node (holds secrets when it does)
    kubeadm_run: str | None = None  # the trigger file's content, if present
    lock: str | None = None
    rebuild: str | None = None  # the marker of `etcd restore --pki` (etcdrebuild.py), if any
    tasks: dict[str, TaskState] = field(default_factory=dict)
    tasks_listed: bool = False  # ctr answered with its header: an absent task is missing
    kubeadm_version: str = ""
    log: list[str] = field(default_factory=list)  # this attempt's kubeadm.out.log lines, raw
    log_cut: int = 0  # older lines of kubeadm's output the probe left out (LOG_CAP_BYTES)

    @property
    def kubelet_running(self) -> bool:
        return self.tasks.get("kubelet") == TaskState.RUNNING

    @property
    def kubeadm_task(self) -> TaskState:
        """The kubeadm task's state; UNKNOWN when the listing came back empty (an empty list
        says nothing: only a listing with its header and no kubeadm row means MISSING)."""
        absent = TaskState.MISSING if self.tasks_listed else TaskState.UNKNOWN
        return self.tasks.get("kubeadm", absent)

    def incomplete(self) -> list[str]:
        """What the probe should have printed and did not: its output (or that of a command
        inside it) was lost. Empty when the facts are whole."""
        missing = []
        if not self.cpus or not self.hostname:
            missing.append("the node's resources")
        if not self.tasks_listed:
            missing.append("the task list")
        elif self.kubelet_running and not self.kubeadm_version:
            missing.append("kubeadm's version")
        return missing

    @property
    def messages(self) -> list[str]:
        return [log_message(line) for line in self.log]

    @property
    def kubeadm_state(self) -> KubeadmState:
        return kubeadm_state(self.kubeadm_task, self.log)

    def not_waiting(self, flag: str) -> str | None:
        """Why this node cannot be triggered with ``flag`` now, or None when it can.

        The trigger is one shot per boot: a node whose kubeadm is anything but waiting keeps
        its config and trigger as they are, whatever a run would write.
        """
        state = self.kubeadm_state
        if state is KubeadmState.WAITING:
            return None
        if state is KubeadmState.RUNNING:
            advice = (
                "it was triggered already (by a run that may have died): let that kubeadm "
                "end, then run again"
            )
        else:
            advice = "reset and reboot the node first"
        return (
            f"kubeadm on this node is {state.value}, not waiting for a trigger: it cannot "
            f"{flag} ({advice})"
        )

    def not_waiting_next_step(self, rerun: Rerun) -> NextStep:
        """What to do about a node :meth:`not_waiting` refused: wait for a running kubeadm, or
        undo what the last one left and give the node the boot kubeadm needs to run again."""
        if self.kubeadm_state is KubeadmState.RUNNING:
            return NextStep.then(
                "let the kubeadm that runs end (follow /var/log/kubeadm.out.log on the node)",
                rerun.join)
        return NextStep.then(f"reset the node (`{rerun.reset()}`) and {REBOOT}", rerun.join)

    def resource_warnings(self) -> list[str]:
        out = []
        if self.cpus and self.cpus < MIN_CPUS:
            out.append(f"{self.cpus} CPU(s), the image needs at least {MIN_CPUS}")
        if self.memory_bytes and self.memory_bytes < MIN_MEMORY_BYTES:
            gb = self.memory_bytes / 1e9
            out.append(f"{gb:.1f} GB of memory, the image needs at least 3 GB")
        return out


def kubeadm_state(task: TaskState, log: Iterable[str]) -> KubeadmState:
    """The kubeadm state from the task's state and this boot's log lines (pure).

    The log is read by ``KubeadmLogState``; the task adds what the log cannot say: a missing
    task, and a stopped one that never printed the completed line (failed). A running task that
    printed nothing yet is about to wait for its trigger; a waiting script whose task does not
    run is not waiting for anything.
    """
    if task == TaskState.MISSING:
        return KubeadmState.MISSING
    state = KubeadmLogState()
    state.feed_all(list(log))
    if task == TaskState.STOPPED:
        state.task_stopped()
    if state.phase is KubeadmState.UNKNOWN and task == TaskState.RUNNING:
        return KubeadmState.WAITING
    if state.phase is KubeadmState.WAITING and task != TaskState.RUNNING:
        return KubeadmState.UNKNOWN
    return state.phase


def tasks_header(lines: list[str]) -> bool:
    """Whether ``ctr tasks ls`` output holds its header (ctr answered, even with no task)."""
    return any(line.split()[:1] == ["TASK"] for line in lines)


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
        elif key in ("marker", "admin_conf", "kubeadm_yaml"):
            setattr(facts, key, value == "1")
        elif key == "kubeadm_run":
            facts.kubeadm_run = value
        elif key == "lock":
            facts.lock = value
        elif key == "rebuild":
            facts.rebuild = value
        elif key == "log_cut":
            facts.log_cut = _int(value)
        elif key == "kubeadm_version" and value:
            facts.kubeadm_version = value
    facts.tasks = parse_tasks(task_lines)
    facts.tasks_listed = tasks_header(task_lines)
    return facts


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0
