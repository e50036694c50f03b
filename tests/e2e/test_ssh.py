"""The SSH layer against a real OpenSSH sshd: commands, quoting, stdin, streams, limits, pooling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from k8slk_ops.ssh import (
    CommandTimeout,
    Connection,
    ConnectionLost,
    RetryPolicy,
    SSHError,
    SSHPool,
    SSHTarget,
)
from tests.conftest import AsyncsshMode
from tests.sshd_server import SSHDServer, require_sshd, sshd_servers

FAST_RETRY = RetryPolicy(attempts=2, initial=0.01, maximum=0.05, jitter=0.01)


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[SSHDServer, SSHTarget]]:
    require_sshd()
    with sshd_servers(1, first_octet=1) as (workdir, client_key, (server,)):
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(server.known_hosts_line())
        target = SSHTarget(
            name="node-1",
            address=server.address,
            identity_file=client_key,
            known_hosts=known_hosts,
        )
        yield server, target


@pytest.fixture
async def pool() -> AsyncIterator[SSHPool]:
    async with SSHPool(retry=FAST_RETRY) as p:
        yield p


@pytest.fixture
async def conn(pool: SSHPool, node: tuple[SSHDServer, SSHTarget]) -> Connection:
    return await pool.connect(node[1])


async def wait_gone(conn: Connection, pid: str) -> None:
    """Wait (an event: the process's exit) until ``pid`` is gone on the node."""
    result = await conn.run(
        ["timeout", "20", "tail", "--pid", pid, "-s", "0.02", "-f", "/dev/null"]
    )
    assert result.exit_status == 0, f"process {pid} still alive"


async def test_run_returns_exit_status_stdout_stderr(conn: Connection) -> None:
    result = await conn.run("echo out; echo err >&2; exit 7")
    assert result.exit_status == 7
    assert not result.ok
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    assert result.text() == "out\n"

    ok = await conn.run(["true"])
    assert ok.ok and ok.exit_status == 0


async def test_openssh_takes_the_login_with_and_without_the_asyncssh_patches(
    asyncssh_mode: AsyncsshMode, node: tuple[SSHDServer, SSHTarget]
) -> None:
    """OpenSSH's sshd, not only asyncssh's server, takes the signed request sent first (the
    patches on) and asyncssh's own none-query-signed login (K8SLK_OPS_STOCK_ASYNCSSH=1)."""
    async with SSHPool(retry=FAST_RETRY) as pool:
        conn = await pool.connect(node[1])
        result = await conn.run("echo out")
        assert result.exit_status == 0 and result.stdout == b"out\n"
        assert pool.stats.attempts == 1


async def test_stdin_is_delivered_then_eof(conn: Connection) -> None:
    data = b"line one\n\x00binary\xff\nno newline at end"
    echoed = await conn.run(["cat"], input=data, timeout=20)
    assert echoed.stdout == data
    counted = await conn.run(["wc", "-c"], input=data, timeout=20)
    assert counted.text().strip() == str(len(data))
    # Without input, stdin is at EOF from the start: `cat` ends instead of waiting forever.
    empty = await conn.run(["cat"], timeout=20)
    assert empty.ok and empty.stdout == b""


async def test_argv_reaches_the_remote_as_literal_words(conn: Connection, tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    hostile = [
        "$(rm -rf /)",
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"; touch {canary}",
        f"&& touch {canary} #",
        "it's",
        'say "hi"',
        "line one\nline two",
        "tab\there",
        "*",
        "~",
        "$HOME",
        "back\\slash",
        "  spaced  ",
        "",
        "-n",
        "ünïcødé",
    ]
    result = await conn.run(["printf", "%s\\0", *hostile])
    assert result.ok, result.stderr
    assert result.stdout.decode().split("\0")[:-1] == hostile
    assert not canary.exists()


async def test_stream_lines_follows_a_growing_file_and_close_kills_tail(
    conn: Connection, tmp_path: Path
) -> None:
    log = tmp_path / "kubeadm.out.log"
    log.write_text("first\n")
    lines = conn.stream_lines(["tail", "-n", "+1", "-F", str(log)])
    try:
        assert await anext(lines) == "first"
        with log.open("a") as handle:
            handle.write("second\n")
        assert await anext(lines) == "second"
        with log.open("a") as handle:
            handle.write("third with spaces  \n")
        assert await anext(lines) == "third with spaces  "
        found = await conn.run(["pgrep", "-f", f"^tail -n \\+1 -F {log}$"])
        pids = found.text().split()
        assert len(pids) == 1, found
    finally:
        await lines.aclose()
    await wait_gone(conn, pids[0])
    assert conn.channels_in_use == 0


async def test_cancelling_the_consumer_kills_the_remote_command(
    conn: Connection, tmp_path: Path
) -> None:
    log = tmp_path / "follow.log"
    log.write_text("ready\n")
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def consume() -> None:
        async for line in conn.stream_lines(f"tail -n +1 -F {log}"):
            await seen.put(line)

    task = asyncio.create_task(consume())
    assert await seen.get() == "ready"
    found = await conn.run(["pgrep", "-f", f"^tail -n \\+1 -F {log}$"])
    pids = found.text().split()
    assert len(pids) == 1, found
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await wait_gone(conn, pids[0])


async def test_stream_ends_when_the_command_ends(conn: Connection) -> None:
    got = [line async for line in conn.stream_lines(["printf", "a\\nb\\nc"])]
    assert got == ["a", "b", "c"]


async def test_25_concurrent_runs_share_10_channels(conn: Connection) -> None:
    results = await asyncio.gather(*(conn.run(["echo", f"job {i}"]) for i in range(25)))
    assert [r.text() for r in results] == [f"job {i}\n" for i in range(25)]
    assert conn.peak_channels == 10
    assert conn.channels_in_use == 0


async def test_channel_limit_is_configurable(node: tuple[SSHDServer, SSHTarget]) -> None:
    async with SSHPool(channels_per_connection=3, retry=FAST_RETRY) as pool:
        conn = await pool.connect(node[1])
        results = await asyncio.gather(*(conn.run(["echo", str(i)]) for i in range(9)))
        assert all(r.ok for r in results)
        assert conn.peak_channels == 3


async def test_timeout_raises_and_kills_the_command(conn: Connection, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleeper.pid"
    with pytest.raises(CommandTimeout) as caught:
        await conn.run(
            ["sh", "-c", f"echo started; echo $$ > {pidfile}; exec sleep 300"], timeout=1
        )
    assert "node-1" in str(caught.value)
    assert caught.value.stdout == b"started\n"
    await wait_gone(conn, pidfile.read_text().strip())
    # The connection is still good for the next command.
    assert (await conn.run(["echo", "after"])).stdout == b"after\n"


async def test_cancelling_a_run_kills_the_remote_command(conn: Connection, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleeper.pid"
    task = asyncio.create_task(
        conn.run(["sh", "-c", f"echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec sleep 300"])
    )
    started = await conn.run(
        ["timeout", "20", "sh", "-c", 'while [ ! -e "$1" ]; do sleep 0.02; done', "sh", str(pidfile)]
    )
    assert started.ok, "the command never started"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await wait_gone(conn, pidfile.read_text().strip())


async def test_pool_connects_each_target_once(node: tuple[SSHDServer, SSHTarget]) -> None:
    _, target = node
    twin = SSHTarget(
        name="node-1-again",
        address=target.address,
        identity_file=target.identity_file,
        known_hosts=target.known_hosts,
    )
    async with SSHPool(retry=FAST_RETRY) as pool:
        first = await asyncio.gather(*(pool.connect(target) for _ in range(8)))
        second = await pool.connect(target)
        other = await asyncio.gather(*(pool.connect(twin) for _ in range(3)))
        assert all(c is second for c in first)
        assert all(c is other[0] for c in other)
        assert other[0] is not second
        assert second.dials == 1 and other[0].dials == 1
        assert pool.stats.attempts == 2
        assert pool.stats.connections == 2
        # One key load and one options object for both nodes (same settings).
        assert pool.options_cache.keys_loaded == 1
        assert pool.options_cache.options_built == 1
        assert (await second.run(["echo", "hi"])).stdout == b"hi\n"


async def test_connection_redials_after_the_node_restarts(
    node: tuple[SSHDServer, SSHTarget],
) -> None:
    server, target = node
    async with SSHPool(retry=FAST_RETRY) as pool:
        conn = await pool.connect(target)
        assert (await conn.run(["true"])).ok
        server.restart()  # same host key: a restart, not a re-image
        for _ in range(2):  # the first call may still see the old, dying connection
            try:
                result = await conn.run(["echo", "back"])
                break
            except ConnectionLost:
                continue
        assert result.stdout == b"back\n"
        assert conn.dials == 2


async def test_closed_connection_refuses_commands(node: tuple[SSHDServer, SSHTarget]) -> None:
    async with SSHPool(retry=FAST_RETRY) as pool:
        conn = await pool.connect(node[1])
        await conn.close()
        with pytest.raises(SSHError, match="closed"):
            await conn.run(["true"])


async def test_input_is_never_logged_and_commands_only_at_debug(
    conn: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    secret = b"abcdef.0123456789abcdef"  # shaped like a bootstrap token
    with caplog.at_level(logging.DEBUG):
        result = await conn.run(["sh", "-c", "cat > /dev/null; echo stored"], input=secret)
    assert result.stdout == b"stored\n"
    assert secret.decode() not in caplog.text
    ours = [r for r in caplog.records if r.name == "k8slk_ops.ssh"]
    assert any("cat > /dev/null" in r.getMessage() for r in ours)
    assert all(r.levelno == logging.DEBUG for r in ours if "cat > /dev/null" in r.getMessage())
    noisy = [
        r for r in caplog.records if r.name.startswith("asyncssh") and r.levelno >= logging.INFO
    ]
    assert not [r for r in noisy if "cat > /dev/null" in r.getMessage()]
