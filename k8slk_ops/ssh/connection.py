"""One node's SSH connection for the whole run: commands, followed output, reconnects.

At most ``channels`` sessions are open at once (sshd's MaxSessions is 10); further calls wait on
a semaphore instead of being refused by the node. Input bytes may hold secrets: they are sent as
stdin and never logged. Commands are logged at debug level only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import shlex
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncssh

from k8slk_ops.ssh.errors import CommandTimeout, ConnectionLost, SSHError
from k8slk_ops.ssh.target import CommandResult, SSHTarget, command_label, command_line

log = logging.getLogger("k8slk_ops.ssh")

Dialer = Callable[[SSHTarget], Awaitable[asyncssh.SSHClientConnection]]

# Runs "$@" so that closing the channel ends it: sshd puts each session in its own process
# group, closes the session's stdin when the channel closes, and the watcher then signals the
# whole group (``kill 0``). Without it a `tail -F` would live on until its next write failed.
FOLLOW_WRAPPER = (
    "exec 3<&0 </dev/null; "
    '"$@" & p=$!; '
    "{ cat >/dev/null 2>&1; kill -TERM 0; } <&3 & w=$!; "
    "exec 3<&-; "
    'wait "$p"; s=$?; kill "$w" 2>/dev/null; exit "$s"'
)

_LOST = (asyncssh.ConnectionLost, asyncssh.DisconnectError, asyncssh.ChannelOpenError, OSError)

# sshd frees a session slot only once the session's process is reaped and its channel closed
# on both sides, a little after the client sees the channel close; an open that races it is
# refused (OpenSSH says only "open failed"). While the connection itself is up, such refusals
# are retried briefly with backoff.
_BUSY_CODES = {
    asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
    asyncssh.OPEN_CONNECT_FAILED,
    asyncssh.OPEN_RESOURCE_SHORTAGE,
}
_OPEN_RETRY_FIRST = 0.005
_OPEN_RETRY_MAX = 0.25
_OPEN_RETRY_BUDGET = 10.0  # seconds of refusals before giving up


# Seconds the node grants a timed-out command beyond the caller's timeout before killing it.
REMOTE_KILL_GRACE = 2
_CLOSE_WAIT = 2.0
_COPY_CHUNK = 256 * 1024  # bytes read at a time by copy_out and run
# What ``run`` keeps of each stream: a node's output is not trusted, and one printing without
# end (or a huge log) must not fill this machine's memory. The largest answer read whole is
# ``kubectl get nodes -o json``, a few KB per node: 10,000 nodes stay well under it. Past the
# cap the start and the last ``KEPT_TAIL`` bytes are kept (an error is usually at the end),
# with a line saying how much was cut between them.
MAX_KEPT = 64 << 20
KEPT_TAIL = 64 << 10


class KeptOutput:
    """One stream of a command's output, kept up to ``limit`` bytes: its start and its end."""

    def __init__(self, limit: int = MAX_KEPT, tail: int = KEPT_TAIL) -> None:
        self.tail_size = min(tail, limit // 2)
        self.head_size = limit - self.tail_size
        self.head = bytearray()
        self.tail = bytearray()
        self.cut = 0

    def add(self, chunk: bytes) -> None:
        room = self.head_size - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            over = len(self.tail) - self.tail_size
            if over > 0:
                self.cut += over
                del self.tail[:over]

    def data(self) -> bytes:
        if not self.cut:
            return bytes(self.head + self.tail)
        note = (f"\n[k8slk-ops: {self.cut} bytes of this output were cut here; only the first "
                f"{self.head_size} and the last {self.tail_size} bytes are kept]\n")
        return bytes(self.head) + note.encode() + bytes(self.tail)


def _argv(command: str | Sequence[str]) -> list[str]:
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    if not argv:
        raise ValueError("empty command")
    return argv


def remote_timeout_argv(command: str | Sequence[str], timeout: float) -> list[str]:
    """``command`` under the node's own ``timeout`` (coreutils and busybox alike), as argv."""
    limit = str(math.ceil(timeout) + REMOTE_KILL_GRACE)
    return ["timeout", "-s", "KILL", limit, *_argv(command)]


def remote_timeout_command(command: str | Sequence[str], timeout: float) -> str:
    """``command`` under the node's own ``timeout``, as a command line."""
    return shlex.join(remote_timeout_argv(command, timeout))


def follow_command(command: str | Sequence[str]) -> str:
    """``command`` wrapped so that it dies with its channel."""
    return shlex.join(["sh", "-c", FOLLOW_WRAPPER, "sh", *_argv(command)])


class Connection:
    """A node reached over one SSH connection, re-dialled transparently if it drops.

    A command running when the connection breaks is not repeated (it may not be idempotent):
    it raises ``ConnectionLost``; the next call dials again, host-key check included.
    """

    def __init__(self, target: SSHTarget, dial: Dialer, *, channels: int = 10) -> None:
        self.name = target.name
        self.target = target
        self._dial = dial
        self._channels = asyncio.Semaphore(channels)
        self._in_use = 0
        self.peak_channels = 0  # most sessions ever open at once on this connection
        self._lock = asyncio.Lock()
        self._ssh: asyncssh.SSHClientConnection | None = None
        self._closed = False
        self.dials = 0

    @property
    def channels_in_use(self) -> int:
        return self._in_use

    @contextlib.asynccontextmanager
    async def _channel_slot(self) -> AsyncIterator[None]:
        async with self._channels:
            self._in_use += 1
            self.peak_channels = max(self.peak_channels, self._in_use)
            try:
                yield
            finally:
                self._in_use -= 1

    @property
    def peer_address(self) -> str | None:
        """The address the connection reached (a name resolved), while it is connected."""
        peer = self._ssh.get_extra_info("peername") if self._ssh is not None else None
        return str(peer[0]) if peer else None

    async def ensure_connected(self) -> None:
        await self._connection()

    async def server_host_key(self) -> tuple[str, str]:
        """(kind, base64 blob) of the host key the node presented on this connection."""
        key = (await self._connection()).get_server_host_key()
        if key is None:
            raise SSHError(f"{self.name} presented no host key")
        return key.get_algorithm(), base64.b64encode(key.public_data).decode()

    async def _connection(self) -> asyncssh.SSHClientConnection:
        if self._closed:
            raise SSHError(f"connection to {self.name} was closed")
        ssh = self._ssh
        if ssh is not None and not ssh.is_closed():
            return ssh
        async with self._lock:
            if self._ssh is None or self._ssh.is_closed():
                self._ssh = None
                self.dials += 1
                ssh = await self._dial(self.target)
                if self._closed:  # closed while we were dialling: do not leak the new one
                    ssh.close()
                    raise SSHError(f"connection to {self.name} was closed")
                self._ssh = ssh
            return self._ssh

    def _lost(self, exc: BaseException, what: str) -> ConnectionLost:
        return ConnectionLost(
            f"connection to {self.name} ({self.target.endpoint}) broke during {what}: {exc}"
        )

    async def _open(
        self, ssh: asyncssh.SSHClientConnection, label: str, line: str, **kwargs: Any
    ) -> asyncssh.SSHClientProcess[Any]:
        """Open a session channel running ``line``, riding out sshd's brief slot shortage."""
        delay = _OPEN_RETRY_FIRST
        waited = 0.0
        while True:
            try:
                return await ssh.create_process(line, **kwargs)
            except asyncssh.ChannelOpenError as exc:
                busy = exc.code in _BUSY_CODES and not ssh.is_closed()
                if not busy or waited >= _OPEN_RETRY_BUDGET:
                    raise self._lost(exc, label) from exc
            except _LOST as exc:
                raise self._lost(exc, label) from exc
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, _OPEN_RETRY_MAX)

    async def run(
        self,
        command: str | Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run a command (a shell string, or argv quoted word by word) and collect its output.

        ``input`` goes to stdin followed by EOF; without it the command's stdin is /dev/null
        and the command is bound to the channel (the follow wrapper), so closing the channel
        (when it times out, or when the caller is cancelled) ends it on the node: sshd refuses
        signal requests for root sessions, and a closed channel alone leaves a process running.
        With ``timeout``, CommandTimeout is raised when it expires, and the node's own
        ``timeout -s KILL`` ends the command a moment later whatever happens to the channel.
        """
        label = command_label(command)
        limited = command if timeout is None else remote_timeout_argv(command, timeout)
        async with self._channel_slot():
            ssh = await self._connection()
            if input:
                line = command_line(limited)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s: run %s", self.name, line)
                proc = await self._open(ssh, label, line, input=input, encoding=None)
            else:
                # Bound to the channel: our stdin stays open, and when we close the channel
                # (done, timed out, cancelled) the node ends the command at once.
                line = follow_command(limited)
                if log.isEnabledFor(logging.DEBUG):  # the line is made for nobody otherwise
                    log.debug("%s: run %s", self.name, command_line(limited))
                proc = await self._open(ssh, label, line, encoding=None)
            out, err = KeptOutput(), KeptOutput()
            try:
                try:
                    await asyncio.wait_for(_collect(proc, out, err), timeout)
                except TimeoutError:
                    raise CommandTimeout(
                        f"`{label}` on {self.name} did not finish within {timeout:g} s",
                        stdout=out.data(),
                        stderr=err.data(),
                    ) from None
                except _LOST as exc:
                    raise self._lost(exc, label) from exc
            finally:
                await _close_process(proc)
        if proc.returncode is None:
            # The channel closed without an exit status or signal: the connection went away
            # under the command, whose output may be cut short. Not a result.
            raise self._lost(
                ConnectionError("the channel closed without an exit status"), label
            )
        if out.cut or err.cut:
            log.warning("%s: `%s` printed more than this tool keeps: %d bytes of stdout and %d "
                        "of stderr were cut", self.name, label, out.cut, err.cut)
        log.debug("%s: exit %s from %s", self.name, proc.returncode, label)
        return CommandResult(proc.returncode, out.data(), err.data(), out.cut, err.cut)

    async def stream_lines(self, command: str | Sequence[str]) -> AsyncGenerator[str, None]:
        """Yield the command's stdout lines (decoded, without newline) as they arrive.

        Closing the iterator (``aclose()``, leaving ``contextlib.aclosing``) or cancelling the
        consumer closes the channel, which ends the remote command. stderr is discarded. When
        the output ends, the command's exit status must follow: a channel closed without one
        raises ConnectionLost (the connection went away, what was streamed may be cut short).
        """
        label = command_label(command)
        wrapped = follow_command(command)
        async with self._channel_slot():
            ssh = await self._connection()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: follow %s", self.name, command_line(command))
            proc = await self._open(
                ssh, label, wrapped, encoding="utf-8", errors="replace", stderr=asyncssh.DEVNULL
            )
            try:
                async for text in proc.stdout:
                    yield text[:-1] if text.endswith("\n") else text
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(proc.wait_closed()), _CLOSE_WAIT)
                if proc.returncode is None:
                    raise self._lost(
                        ConnectionError("the channel closed without an exit status"), label
                    )
            except _LOST as exc:
                raise self._lost(exc, label) from exc
            finally:
                with contextlib.suppress(*_LOST):
                    proc.stdin.write_eof()
                await _close_process(proc)

    async def copy_out(
        self, command: str | Sequence[str], write: Callable[[bytes], None]
    ) -> CommandResult:
        """Run a command and hand its stdout to ``write`` chunk by chunk, as it arrives.

        For files too large to hold in memory (an etcd snapshot): nothing is buffered here. The
        result carries the exit status and stderr; its stdout is empty. A connection that breaks
        raises ``ConnectionLost``, and whatever ``write`` got so far is all there is.
        """
        label = command_label(command)
        wrapped = follow_command(command)
        async with self._channel_slot():
            ssh = await self._connection()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: copy out %s", self.name, command_line(command))
            proc = await self._open(ssh, label, wrapped, encoding=None)
            try:
                while True:
                    try:
                        chunk = await proc.stdout.read(_COPY_CHUNK)
                    except _LOST as exc:
                        raise self._lost(exc, label) from exc
                    if not chunk:
                        break
                    write(chunk)  # a local error (disk full) is the caller's, not a lost link
                try:
                    with contextlib.suppress(*_LOST):
                        proc.stdin.write_eof()
                    done = await proc.wait()
                except _LOST as exc:
                    raise self._lost(exc, label) from exc
            finally:
                await _close_process(proc)
        if done.returncode is None and done.exit_signal is None:
            # The stream ended without the command's exit: the connection went, not the file.
            raise self._lost(ConnectionError("the channel closed before the command ended"),
                             label)
        status = done.returncode if done.returncode is not None else -1
        return CommandResult(status, b"", _bytes(done.stderr))

    async def close(self) -> None:
        """Close the connection; further calls raise SSHError."""
        self._closed = True
        ssh, self._ssh = self._ssh, None
        if ssh is not None:
            ssh.close()
            with contextlib.suppress(*_LOST):
                await ssh.wait_closed()


async def _collect(
    proc: asyncssh.SSHClientProcess[Any], out: KeptOutput, err: KeptOutput
) -> None:
    """Read both streams to their end, keeping what ``out`` and ``err`` keep, then wait for the
    exit status. (asyncssh's own ``wait`` would hold all of it, without a bound.)"""

    async def drain(stream: asyncssh.SSHReader[Any], kept: KeptOutput) -> None:
        while chunk := await stream.read(_COPY_CHUNK):
            kept.add(chunk)

    await asyncio.gather(drain(proc.stdout, out), drain(proc.stderr, err))
    await proc.wait_closed()


async def _close_process(proc: asyncssh.SSHClientProcess[Any]) -> None:
    """Close the channel; wait briefly for sshd's side, never for a process that lingers.

    sshd answers our close only once the session's process has exited, so an unbounded wait
    would hang on a command that ignores its closed channel (or is being cancelled).
    """
    proc.close()
    with contextlib.suppress(asyncio.TimeoutError, *_LOST):
        await asyncio.wait_for(asyncio.shield(proc.wait_closed()), _CLOSE_WAIT)


def _bytes(data: object) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    return str(data).encode()
