"""The LinuxKit node as k8slk-ops drives it: kubelet exec, trigger files, the kubeadm log, facts.

This layer knows the node (docs/node.md: paths, the trigger script, the log format, ``ctr``) and
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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from k8slk_ops import paths
from k8slk_ops.facts import FACTS_SCRIPT, NodeFacts, TaskState, parse_facts, parse_tasks
from k8slk_ops.kubeadm import (
    TAIL_LINES,
    KubeadmLogState,
    failure_summary,
    failure_tail,
    looks_like_error,
)
from k8slk_ops.ssh import CommandResult, Connection, ConnectionLost

log = logging.getLogger("k8slk_ops.node")

# Write to a temp file beside the target, then rename: a reader never sees half a file.
_ATOMIC_WRITE = (
    'set -e; umask 077; t="$1.k8slk-$$"; trap \'rm -f "$t"\' EXIT; '
    'cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"; trap - EXIT'
)


@dataclass(frozen=True)
class KubeadmResult:
    """How one triggered kubeadm run ended on a node."""

    ok: bool
    reason: str
    output: list[str]  # what kubeadm itself printed in this run (init's join commands...)
    log_tail: list[str]  # the log's last messages, script lines included, for reports

    def tail(self, n: int = TAIL_LINES) -> list[str]:
        return failure_tail(self.log_tail, n)


class NodeCommandError(Exception):
    """A command on the node failed; carries what it printed (never its stdin)."""

    def __init__(self, what: str, result: CommandResult):
        detail = failure_summary(result.stderr or result.stdout)
        super().__init__(f"{what} failed (exit {result.exit_status}): {detail}")
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

    async def copy_file_out(self, path: str, write: Callable[[bytes], None]) -> None:
        """Stream the file's bytes to ``write`` over the exec channel (the node has no SFTP)."""
        result = await self.conn.copy_out(["cat", path], write)
        if result.exit_status != 0:
            raise NodeCommandError(f"reading {path} on {self.name}", result)

    async def file_digest(self, path: str) -> tuple[int, str]:
        """The file's size in bytes and its SHA-256 (hex), read on the node."""
        size = await self.shell(["stat", "-c", "%s", path], timeout=60)
        if size.exit_status != 0:
            raise NodeCommandError(f"stat {path} on {self.name}", size)
        digest = await self.shell(["sha256sum", path], timeout=300)
        if digest.exit_status != 0:
            raise NodeCommandError(f"sha256sum {path} on {self.name}", digest)
        words = digest.stdout.decode(errors="replace").split()
        return int(size.stdout.decode().strip()), words[0] if words else ""

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
        self,
        flag: str,
        *,
        timeout: float,
        on_note: Callable[[str], None] | None = None,
    ) -> KubeadmResult:
        """Follow the log after a trigger until kubeadm completes or fails, or ``timeout``.

        Success is only the ``kubeadm has completed`` line. Failure is the task stopping without
        it (``sh -e`` ends the script at kubeadm's error) or an unknown-flag line. We react to
        log lines as they stream; the task state is polled only to catch a silent stop, with
        backoff, and right away when an error line shows up. When the task has stopped, the
        whole log is read once and decides, so no line in flight is missed. Both read the log
        with ``kubeadm.KubeadmLogState``, the one interpretation of the trigger script's lines.

        kubeadm goes on on the node whatever happens to our connection, so a connection that
        drops (a network blip, a keepalive timeout) is dialled again and the log followed
        again, skipping the lines already seen; ``on_note`` hears of it. Only a node that
        cannot be reached again ends the wait, with its SSHError.
        """
        state = KubeadmLogState()
        error_seen = asyncio.Event()
        done: asyncio.Future[KubeadmResult] = asyncio.get_running_loop().create_future()

        async def reader() -> None:
            seen = 0  # raw log lines consumed; a follow after a dropped connection skips them
            drops = 0
            while True:
                skip = seen
                try:
                    async for raw in self.follow_log():
                        if skip:
                            skip -= 1
                            continue
                        seen += 1
                        state.feed(raw)
                        if state.done:
                            _settle(done, _result(state))
                            return
                        if looks_like_error(raw):
                            error_seen.set()
                    return
                except ConnectionLost as exc:
                    drops += 1
                    if drops > MAX_FOLLOW_DROPS:
                        raise
                    log.debug("%s: following the kubeadm log again after: %s", self.name, exc)
                    if on_note is not None:
                        on_note(f"connection dropped while following the log ({exc}); "
                                "following it again")

        async def watcher() -> None:
            delay = 0.5
            while not done.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(error_seen.wait(), delay)
                delay = min(delay * 1.5, 5.0)
                try:
                    tasks = await self.tasks()
                    if tasks.get(paths.KUBEADM_TASK) not in (TaskState.STOPPED, None):
                        continue
                    whole = await self.read_file(paths.KUBEADM_LOG) or b""
                except ConnectionLost:
                    continue  # the reader dials again, or gives up and ends the wait
                _settle(done, stopped_result(whole.decode(errors="replace").splitlines()))
                return

        async def guarded(job: Callable[[], Awaitable[None]]) -> None:
            try:
                await job()
            except Exception as exc:  # handed to the waiter, raised there
                if not done.done():
                    done.set_exception(exc)

        jobs = [asyncio.create_task(guarded(reader)), asyncio.create_task(guarded(watcher))]
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            reason = f"kubeadm {flag} did not finish within {timeout:.0f}s"
            return KubeadmResult(False, reason, state.output, state.tail)
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)


# How many times one wait follows the log again after a dropped connection (each time after a
# successful dial: a node that cannot be dialled fails the wait at once).
MAX_FOLLOW_DROPS = 5


def _result(state: KubeadmLogState) -> KubeadmResult:
    reason = "completed" if state.ok else (state.reason or f"kubeadm ended: {state.phase}")
    return KubeadmResult(state.ok, reason, state.output, state.tail)


def stopped_result(raw_lines: list[str]) -> KubeadmResult:
    """How a run whose task has stopped ended, from its whole log. Pure."""
    state = KubeadmLogState()
    state.feed_all(raw_lines)
    if not state.done:
        state.task_stopped()
    return _result(state)


def _settle(fut: asyncio.Future[KubeadmResult], value: KubeadmResult) -> None:
    if not fut.done():
        fut.set_result(value)


