"""asyncssh's client sends the packets of one loop turn in one write, and builds file-free
per-connection options without a thread; a real connection works through both, and without
them (``K8SLK_OPS_STOCK_ASYNCSSH=1``) as asyncssh does it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from k8slk_ops.engine.probe import targets_of
from k8slk_ops.inventory import load_inventory
from k8slk_ops.ssh.options import KEY_ONLY, ClientSettings, OptionsCache
from k8slk_ops.ssh.patches import asyncssh_version, coalesced_writes, derived_options
from k8slk_ops.ssh.pool import SSHPool
from tests.conftest import AsyncsshMode
from tests.fleet.inprocess import InProcessFleet

# A derived copy is compared with a full build of the asyncssh installed: meaningful on the
# releases the derivation was checked against, which are the ones it is applied on.
derivation_checked = pytest.mark.skipif(
    not derived_options.PATCH.fits(asyncssh_version()),
    reason=f"derived-options is not checked against asyncssh {asyncssh_version()}",
)


class _Recorder:
    """An asyncio transport that records every write and call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.calls.append(("abort", b""))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.9", 22)}.get(name, default)


async def test_writes_of_one_loop_turn_leave_as_one_write_in_order() -> None:
    inner = _Recorder()
    transport = coalesced_writes.CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"a")
    transport.write(b"bc")
    assert inner.calls == []
    assert transport.get_write_buffer_size() == 3
    await asyncio.sleep(0)
    transport.write(b"d")
    await asyncio.sleep(0)
    assert inner.calls == [("write", b"abc"), ("write", b"d")]
    assert transport.get_extra_info("peername") == ("127.0.0.9", 22)


@pytest.mark.parametrize("end", ["close", "abort"])
async def test_closing_or_aborting_sends_what_is_pending_first(end: str) -> None:
    inner = _Recorder()
    transport = coalesced_writes.CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"disconnect")
    getattr(transport, end)()
    await asyncio.sleep(0)
    assert inner.calls == [("write", b"disconnect"), (end, b"")]


@derivation_checked  # asyncssh.SSHClientConnectionOptions.construct is not everywhere
async def test_file_free_options_are_built_without_a_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, asyncssh_mode: AsyncsshMode
) -> None:
    loop = asyncio.get_running_loop()
    hops: list[object] = []
    original = loop.run_in_executor

    def counting(executor: Any, func: Any, *args: Any) -> Any:
        hops.append(func)
        return original(executor, func, *args)

    monkeypatch.setattr(loop, "run_in_executor", counting)
    base = asyncssh.SSHClientConnectionOptions(
        username="root", client_keys=None, known_hosts=None, config=[], agent_path=None
    )
    await asyncssh.SSHClientConnectionOptions.construct(base, config=[], host="h", port=22)
    assert hops != []  # not marked: in the thread pool, as asyncssh does
    hops.clear()
    derived_options.mark_file_free(base)
    built = await asyncssh.SSHClientConnectionOptions.construct(
        base, config=[], host="h", port=2222
    )
    if "derived-options" in asyncssh_mode.applied:
        assert hops == []
    else:
        assert hops != []  # the mark means nothing to asyncssh as it comes
    assert built.port == 2222 and built.username == "root"
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  Port 2200\n")
    read = await asyncssh.SSHClientConnectionOptions.construct(base, config=[str(config)], host="h")
    assert read.port == 2200
    assert hops != []  # a config file to read goes to the pool again


async def test_the_pool_marks_options_file_free_only_without_an_ssh_config(
    fleet: InProcessFleet,
) -> None:
    cache = OptionsCache()
    target = targets_of(load_inventory(fleet.inventory))["w-1"]
    settings = ClientSettings.of(target)
    assert settings.config_file is None
    options = await cache.options(settings)
    assert getattr(options, "_k8slk_file_free", False)


async def test_a_node_answers_through_the_coalesced_transport(
    fleet: InProcessFleet, asyncssh_mode: AsyncsshMode
) -> None:
    target = targets_of(load_inventory(fleet.inventory))["w-1"]
    async with SSHPool() as pool:
        conn = await pool.connect(target)
        assert (await conn.run(["true"])).exit_status == 0
        assert (await conn.run(["false"])).exit_status == 1
        ssh = conn._ssh
        assert ssh is not None
        coalesced = isinstance(ssh._transport, coalesced_writes.CoalescingTransport)
        assert coalesced == ("coalesced-writes" in asyncssh_mode.applied)


