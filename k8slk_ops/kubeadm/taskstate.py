"""Where a node's one-shot kubeadm task is: the one reading of its log lines (docs/node.md).

``KubeadmLogState`` is fed the log line by line (from ``tail -F``, from a file read at once, or
from what the facts probe shipped) and keeps the state of the latest attempt. It does no I/O, so
the same rules serve the live follow of a trigger, the facts every run and ``status`` start
from, the init and join guards, and the tests. ``KubeadmState`` is the one vocabulary for it:
what ``status`` shows, what a playbook's ``when: {kubeadmState: ...}`` matches.
"""

from __future__ import annotations

import collections
import enum

from k8slk_ops.kubeadm.failures import KubeadmFailure, diagnose_kubeadm_error
from k8slk_ops.kubeadm.logs import (
    COMPLETED_LINE,
    CONFIGURED_LINE,
    FOUND_FLAG,
    SETTLING_LINE,
    UNKNOWN_FLAG,
    WAITING_LINE,
    log_message,
)


class KubeadmState(enum.StrEnum):
    """Where the node's one-shot kubeadm task is, from its log and (in the facts) its task."""

    WAITING = "waiting"  # polling for the trigger file: can be triggered
    RUNNING = "running"  # triggered: settling before reading the flag, or kubeadm running
    COMPLETED = "completed"  # "kubeadm has completed" in this attempt's log: the only success
    CONFIGURED = "configured"  # the marker was there at boot: kubeadm never runs this boot
    FAILED = "failed"  # stopped without the completed line, or an unknown flag
    MISSING = "missing"  # no kubeadm task at all (only the task listing says so)
    UNKNOWN = "unknown"  # nothing from the script yet, or a task state that says nothing


TERMINAL = frozenset({KubeadmState.COMPLETED, KubeadmState.FAILED, KubeadmState.CONFIGURED})

# How kubeadm init's phases after upload-config begin their lines. By then its API server
# answers and admin.conf's user has its rights: from v1.29 that user is only in the
# kubeadm:cluster-admins group, which init binds to cluster-admin (through super-admin.conf) when
# upload-config first needs a client; a kubectl with admin.conf before that is Forbidden.
PAST_UPLOAD_CONFIG = (
    "[upload-certs]",
    "[mark-control-plane]",
    "[bootstrap-token]",
    "[kubelet-finalize]",
    "[addons]",
)


class KubeadmLogState:
    """A state machine fed the kubeadm log line by line.

    A new ``Waiting for ...`` line starts a new attempt (the task was restarted), so feeding a
    whole log leaves the state of the latest attempt. ``RUNNING`` with no ``flag`` yet is the
    script's 5 s settle after the trigger appeared. The last ``keep`` messages are kept for
    error reports; kubeadm's own output of the current attempt is kept (bounded) to name the
    reason of a failure.
    """

    def __init__(self, keep: int = 40, keep_output: int = 400) -> None:
        self.phase = KubeadmState.UNKNOWN
        self.flag: str | None = None
        self.reason: str | None = None
        # kubeadm's own failure, when it ran and failed (its kind says what to do next).
        self.failure: KubeadmFailure | None = None
        # kubeadm init of this attempt is past upload-config: its admin may use the API.
        self.admin_api = False
        self._tail: collections.deque[str] = collections.deque(maxlen=keep)
        self._output: collections.deque[str] = collections.deque(maxlen=keep_output)

    @property
    def tail(self) -> list[str]:
        """The last messages seen (without their time and source prefix)."""
        return list(self._tail)

    @property
    def output(self) -> list[str]:
        """What kubeadm itself printed in the current attempt."""
        return list(self._output)

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL

    @property
    def ok(self) -> bool:
        return self.phase is KubeadmState.COMPLETED

    @property
    def failed(self) -> bool:
        return self.phase is KubeadmState.FAILED

    @property
    def settling(self) -> bool:
        """The trigger was seen and the script has not read the flag yet."""
        return self.phase is KubeadmState.RUNNING and self.flag is None

    def feed(self, line: str) -> KubeadmState:
        """Take one log line (with or without its prefix); return the state after it."""
        message = log_message(line)
        self._tail.append(message)
        if message.startswith(WAITING_LINE):
            self.phase = KubeadmState.WAITING
            self.flag = self.reason = self.failure = None
            self.admin_api = False
            self._output.clear()
        elif message.startswith(CONFIGURED_LINE):
            self.phase = KubeadmState.CONFIGURED
            self.reason = "the node already has kubelet configuration: kubeadm will not run"
        elif message.startswith(SETTLING_LINE) and self.phase in (
            KubeadmState.UNKNOWN,
            KubeadmState.WAITING,
        ):
            self.phase = KubeadmState.RUNNING
        elif message.startswith(FOUND_FLAG) and not self.done:
            self.phase = KubeadmState.RUNNING
            self.flag = message[len(FOUND_FLAG) :]
        elif message.startswith(UNKNOWN_FLAG) and not self.done:
            self.phase = KubeadmState.FAILED
            self.flag = message[len(UNKNOWN_FLAG) :]
            self.reason = (
                f"unknown kubeadm flag {self.flag!r}: the trigger file must hold init or join"
            )
        elif message.startswith(COMPLETED_LINE) and self.phase is not KubeadmState.FAILED:
            self.phase = KubeadmState.COMPLETED
            self.reason = None
        elif self.phase is KubeadmState.RUNNING and self.flag is not None:
            self._output.append(message)
            if self.flag == "init" and message.startswith(PAST_UPLOAD_CONFIG):
                self.admin_api = True
        return self.phase

    def feed_all(self, lines: list[str] | str) -> KubeadmState:
        """Feed many lines (a list, or one text to split)."""
        for line in lines.splitlines() if isinstance(lines, str) else lines:
            self.feed(line)
        return self.phase

    def task_stopped(self) -> KubeadmState:
        """The caller saw the kubeadm task STOPPED: without the completed line, that is failure.

        ``kubeadm.sh`` runs under ``sh -e``: a failing kubeadm ends the script silently, so the
        stop itself is the failure signal and kubeadm's output says why.
        """
        if self.phase is KubeadmState.RUNNING and self.flag is not None:
            self.phase = KubeadmState.FAILED
            self.failure = diagnose_kubeadm_error(self.output)
            self.reason = self.failure.reason
        elif self.phase in (KubeadmState.WAITING, KubeadmState.RUNNING):
            self.phase = KubeadmState.FAILED
            self.reason = "the kubeadm task stopped before kubeadm ran"
        elif self.phase is KubeadmState.UNKNOWN:
            self.phase = KubeadmState.FAILED
            self.reason = "the kubeadm task stopped without a line in its log"
        return self.phase
