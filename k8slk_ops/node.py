"""The LinuxKit node as k8slk-ops drives it: kubelet exec, trigger files, the kubeadm log, facts.

This layer knows the node contract (paths, the trigger script, the log format, ``ctr``) and
nothing of playbooks; it knows asyncssh only through ``k8slk_ops.ssh.Connection``. Every
``ctr tasks exec`` gets a fresh exec ID (a reused one that is still running fails with
``already exists``), files are written atomically over an exec channel (the node has no SFTP),
and values reach the remote shell as argv (quoted) or as stdin, never spliced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from k8slk_ops import paths
from k8slk_ops.facts import FACTS_SCRIPT, NodeFacts, TaskState, parse_facts, parse_tasks
from k8slk_ops.kubeadm import (
    COMPLETED_LINE,
    CONFIGURED_LINE,
    UNKNOWN_FLAG,
    FailureKind,
    diagnose_kubeadm_error,
    log_message,
)
from k8slk_ops.ssh import CommandResult, Connection

log = logging.getLogger("k8slk_ops.node")

# Write to a temp file beside the target, then rename: a reader never sees half a file.
LineCallback = Callable[[str], None]

_ATOMIC_WRITE = (
    'set -e; umask 077; t="$1.k8slk-$$"; trap \'rm -f "$t"\' EXIT; '
    'cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"; trap - EXIT'
)

_KUBEADM_ERROR_MARKERS = ("error execution phase", "error: ", "[ERROR ")


@dataclass(frozen=True)
class KubeadmResult:
    """How one triggered kubeadm run ended on a node."""

    ok: bool
    reason: str
    lines: list[str]  # this run's log messages (without the timestamp prefix)

    def tail(self, n: int = 15) -> list[str]:
        return self.lines[-n:]


class NodeCommandError(Exception):
    """A command on the node failed; carries what it printed (never its stdin)."""

    def __init__(self, what: str, result: CommandResult):
        detail = (result.stderr or result.stdout).decode(errors="replace").strip()
        super().__init__(f"{what} failed (exit {result.exit_status}): {detail[-500:]}")
        self.result = result


class LinuxKitNode:
    """One node reached over one SSH connection for the whole run."""

    def __init__(self, name: str, address: str, conn: Connection) -> None:
        self.name = name
        self.address = address
        self.conn = conn

    # -- commands -----------------------------------------------------------------------------

    async def shell(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float | None = None
    ) -> CommandResult:
        """Run argv in the node's SSH shell (the sshd container)."""
        return await self.conn.run(list(argv), input=input, timeout=timeout)

    async def kubelet_exec(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float | None = None
    ) -> CommandResult:
        """Run argv inside the kubelet container, with a unique exec ID."""
        exec_id = f"k8slk-{uuid.uuid4().hex[:16]}"
        cmd = [
            "ctr",
            "--namespace",
            paths.CONTAINERD_NAMESPACE,
            "tasks",
            "exec",
            "--exec-id",
            exec_id,
            paths.KUBELET_TASK,
            *argv,
        ]
        return await self.conn.run(cmd, input=input, timeout=timeout)

    async def kubectl(self, *args: str, timeout: float | None = 60) -> CommandResult:
        return await self.kubelet_exec(["kubectl", *args], timeout=timeout)

    async def kubeadm(self, *args: str, timeout: float | None = 120) -> CommandResult:
        return await self.kubelet_exec(["kubeadm", *args], timeout=timeout)

    # -- files --------------------------------------------------------------------------------

    async def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Write ``data`` to ``path`` atomically (temp file, chmod, rename) via stdin."""
        result = await self.shell(["sh", "-c", _ATOMIC_WRITE, "sh", path, f"{mode:o}"], input=data)
        if result.exit_status != 0:
            raise NodeCommandError(f"writing {path} on {self.name}", result)

    async def read_file(self, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        result = await self.shell(["sh", "-c", 'test -e "$1" || exit 3; cat "$1"', "sh", path])
        if result.exit_status == 3:
            return None
        if result.exit_status != 0:
            raise NodeCommandError(f"reading {path} on {self.name}", result)
        return result.stdout

    async def remove_file(self, path: str) -> None:
        await self.shell(["rm", "-f", path])

    # -- facts --------------------------------------------------------------------------------

    async def facts(self) -> NodeFacts:
        """Everything the planner needs about this node, in one round trip."""
        result = await self.shell(["sh", "-c", FACTS_SCRIPT], timeout=60)
        return parse_facts(result.stdout.decode(errors="replace"))

    async def tasks(self) -> dict[str, TaskState]:
        result = await self.shell(["ctr", "--namespace", paths.CONTAINERD_NAMESPACE, "tasks", "ls"])
        return parse_tasks(result.stdout.decode(errors="replace").splitlines())

    # -- the trigger ----------------------------------------------------------------------------

    async def trigger(self, flag: str) -> None:
        """Write ``init`` or ``join`` into the trigger file (no newline, as the image expects)."""
        if flag not in ("init", "join"):
            raise ValueError(f"unknown kubeadm flag {flag!r}")
        await self.write_file(paths.KUBEADM_RUN, flag.encode(), 0o644)

    def follow_log(self) -> AsyncIterator[str]:
        """This boot's kubeadm log, from its first line, as it grows (``tail -F``)."""
        cmd = f"tail -n +1 -F {shlex.quote(paths.KUBEADM_LOG)} 2>/dev/null"
        return self.conn.stream_lines(cmd)

    async def wait_kubeadm(
        self, flag: str, *, timeout: float, on_line: LineCallback | None = None
    ) -> KubeadmResult:
        """Follow the log after a trigger until kubeadm completes or fails, or ``timeout``.

        Success is only the ``kubeadm has completed`` line. Failure is the task stopping without
        it (``sh -e`` ends the script at kubeadm's error) or an unknown-flag line. We react to
        log lines as they stream; the task state is polled only to catch a silent stop, with
        backoff, and right away when an error line shows up.
        """
        lines: list[str] = []
        error_seen = asyncio.Event()
        done: asyncio.Future[KubeadmResult] = asyncio.get_running_loop().create_future()

        async def reader() -> None:
            started = False
            async for raw in self.follow_log():
                msg = log_message(raw)
                if msg.startswith("Found kubeadm flag"):
                    started = True
                if not started and not msg.startswith(CONFIGURED_LINE):
                    continue
                lines.append(msg)
                if on_line is not None:
                    on_line(msg)
                if msg.startswith(COMPLETED_LINE):
                    _settle(done, KubeadmResult(True, "completed", lines))
                    return
                if msg.startswith(CONFIGURED_LINE):
                    reason = "node already has kubelet configuration"
                    _settle(done, KubeadmResult(False, reason, lines))
                    return
                if msg.startswith(UNKNOWN_FLAG):
                    _settle(done, KubeadmResult(False, msg, lines))
                    return
                if msg.lstrip().startswith(_KUBEADM_ERROR_MARKERS):
                    error_seen.set()

        async def watcher() -> None:
            delay = 0.5
            while not done.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(error_seen.wait(), delay)
                delay = min(delay * 1.5, 5.0)
                tasks = await self.tasks()
                if tasks.get(paths.KUBEADM_TASK) in (TaskState.STOPPED, None):
                    # Give the reader a moment to deliver the lines written just before the stop.
                    await asyncio.sleep(0.3)
                    if not done.done():
                        _settle(done, KubeadmResult(False, _failure_reason(lines), lines))
                    return

        jobs = [asyncio.create_task(reader()), asyncio.create_task(watcher())]
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            reason = f"kubeadm {flag} did not finish within {timeout:.0f}s"
            return KubeadmResult(False, reason, lines)
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)


def _settle(fut: asyncio.Future[KubeadmResult], value: KubeadmResult) -> None:
    if not fut.done():
        fut.set_result(value)


# Failures whose cause kubeadm's own line does not say plainly: reported by their cause.
_NAMED_CAUSES = (FailureKind.BAD_TOKEN, FailureKind.CA_PIN_MISMATCH, FailureKind.CERTIFICATE_KEY)


def _failure_reason(lines: list[str]) -> str:
    diagnosis = diagnose_kubeadm_error(lines)
    if diagnosis.kind in _NAMED_CAUSES:
        return diagnosis.reason
    for msg in reversed(lines):
        text = msg.strip()
        if text.startswith(("error execution phase", "error: error execution phase")):
            return text
    for msg in reversed(lines):
        if msg.strip().startswith("[ERROR"):
            return msg.strip()
    if lines:
        return f"kubeadm stopped without completing; last line: {lines[-1].strip()}"
    return "the kubeadm task stopped without completing"