async def test_command_lines_are_not_made_for_a_disabled_debug_log(
    fleet: InProcessFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k8slk_ops.ssh import connection

    def unwanted(command: object) -> str:
        raise AssertionError("a debug line was made though debug is off")

    monkeypatch.setattr(connection, "command_line", unwanted)
    logging.getLogger("k8slk_ops.ssh").setLevel(logging.INFO)
    try:
        target = targets_of(load_inventory(fleet.inventory))["w-1"]
        async with SSHPool() as pool:
            conn = await pool.connect(target)
            assert (await conn.run(["true"])).exit_status == 0
            async with contextlib.aclosing(conn.stream_lines(["echo", "x"])) as lines:
                got = [line async for line in lines]
                assert got[0] == "x"
    finally:
        logging.getLogger("k8slk_ops.ssh").setLevel(logging.NOTSET)


def test_the_preferred_ciphers_are_a_list_asyncssh_need_not_expand() -> None:
    from asyncssh.encryption import get_default_encryption_algs

    from k8slk_ops.ssh.options import PREFERRED_CIPHERS

    assert isinstance(PREFERRED_CIPHERS, list)
    assert PREFERRED_CIPHERS[:2] == ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
    defaults = [a.decode() for a in get_default_encryption_algs()]
    assert sorted(PREFERRED_CIPHERS) == sorted(defaults)  # the defaults, GCM first, none lost
    options = asyncssh.SSHClientConnectionOptions(
        encryption_algs=PREFERRED_CIPHERS, config=[], known_hosts=None, agent_path=None
    )
    assert [a.decode() for a in options.encryption_algs] == PREFERRED_CIPHERS


def _full_and_derived(base: Any, **kwargs: Any) -> tuple[Any, Any]:
    cls = asyncssh.SSHClientConnectionOptions
    loop = asyncio.get_running_loop()
    return cls(base, loop=loop, **kwargs), derived_options.derive(cls, base, loop, dict(kwargs))


def _fields(options: Any) -> dict[str, Any]:
    # The parsed (empty) ssh_config is an object per build; what it holds is compared instead.
    fields = {k: v for k, v in vars(options).items() if k not in ("config", "kwargs")}
    fields["config"] = vars(options.config)["_options"]
    return fields


@derivation_checked
@pytest.mark.parametrize("host", ["127.1.0.7", "::1", "node-7.example"])
async def test_derived_options_are_a_full_build_field_by_field(host: str) -> None:
    keys = asyncssh.load_keypairs([asyncssh.generate_private_key("ssh-ed25519")])
    base = asyncssh.SSHClientConnectionOptions(
        username="root", client_keys=keys, known_hosts=([], [], []), config=[], agent_path=None,
        connect_timeout=7, keepalive_interval=9, keepalive_count_max=3, **KEY_ONLY,
    )
    for port, algs in ((22, ["ssh-ed25519"]), (2222, ["ecdsa-sha2-nistp256", "ssh-ed25519"])):
        def factory() -> asyncssh.SSHClient:
            return asyncssh.SSHClient()

        kwargs = dict(host=host, port=port, tunnel=(), client_keys=keys, config=[],
                      client_factory=factory, server_host_key_algs=algs)
        full, derived = _full_and_derived(base, **kwargs)
        assert _fields(derived) == _fields(full)
        assert derived.protocol_factory is factory and derived.host == host


@derivation_checked
async def test_derived_options_share_no_list_a_connection_consumes() -> None:
    keys = asyncssh.load_keypairs([asyncssh.generate_private_key("ssh-ed25519")])
    base = asyncssh.SSHClientConnectionOptions(
        username="root", client_keys=keys, known_hosts=([], [], []), config=[], agent_path=None,
    )
    kwargs: dict[str, Any] = dict(port=22, tunnel=(), client_keys=keys, config=[],
                                  client_factory=asyncssh.SSHClient,
                                  server_host_key_algs=["ssh-ed25519"])
    cls = asyncssh.SSHClientConnectionOptions
    loop = asyncio.get_running_loop()
    first = derived_options.derive(cls, base, loop, dict(kwargs, host="a"))
    second = derived_options.derive(cls, base, loop, dict(kwargs, host="b"))
    first.client_keys.pop(0)  # as SSHClientConnection does with each key it tries
    assert len(second.client_keys) == 1 and first.host == "a" and second.host == "b"
    unknown = derived_options.derive(cls, base, loop, dict(kwargs, host="c", family=0))
    assert unknown.host == "c"  # a value it does not know: built in full
