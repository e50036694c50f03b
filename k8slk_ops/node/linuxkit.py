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
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from k8slk_ops.base.nextstep import REBOOT, NextStep, Rerun
from k8slk_ops.kubeadm import (
    TAIL_LINES,
    KubeadmFailure,
    KubeadmLogState,
    failure_summary,
    failure_tail,
)
from k8slk_ops.node import paths
from k8slk_ops.node.facts import FACTS_SCRIPT, NodeFacts, parse_facts
from k8slk_ops.node.rebootrecord import BOOT_ID_PATH, parse_boot_id
from k8slk_ops.node.uncut import uncut
from k8slk_ops.ssh import CommandResult, Connection, ConnectionLost

log = logging.getLogger("k8slk_ops.node.linuxkit")

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
    failure: KubeadmFailure | None = None  # kubeadm's own failure, when it ran and failed
    timed_out: bool = False  # the wait ran out; kubeadm may still be running on the node

    def tail(self, n: int = TAIL_LINES) -> list[str]:
        return failure_tail(self.log_tail, n)

    def next_step(self, rerun: Rerun) -> NextStep:
        """What to do about a run that did not complete: kubeadm's own failure says it; a wait
        that ran out, or a script that stopped before kubeadm, gets the general way back."""
        if self.failure is not None:
            return self.failure.next_step(rerun)
        if self.timed_out:
            return NextStep.then(
                "kubeadm may still be running: follow /var/log/kubeadm.out.log on the node; "
                f"once it has stopped, reset the node (`{rerun.reset()}`) and {REBOOT}",
                rerun.join)
        return NextStep.then(f"reset the node (`{rerun.reset()}`) and {REBOOT}", rerun.join)


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
        return await self.conn.run(_in_kubelet(argv), input=input, timeout=timeout)

    def kubectl_lines(self, *args: str) -> AsyncGenerator[str, None]:
        """kubectl's stdout lines as it prints them (a ``--watch``); closing the iterator ends
        kubectl on the node (``Connection.stream_lines``)."""
        return self.conn.stream_lines(_in_kubelet(["kubectl", *args]))

    async def kubectl(self, *args: str, timeout: float | None = 60) -> CommandResult:
        return await self.kubelet_exec(["kubectl", *args], timeout=timeout)

    async def kubeadm(self, *args: str, timeout: float | None = 120) -> CommandResult:
        return await self.kubelet_exec(["kubeadm", *args], timeout=timeout)

    # -- files --------------------------------------------------------------------------------

    async def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Write ``data`` to ``path`` atomically (temp file, chmod, rename) via stdin."""
        with uncut():  # a stop request waits for the rename: never half a file
            result = await self.shell(
                ["sh", "-c", _ATOMIC_WRITE, "sh", path, f"{mode:o}"], input=data
            )
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

    async def read_files(self, files: Sequence[str]) -> dict[str, bytes | None]:
        """Several files in one round trip: each one's bytes, or None when it does not exist.
        One command per node rather than one per file: a read of every control plane's
        manifests costs one exec each, however many files."""
        result = await self.shell(["sh", "-c", _READ_FILES, "sh", *files], timeout=60)
        if result.exit_status != 0:
            raise NodeCommandError(f"reading {', '.join(files)} on {self.name}", result)
        try:
            return parse_files(result.stdout, files)
        except ValueError as exc:
            raise NodeCommandError(
                f"reading {', '.join(files)} on {self.name}",
                CommandResult(1, result.stdout[:200], str(exc).encode()),
            ) from None

    async def boot_id(self) -> str:
        """The kernel's ID of this boot (a new UUID at every boot): whether the node has
        rebooted since it was last read. NodeCommandError when it cannot be read."""
        data = await self.read_file(BOOT_ID_PATH)
        value = parse_boot_id((data or b"").decode(errors="replace"))
        if not value:
            raise NodeCommandError(
                f"reading {BOOT_ID_PATH} on {self.name}",
                CommandResult(1, data or b"", b"not a boot ID"),
            )
        return value

    async def remove_file(self, path: str) -> None:
        with uncut():
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
        """Everything the planner needs about this node, in one round trip.

        A probe whose output (or that of the ``ctr tasks exec`` inside it) was lost is read
        again, a bounded number of times: what a whole probe prints is certain. The last
        reading is returned as it is; ``NodeFacts.incomplete`` says what it lacks.
        """
        for attempt in range(1, CERTAIN_READS + 1):
            result = await self.shell(["sh", "-c", FACTS_SCRIPT], timeout=60)
            facts = parse_facts(result.stdout.decode(errors="replace"))
            missing = facts.incomplete()
            if not missing:
                return facts
            log.debug("%s: facts without %s (attempt %d)", self.name, ", ".join(missing), attempt)
        return facts

    async def kubelet_read(
        self, argv: Sequence[str], *, what: str, timeout: float | None = 60
    ) -> CommandResult:
        """A read inside the kubelet container whose output is certain when it succeeds
        (``kubeadm version``, ``kubeadm token list`` of a token just made): see
        ``certain_read``."""
        return await certain_read(lambda: self.kubelet_exec(argv, timeout=timeout),
                                  what=f"{what} on {self.name}")

    # -- the trigger ----------------------------------------------------------------------------

    async def trigger_with(self, flag: str, config: bytes) -> None:
        """Write the kubeadm configuration and then the trigger, in one command.

        The configuration is written to a temp file beside its target and renamed (mode 0600,
        from stdin: it holds secrets), and only then ``init`` or ``join`` goes into the
        trigger file (no newline, as the image expects), itself renamed into place: the
        node's script never sees a trigger without its whole configuration.
        """
        if flag not in ("init", "join"):
            raise ValueError(f"unknown kubeadm flag {flag!r}")
        argv = ["sh", "-c", _WRITE_THEN_TRIGGER, "sh", paths.KUBEADM_YAML, "600",
                paths.KUBEADM_RUN, flag]
        with uncut():  # a stop request waits: the trigger is written, or nothing is
            result = await self.shell(argv, input=config)
        if result.exit_status != 0:
            raise NodeCommandError(f"writing {paths.KUBEADM_YAML} and the trigger on {self.name}",
                                   result)

    def follow_kubeadm(self, start: int = 0) -> AsyncGenerator[str, None]:
        """This boot's kubeadm log from line ``start`` (0-based), as it grows, then one
        ``FOLLOW_END`` line naming the kubeadm task's state once it has stopped (or is
        missing), after every line it wrote: one command tells both what kubeadm says and
        when it is done. An empty task list (containerd's answer lost) is not a stop."""
        argv = ["sh", "-c", _FOLLOW_UNTIL_STOPPED, "sh", str(start), paths.KUBEADM_LOG,
                paths.CONTAINERD_NAMESPACE, paths.KUBEADM_TASK]
        return self.conn.stream_lines(argv)

    async def wait_kubeadm(
        self,
        flag: str,
        *,
        timeout: float,
        on_note: Callable[[str], None] | None = None,
        on_line: Callable[[KubeadmLogState], None] | None = None,
    ) -> KubeadmResult:
        """Follow the log after a trigger until kubeadm completes or its task stops, or
        ``timeout``. ``on_line`` sees the state after each line (init's milestones).

        Success is only the ``kubeadm has completed`` line. Failure is the task stopping without
        it (``sh -e`` ends the script at kubeadm's error) or an unknown-flag line. Lines and the
        task's end come over one command (``follow_kubeadm``), read with
        ``kubeadm.KubeadmLogState``, the one interpretation of the trigger script's lines.

        kubeadm goes on on the node whatever happens to our connection, so a connection that
        drops (a network blip, a keepalive timeout) is dialled again and the log followed
        again from the first line not seen; ``on_note`` hears of it. Only a node that cannot
        be reached again ends the wait, with its SSHError.
        """
        state = KubeadmLogState()
        try:
            async with asyncio.timeout(timeout):
                return await self._follow_to_end(state, on_note, on_line)
        except TimeoutError:
            reason = f"kubeadm {flag} did not finish within {timeout:.0f}s"
            return KubeadmResult(False, reason, state.output, state.tail, state.failure, True)

    async def _follow_to_end(
        self,
        state: KubeadmLogState,
        on_note: Callable[[str], None] | None,
        on_line: Callable[[KubeadmLogState], None] | None,
    ) -> KubeadmResult:
        seen = 0  # log lines consumed; a follow after a dropped connection starts after them
        drops = 0
        while True:
            try:
                lines = self.follow_kubeadm(seen)
                async with contextlib.aclosing(lines):
                    async for raw in lines:
                        if raw.startswith(FOLLOW_END):
                            state.task_stopped()
                            return _result(state)
                        seen += 1
                        state.feed(raw)
                        if on_line is not None:
                            on_line(state)
                        if state.done:
                            return _result(state)
                raise ConnectionLost(
                    f"following the kubeadm log on {self.name} ended without the task's state"
                )
            except ConnectionLost as exc:
                drops += 1
                if drops > MAX_FOLLOW_DROPS:
                    raise
                log.debug("%s: following the kubeadm log again after: %s", self.name, exc)
                if on_note is not None:
                    on_note(f"connection dropped while following the log ({exc}); "
                            "following it again")


# What ``ctr tasks exec`` prints when the container has no running task: stopped (``cannot
# exec in a stopped state``), or deleted or never started (``no running task found``).
_TASK_DOWN = ("cannot exec in a stopped state", "no running task found")


def kubelet_stopped(result: CommandResult) -> bool:
    """Whether an exec into the kubelet container failed because its task is not running.

    Nothing on a LinuxKit node starts a stopped service again (its next boot does), so a wait
    for something inside it, such as its API server's answer, is over at once."""
    said = result.stderr.decode("utf-8", "replace")
    return not result.ok and any(t in said for t in _TASK_DOWN)


def _in_kubelet(argv: Sequence[str]) -> list[str]:
    """argv run inside the kubelet container, with a unique exec ID."""
    exec_id = f"k8slk-{uuid.uuid4().hex[:16]}"
    return ["ctr", "--namespace", paths.CONTAINERD_NAMESPACE, "tasks", "exec", "--exec-id",
            exec_id, paths.KUBELET_TASK, *argv]


# The log follow's last line, then the kubeadm task's state (STOPPED or MISSING).
FOLLOW_END = "k8slk-follow-end: kubeadm task "

# Streams the log from line $1 ($2 the log, $3 the namespace, $4 the task) and ends with
# FOLLOW_END once the task has stopped. The log is looked at every 0.2 s (kubeadm's completed
# line, the success signal, is seen that soon: the follow of an init or of the last join is on
# the run's critical path), the task's state every fifth round (a second; ``ctr`` costs more
# than ``wc``). A round that reads the state reads it *before* the log, so a stopped task's
# lines are all printed before the end line; only whole lines (counted by newlines) are
# printed. An empty listing prints no state: unknown, the follow goes on.
_FOLLOW_UNTIL_STOPPED = (
    'n=$1; r=0\n'
    "while :; do\n"
    "  s=\n"
    '  if [ "$r" -eq 0 ]; then\n'
    '    s=$(ctr --namespace "$3" tasks ls 2>/dev/null | awk -v t="$4" '
    "'$1 == \"TASK\" { h = 1 } $1 == t { s = $NF } "
    "END { if (s != \"\") print s; else if (h) print \"MISSING\" }')\n"
    "  fi\n"
    "  r=$(( (r + 1) % 5 ))\n"
    '  m=$(( $(wc -l < "$2" 2>/dev/null || echo 0) + 0 ))\n'
    '  [ "$m" -lt "$n" ] && n=0\n'
    '  if [ "$m" -gt "$n" ]; then awk -v a="$n" -v b="$m" \'NR > a && NR <= b\' "$2"; n=$m; fi\n'
    '  case "$s" in STOPPED|MISSING) echo "' + FOLLOW_END + '$s"; exit 0;; esac\n'
    "  sleep 0.2\n"
    "done\n"
)

# $1 the config, $2 its mode, $3 the trigger file, $4 the flag; the config from stdin.
_WRITE_THEN_TRIGGER = (
    'set -e; umask 077; t="$1.k8slk-$$"; g="$3.k8slk-$$"; trap \'rm -f "$t" "$g"\' EXIT; '
    'cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"; '
    'printf %s "$4" > "$g"; chmod 644 "$g"; mv -f "$g" "$3"; trap - EXIT'
)

# Each file named: "<bytes> <path>" then its bytes, or "-1 <path>" when it does not exist. The
# file is read once into a variable, so its length and its bytes are of the same reading even
# while kubeadm rewrites it (C locale: ${#c} counts bytes).
_READ_FILES = (
    'export LC_ALL=C; for f do if [ -e "$f" ]; then c=$(cat "$f" && echo .) || exit 1; '
    'c=${c%.}; printf \'%s %s\\n%s\' "${#c}" "$f" "$c"; '
    'else printf -- \'-1 %s\\n\' "$f"; fi; done'
)


def parse_files(out: bytes, files: Sequence[str]) -> dict[str, bytes | None]:
    """What ``_READ_FILES`` printed, per file; ValueError when it is not that (cut short)."""
    found: dict[str, bytes | None] = {}
    at = 0
    for name in files:
        end = out.find(b"\n", at)
        if end < 0:
            raise ValueError(f"the output stops before {name}")
        size_text, _, path = out[at:end].decode(errors="replace").partition(" ")
        if path != name or not size_text.lstrip("-").isdigit():
            raise ValueError(f"expected the header of {name}, found {out[at:end][:80]!r}")
        size = int(size_text)
        at = end + 1
        if size < 0:
            found[name] = None
            continue
        if at + size > len(out):
            raise ValueError(f"{name} is cut short ({len(out) - at} of {size} bytes)")
        found[name] = out[at:at + size]
        at += size
    return found


# How many times a read whose output is certain is made when it comes back empty.
CERTAIN_READS = 3


async def certain_read(run: Callable[[], Awaitable[CommandResult]], *, what: str) -> CommandResult:
    """``run()`` for a read whose output is certain when it succeeds (``kubectl get nodes -o
    json``...): ``ctr tasks exec`` may exit 0 with its output lost, so an empty success is run
    again, a bounded number of times, and then reported as the failure it is
    (NodeCommandError). A failure is returned as it is, for the caller to word."""
    for attempt in range(1, CERTAIN_READS + 1):
        result = await run()
        if result.exit_status != 0 or result.stdout.strip():
            return result
        log.debug("%s exited 0 without output (attempt %d)", what, attempt)
    raise NodeCommandError(f"{what} (exited 0 without output {CERTAIN_READS} times)", result)

# How many times one wait follows the log again after a dropped connection (each time after a
# successful dial: a node that cannot be dialled fails the wait at once).
MAX_FOLLOW_DROPS = 5


def _result(state: KubeadmLogState) -> KubeadmResult:
    reason = "completed" if state.ok else (state.reason or f"kubeadm ended: {state.phase}")
    return KubeadmResult(state.ok, reason, state.output, state.tail, state.failure)


def stopped_result(raw_lines: list[str]) -> KubeadmResult:
    """How a run whose task has stopped ended, from its whole log. Pure."""
    state = KubeadmLogState()
    state.feed_all(raw_lines)
    if not state.done:
        state.task_stopped()
    return _result(state)




