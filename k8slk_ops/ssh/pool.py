"""The pool: one connection per node, dialled with limits, retries and host-key checks.

Limits: at most ``max_handshakes`` SSH handshakes in flight across the pool (64: they bound the
client's bursts, not any one sshd, since each node's sshd sees one connection of ours), at most
``handshakes_per_jump`` (10, sshd's MaxStartups) through any one jump host, and at most
``channels_per_connection`` sessions open per connection. Transient failures (refused, timed
out, no route, connection lost) are retried with exponential backoff and jitter; refused keys
and host keys are final at the first answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncssh
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from k8slk_ops.ssh import patches
from k8slk_ops.ssh.connection import Connection
from k8slk_ops.ssh.errors import (
    AuthenticationFailed,
    HostKeyMismatch,
    SSHError,
    Unreachable,
)
from k8slk_ops.ssh.hostkeys import HostKeyCheck
from k8slk_ops.ssh.options import ClientSettings, OptionsCache
from k8slk_ops.ssh.target import HostKeyPolicy, JumpHost, SSHTarget

log = logging.getLogger("k8slk_ops.ssh")

# Disconnect reasons worth another try: the server was busy, restarting, or the link dropped.
_TRANSIENT_DISCONNECTS = {
    asyncssh.DISC_CONNECTION_LOST,
    asyncssh.DISC_TOO_MANY_CONNECTIONS,
    asyncssh.DISC_BY_APPLICATION,
    asyncssh.DISC_SERVICE_NOT_AVAILABLE,
}


def is_transient(exc: BaseException) -> bool:
    """Whether a failed connect is worth retrying (never for keys or host keys)."""
    if isinstance(exc, SSHError):
        return False
    if isinstance(exc, asyncssh.ConnectionLost | OSError | asyncio.TimeoutError):
        return True
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.code in _TRANSIENT_DISCONNECTS
    if isinstance(exc, asyncssh.ChannelOpenError):  # the jump host could not reach the node
        return exc.code == asyncssh.OPEN_CONNECT_FAILED
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How connects are retried: ``attempts`` in all, waits from ``initial`` up to ``maximum``."""

    attempts: int = 4
    initial: float = 0.5
    maximum: float = 10.0
    jitter: float = 0.5


@dataclass
class PoolStats:
    """Counters for tests and benchmarks."""

    attempts: int = 0  # TCP + SSH handshakes started, retries included
    connections: int = 0  # handshakes that ended in an authenticated connection
    jump_connections: int = 0
    handshakes_in_flight: int = 0
    peak_handshakes: int = 0  # most handshakes ever in flight at once


class _Client(asyncssh.SSHClient):
    """Hands the presented host key to our policy check, inside the handshake."""

    def __init__(self, check: HostKeyCheck) -> None:
        self.check = check

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self.check.verify(key.algorithm.decode(), key.public_data)


@dataclass(frozen=True)
class _Endpoint:
    """Where to dial and how to check it: a node, or a jump host."""

    name: str
    label: str
    address: str
    port: int
    policy: HostKeyPolicy
    pinned: str | None
    settings: ClientSettings
    known_hosts_file: str | None


