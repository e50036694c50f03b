"""The fleet's one process: an asyncssh listener per node, every node's state in memory.

Each node listens on its own loopback address with its own host key (made at start, as
LinuxKit makes them at boot), so a connection reaches one node and presents that node's key;
one process and one event loop serve them all. A thousand listeners take about a second to
open and a thousand file descriptors, and cost nothing per connection. One wildcard listener
telling nodes apart by the connection's local address would open faster (it still needs a set
of options per host key), but asyncssh takes host keys per listener: choosing them per
connection would mean building asyncssh's server connections ourselves, from its internals.

Sessions are answered in-process (``shell.dispatch``): no subprocess per command. SIGUSR1
writes the counters to ``stats.json``; SIGTERM stops the fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import resource
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

from tests.fleet import kubeadm, layout, lean, shell
from tests.fleet.cluster import Cluster
from tests.fleet.node import KubeadmRun, SimNode
from tests.fleet.pki import make_pki
from tests.fleet.result import Pending, Result, Stream

log = logging.getLogger("fleet")


def raise_nofile(wanted: int) -> int:
    """Lift the open-file soft limit towards ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


class Stats:
    """Counters for benchmarks and tests, written as stats.json on request."""

    def __init__(self) -> None:
        self.started = time.time()
        self.accepted = 0
        self.authenticated = 0
        self.auth_times: list[float] = []  # wall clock, for rates over a caller's own window
        self.open_connections = 0
        self.peak_connections = 0
        self.open_sessions = 0
        self.peak_sessions = 0
        self.commands: Counter[str] = Counter()
        self.node_commands: dict[str, Counter[str]] = {}  # node -> kind -> sessions

    def to_json(self, cluster: Cluster) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "accepted": self.accepted,
            "authenticated": self.authenticated,
            "peakConnections": self.peak_connections,
            "peakSessions": self.peak_sessions,
            "commands": dict(self.commands.most_common()),
            "commandsPerNode": per_node(self.node_commands),
            "cpuSeconds": round(usage.ru_utime + usage.ru_stime, 3),
            "maxRssKb": usage.ru_maxrss,
            "members": len(cluster.members),
            "tokens": len(cluster.tokens),
            "audit": dict(cluster.audit),
            "authTimes": self.auth_times,
        }


def per_node(counts: dict[str, Counter[str]]) -> dict[str, Any]:
    """Sessions per node that had any: mean, max, and the most frequent mix of kinds."""
    if not counts:
        return {"nodes": 0, "mean": 0.0, "max": 0, "typical": {}}
    totals = [sum(c.values()) for c in counts.values()]
    mixes = Counter(tuple(sorted(c.items())) for c in counts.values())
    return {
        "nodes": len(counts),
        "mean": round(sum(totals) / len(totals), 2),
        "max": max(totals),
        "typical": dict(mixes.most_common(1)[0][0]),
    }


@functools.lru_cache(maxsize=1024)
def command_kind(line: str) -> str:
    """A short label for a command line, for the counters (not for dispatch)."""
    if "/proc/cpuinfo" in line:
        return "facts"
    if (" -F " in line and "tail" in line) or ("wc -l" in line and "tasks ls" in line):
        return "follow-log"
    if "tasks exec" in line:
        for tool in ("kubeadm", "kubectl"):
            idx = line.find(f" {tool} ")
            if idx >= 0:
                words = line[idx + 1 :].split()[:3]
                return " ".join(w for w in words if not w.startswith("-"))
        return "exec"
    if "tasks ls" in line:
        return "tasks-ls"
    if "mv -f" in line:
        return "write-file"
    if "set -C" in line:
        return "lock-take"
    if "grep -q" in line:
        return "lock-release"
    if "exit 3" in line:
        return "read-file"
    if "${#c}" in line:
        return "read-files"
    return line.split(" ", 1)[0][:20]


class _Server(asyncssh.SSHServer):
    """Root only, key only (the authorized key is the fleet's client key)."""

    def __init__(self, stats: Stats, live: set[asyncssh.SSHServerConnection]) -> None:
        self.stats = stats
        self.live = live  # the node's open connections, so a node can drop them all
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.live.add(conn)
        s = self.stats
        s.accepted += 1
        s.open_connections += 1
        s.peak_connections = max(s.peak_connections, s.open_connections)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.live.discard(self.conn)
        self.stats.open_connections -= 1

    def begin_auth(self, username: str) -> bool:
        if username != "root" and self.conn is not None:
            self.conn.set_authorized_keys(asyncssh.SSHAuthorizedKeys())
        return True

    def password_auth_supported(self) -> bool:
        return False

    def auth_completed(self) -> None:
        self.stats.authenticated += 1
        if len(self.stats.auth_times) < 1_000_000:
            self.stats.auth_times.append(round(time.time(), 4))