class SSHPool:
    """Owns every connection of a run; ``connect`` returns the node's one cached Connection."""

    def __init__(
        self,
        *,
        max_handshakes: int = 64,
        handshakes_per_jump: int = 10,
        channels_per_connection: int = 10,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._handshakes = asyncio.Semaphore(max_handshakes)
        self._per_jump = handshakes_per_jump
        self._jump_handshakes: dict[asyncssh.SSHClientConnection, asyncio.Semaphore] = {}
        self._channels = channels_per_connection
        self.retry = retry or RetryPolicy()
        self._options = OptionsCache()
        self._connections: dict[str, Connection] = {}
        self._jumps: dict[_Endpoint, asyncssh.SSHClientConnection] = {}
        self._jump_locks: dict[_Endpoint, asyncio.Lock] = {}
        self.stats = PoolStats()

    @property
    def options_cache(self) -> OptionsCache:
        return self._options

    async def __aenter__(self) -> SSHPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self, target: SSHTarget) -> Connection:
        """The connection to ``target.name``, dialled on first use and reused afterwards."""
        conn = self._connections.get(target.name)
        if conn is None:
            conn = Connection(target, self._dial_node, channels=self._channels)
            self._connections[target.name] = conn
        await conn.ensure_connected()
        return conn

    async def drop(self, name: str) -> None:
        """Close and forget ``name``'s connection: the next ``connect`` dials it again."""
        conn = self._connections.pop(name, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        conns, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        jumps, self._jumps = list(self._jumps.values()), {}
        self._jump_handshakes.clear()
        for jump in jumps:
            jump.close()
        for jump in jumps:
            with contextlib.suppress(Exception):
                await jump.wait_closed()
        self._options.clear()

    # -- dialling ------------------------------------------------------------------------------

    async def _dial_node(self, target: SSHTarget) -> asyncssh.SSHClientConnection:
        endpoint = _Endpoint(
            name=target.name,
            label=f"node {target.name}",
            address=target.address,
            port=target.port,
            policy=target.host_key_policy,
            pinned=target.host_key_fingerprint,
            settings=ClientSettings.of(target),
            known_hosts_file=str(target.known_hosts) if target.known_hosts else None,
        )
        return await self._dial(endpoint, target, self._jump_for(target))

    def _jump_for(self, target: SSHTarget) -> JumpHost | None:
        if not target.jump_host:
            return None
        try:
            return JumpHost.parse(target.jump_host)
        except ValueError as exc:
            raise SSHError(f"node {target.name}: {exc}") from exc

    async def _jump_connection(
        self, jump: JumpHost, target: SSHTarget
    ) -> asyncssh.SSHClientConnection:
        """The shared connection to the jump host, dialled once for every node behind it.

        Its key is checked against known_hosts under the node's policy; a node's pinned
        fingerprint names the node's key, so for the jump host ``pinned`` means ``strict``.
        """
        policy: HostKeyPolicy = (
            "strict" if target.host_key_policy == "pinned" else target.host_key_policy
        )
        endpoint = _Endpoint(
            name=jump.host,
            label=f"jump host {jump.host}",
            address=jump.host,
            port=jump.port,
            policy=policy,
            pinned=None,
            settings=ClientSettings.of(target, user=jump.user),
            known_hosts_file=str(target.known_hosts) if target.known_hosts else None,
        )
        lock = self._jump_locks.setdefault(endpoint, asyncio.Lock())
        async with lock:
            ssh = self._jumps.get(endpoint)
            if ssh is None or ssh.is_closed():
                ssh = await self._dial(endpoint, target, None)
                self._jumps[endpoint] = ssh
                self.stats.jump_connections += 1
            return ssh

    async def _dial(
        self, endpoint: _Endpoint, target: SSHTarget, jump: JumpHost | None
    ) -> asyncssh.SSHClientConnection:
        policy = self.retry

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info(
                "%s (%s:%s): attempt %d failed (%s); retrying",
                endpoint.label,
                endpoint.address,
                endpoint.port,
                state.attempt_number,
                "?" if exc is None else _describe(exc),
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, policy.attempts)),
            wait=wait_exponential(multiplier=policy.initial, max=policy.maximum)
            + wait_random(0, policy.jitter),
            retry=retry_if_exception(is_transient),
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    tunnel = await self._jump_connection(jump, target) if jump else None
                    return await self._dial_once(endpoint, tunnel)
        except SSHError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise SSHError(
                    f"{endpoint.label} ({endpoint.address}:{endpoint.port}): SSH failed: {exc}"
                ) from exc
            raise Unreachable(
                f"{endpoint.label} ({endpoint.address}:{endpoint.port}) is unreachable after "
                f"{attempts} attempt{'s' if attempts != 1 else ''}: {_describe(exc)}",
                cause=exc,
                attempts=attempts,
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _dial_once(
        self, endpoint: _Endpoint, tunnel: asyncssh.SSHClientConnection | None
    ) -> asyncssh.SSHClientConnection:
        options = await self._options.options(endpoint.settings)
        client_keys = await self._options.keys_for(
            endpoint.settings, endpoint.address, endpoint.port
        )
        check = _host_key_check(endpoint)
        client = _Client(check)
        through: contextlib.AbstractAsyncContextManager[Any] = contextlib.nullcontext()
        if tunnel is not None:
            through = self._jump_handshakes.setdefault(tunnel, asyncio.Semaphore(self._per_jump))
        async with self._handshakes, through:
            self.stats.attempts += 1
            self.stats.handshakes_in_flight += 1
            self.stats.peak_handshakes = max(
                self.stats.peak_handshakes, self.stats.handshakes_in_flight
            )
            try:
                ssh = await asyncssh.connect(
                    endpoint.address,
                    endpoint.port,
                    tunnel=tunnel if tunnel is not None else (),
                    options=options,
                    client_keys=client_keys,
                    config=endpoint.settings.config_paths(),
                    client_factory=lambda: client,
                    server_host_key_algs=check.host_key_algs(),
                )
            except asyncssh.HostKeyNotVerifiable as exc:
                if check.error is not None:
                    raise check.error from None
                raise HostKeyMismatch(
                    f"host key of {endpoint.label} ({endpoint.address}:{endpoint.port}) was "
                    f"refused: {exc.reason}",
                    node=check.node,
                    address=endpoint.address,
                    port=endpoint.port,
                    presented=check.presented or "",
                    expected=(),
                    known_hosts=check.known_hosts_path,
                ) from exc
            except asyncssh.PermissionDenied as exc:
                raise AuthenticationFailed(
                    f"{endpoint.label} ({endpoint.address}:{endpoint.port}) refused every key we "
                    f"offered for user {endpoint.settings.user} "
                    f"({_keys_offered(endpoint.settings)}): {exc.reason}. The node's authorized "
                    "keys come from its image (.ssh/id_rsa.pub at build time)."
                ) from exc
            finally:
                self.stats.handshakes_in_flight -= 1
        self.stats.connections += 1
        try:
            await _record_new_host_key(endpoint, check)
        except BaseException:
            ssh.close()  # a key we cannot record, or a race lost to another run's key
            raise
        return ssh


def _host_key_check(endpoint: _Endpoint) -> HostKeyCheck:
    """The host-key decision for one dial of ``endpoint``, with known_hosts read afresh."""
    check = HostKeyCheck(
        node=endpoint.name,
        label=endpoint.label,
        address=endpoint.address,
        port=endpoint.port,
        policy=endpoint.policy,
        known_hosts=Path(endpoint.known_hosts_file) if endpoint.known_hosts_file else None,
        pinned=endpoint.pinned,
    )
    check.prepare()
    return check


async def _record_new_host_key(endpoint: _Endpoint, check: HostKeyCheck) -> None:
    """With hostKeyPolicy accept-new, write a key seen for the first time to known_hosts."""
    if check.to_record is not None:
        written = await asyncio.to_thread(check.record)
        if written:
            log.warning(
                "%s: recorded new host key %s in %s (hostKeyPolicy accept-new)",
                endpoint.label,
                check.presented,
                check.known_hosts_path,
            )


def prepare_asyncssh() -> tuple[patches.Outcome, ...]:
    """asyncssh's client as this tool uses it: its INFO lines quiet, and the patches of
    ``k8slk_ops.ssh.patches`` applied where checked (none with ``K8SLK_OPS_STOCK_ASYNCSSH=1``).
    Called by the command line's run start, not by making a pool; idempotent; also what the
    floor measurement (tests/fleet/floor.py) and the fleet's server process run."""
    _quiet_asyncssh()
    return patches.install()


def _quiet_asyncssh() -> None:
    """asyncssh logs every command line at INFO; ours are logged at DEBUG only, so keep its
    logger at WARNING unless the application chose a level for it."""
    library = logging.getLogger("asyncssh")
    if library.level == logging.NOTSET:
        library.setLevel(logging.WARNING)


def _keys_offered(settings: ClientSettings) -> str:
    if settings.identity_file is not None:
        return f"identity file {settings.identity_file} and ssh-agent if running"
    return "default keys in ~/.ssh and ssh-agent if running"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError) and not str(exc):
        return "timed out"
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    return str(exc) or type(exc).__name__