class Fleet:
    """Every node, the shared cluster, and the listeners."""

    def __init__(
        self,
        config: layout.FleetConfig,
        directory: Path,
        kubeadm_run: KubeadmRun = kubeadm.run,
    ) -> None:
        self.config = config
        self.directory = directory
        self.kubeadm_run = kubeadm_run
        self.stats = Stats()
        self.cluster = Cluster(
            make_pki(), ready_delay=config.ready_delay, strict_network=config.strict_network
        )
        self.nodes: dict[str, SimNode] = {}
        self.listeners: dict[str, asyncssh.SSHAcceptor] = {}
        self.connections: dict[str, set[asyncssh.SSHServerConnection]] = {}
        self.host_keys: dict[str, asyncssh.SSHKey] = {}
        self._authorized: Any = None
        # Called with (node, command line) as each session starts: tests act at that moment.
        self.session_hooks: list[Callable[[SimNode, str], None]] = []
        # Called with (node, command line) once the answer is made: a hook may hand back the
        # answer to deliver instead (the same answer, later: see InProcessFleet.hold_answer).
        self.answer_hooks: list[Callable[[SimNode, str, Result], Result | Pending]] = []
        # The image the boot server serves: what a node runs after its next reboot ("": its own).
        self.image_version = ""
        self._reboots: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        raise_nofile(4 * len(self.config.nodes) + 1024)
        lean.serve_like_sshd()
        lean.options_in_the_loop()
        client_pub = (self.directory / f"{layout.CLIENT_KEY}.pub").read_text()
        self._authorized = asyncssh.import_authorized_keys(client_pub)
        lines = []
        for spec in self.config.nodes:
            node = SimNode(spec, self.cluster, self.config, self.kubeadm_run)
            node.on_reboot = self._reboot_soon
            self.nodes[spec.address] = node
            self.connections[spec.name] = set()
            key = asyncssh.generate_private_key("ssh-ed25519")
            self.host_keys[spec.name] = key
            public = key.export_public_key().decode().split()[:2]
            lines.append(f"[{spec.address}]:{self.config.port} {' '.join(public)}\n")
            await self.listen(node)
        layout.write_atomic(self.directory / layout.KNOWN_HOSTS, "".join(lines))
        layout.write_atomic(self.directory / layout.CA_CERT, self.cluster.pki.ca_pem)

    async def listen(self, node: SimNode) -> None:
        """Open the node's listener, on its address, with its current host key."""
        self.listeners[node.name] = await asyncssh.listen(
            node.spec.address,
            self.config.port,
            server_host_keys=[self.host_keys[node.name]],
            authorized_client_keys=self._authorized,
            server_factory=functools.partial(_Server, self.stats, self.connections[node.name]),
            process_factory=functools.partial(self.session, node),
            encoding=None,
            allow_pty=False,
            x11_forwarding=False,
            agent_forwarding=False,
            gss_host=None,  # no GSS: not the host's FQDN looked up for every connection
            reuse_address=True,
            backlog=128,
        )

    def _reboot_soon(self, node: SimNode) -> None:
        task = asyncio.get_running_loop().create_task(self.reboot(node))
        self._reboots.add(task)
        task.add_done_callback(self._reboots.discard)

    async def reboot(self, node: SimNode) -> None:
        """reboot(8): a moment later the node drops off, makes a new host key and boots the
        served image (its Node NotReady until its kubelet is up again); ``no_boot``: it stays
        off until ``power_on``."""
        await asyncio.sleep(0.05)
        await self.unlisten(node.name)
        self.host_keys[node.name] = asyncssh.generate_private_key("ssh-ed25519")
        if node.no_boot:
            return
        await self.power_on(node)

    async def power_on(self, node: SimNode) -> None:
        node.no_boot = False
        node.version = self.image_version or node.version
        node.boot()
        member = self.cluster.members.get(node.name)
        if member is not None:
            member.kubelet_version = node.version
            member.registered = self.cluster.clock()
        await self.listen(node)

    async def unlisten(self, name: str) -> None:
        """Close the node's listener and drop its connections: it refuses connections now."""
        listener = self.listeners.pop(name, None)
        if listener is not None:
            listener.close()
            with contextlib.suppress(Exception):
                await listener.wait_closed()
        for conn in list(self.connections.get(name, ())):
            conn.abort()

    async def stop(self) -> None:
        for name in list(self.listeners):
            await self.unlisten(name)
        for node in self.nodes.values():
            await node.close()

    def write_stats(self) -> None:
        data = json.dumps(self.stats.to_json(self.cluster), indent=1) + "\n"
        layout.write_atomic(self.directory / layout.STATS_FILE, data)

    # -- sessions ---------------------------------------------------------------------------

    async def session(self, node: SimNode, process: asyncssh.SSHServerProcess[bytes]) -> None:
        s = self.stats
        s.open_sessions += 1
        s.peak_sessions = max(s.peak_sessions, s.open_sessions)
        line = process.command or ""
        kind = command_kind(line)
        s.commands[kind] += 1
        s.node_commands.setdefault(node.name, Counter())[kind] += 1
        for hook in list(self.session_hooks):
            hook(node, line)
        try:
            if node.unfinished_sessions > 0:  # the connection went away mid-command
                node.unfinished_sessions -= 1
                process.close()
                return
            answer = shell.dispatch(node, line)
            read_input = isinstance(answer, shell.NeedsInput)
            if read_input:
                answer = answer.apply(await process.stdin.read())
            if isinstance(answer, Result):
                for answer_hook in list(self.answer_hooks):
                    answer = answer_hook(node, line, answer)
                    if not isinstance(answer, Result):
                        break
            if isinstance(answer, Pending):
                ended = await self._until_closed(process, answer, watch_stdin=not read_input)
                if ended is None:  # the channel closed first: the command dies with it
                    process.exit(143)
                    return
                answer = ended
            if isinstance(answer, Stream):
                ended = await self._stream(process, answer)
                process.exit(0 if ended else 143)
                return
            if isinstance(answer, shell.Follow):
                ended = await self._follow(node, process, answer)
                process.exit(0 if ended else 143)
                return
            _reply(process, answer)
        except (asyncssh.Error, OSError, BrokenPipeError):
            process.close()
        finally:
            s.open_sessions -= 1

    async def _until_closed(
        self, process: asyncssh.SSHServerProcess[bytes], running: Pending,
        watch_stdin: bool = True,
    ) -> Result | None:
        """The command's result, or None when its channel closes (stdin ends) first. A command
        that read its input to the end (``kubectl apply -f -``) cannot tell a closed channel
        by its stdin any more: its answer is waited for."""
        if not watch_stdin:
            return await running.wait()
        closed = asyncio.ensure_future(process.stdin.read())
        work = asyncio.ensure_future(running.wait())
        try:
            await asyncio.wait({closed, work}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (closed, work):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, asyncssh.Error, OSError):
                        await task
        if closed.done() and not closed.cancelled():
            closed.exception()  # a dropped connection ends the command; nothing to report
        return work.result() if work.done() and not work.cancelled() else None

    async def _stream(self, process: asyncssh.SSHServerProcess[bytes], stream: Stream) -> bool:
        """The command's output as it comes; True when it ended by itself, False when its
        channel closed first (the command dies with it)."""
        closed = asyncio.ensure_future(process.stdin.read())
        chunks = stream.chunks()
        try:
            while True:
                step = asyncio.ensure_future(anext(chunks))
                await asyncio.wait({closed, step}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await step
                    return False
                try:
                    chunk = step.result()
                except StopAsyncIteration:
                    return True
                process.stdout.write(chunk)
                await process.stdout.drain()
        finally:
            closed.cancel()
            if closed.done() and not closed.cancelled():
                closed.exception()
            await chunks.aclose()  # type: ignore[attr-defined]

    async def _follow(
        self, node: SimNode, process: asyncssh.SSHServerProcess[bytes], follow: shell.Follow
    ) -> bool:
        """``tail -F``: what the log has, then each new line, until stdin ends or closes. With
        ``follow.end``, the loop that also watches the kubeadm task: once it has stopped, the
        rest of the log, the end line, and True (the script exits by itself)."""
        start = follow.start
        seen = start if start >= 0 else max(0, len(node.log) + start)
        closed = asyncio.ensure_future(process.stdin.read())
        try:
            while True:
                version = node.changes
                state = node.listed_state("kubeadm") if follow.end is not None else None
                if len(node.log) < seen:  # the log was emptied (a reboot)
                    seen = 0
                chunk = "".join(line + "\n" for line in node.log[seen:])
                seen = len(node.log)
                if follow.end is not None and state in ("STOPPED", "MISSING"):
                    chunk += f"{follow.end}{state}\n"
                if chunk:
                    process.stdout.write(chunk.encode())
                    await process.stdout.drain()
                if follow.end is not None and state in ("STOPPED", "MISSING"):
                    return True
                changed = asyncio.ensure_future(node.changed(version))
                # A lost listing is read again after the script's pause (scaled down).
                pause = _LOST_LISTING_PAUSE if follow.end is not None and state is None else None
                done, _ = await asyncio.wait(
                    {closed, changed}, timeout=pause, return_when=asyncio.FIRST_COMPLETED
                )
                changed.cancel()
                if closed in done:
                    return False
        finally:
            closed.cancel()
            if closed.done() and not closed.cancelled():
                closed.exception()  # a dropped connection ends the follow; nothing to report


# The follow loop's pause between two readings of the task list (a second on a node).
_LOST_LISTING_PAUSE = 0.05


def _reply(process: asyncssh.SSHServerProcess[bytes], result: Result) -> None:
    if result.stdout:
        process.stdout.write(result.stdout)
    if result.stderr:
        process.stderr.write(result.stderr)
    process.exit(result.status)


async def serve(directory: Path, ready_fd: int | None) -> None:
    """Run the fleet described by DIR/fleet.json until SIGTERM or SIGINT."""
    config = layout.load(directory)
    lean.quiet_logs()
    fleet = Fleet(config, directory)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, fleet.write_stats)
    started = time.monotonic()
    await fleet.start()
    log.warning("fleet: %d nodes on port %d ready in %.2f s", len(fleet.nodes), config.port,
                time.monotonic() - started)
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    await stop.wait()
    fleet.write_stats()
    await fleet.stop()
