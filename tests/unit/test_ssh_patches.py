"""The asyncssh patches are applied by the run's start only, only on the releases each was
checked against, never with ``K8SLK_OPS_STOCK_ASYNCSSH=1``, and once however often asked."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import asyncssh
import pytest

from k8slk_ops.ssh import patches
from k8slk_ops.ssh.patches.base import Patch
from k8slk_ops.ssh.pool import SSHPool
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk

ALL = frozenset(p.name for p in patches.PATCHES)
# What a patch replaces is known on the releases it was checked against, and only there (on
# another, the attributes it names may not exist): the tests that look at them need such a
# release, the lock's.
on_a_checked_release = pytest.mark.skipif(
    not all(p.fits(patches.asyncssh_version()) for p in patches.PATCHES),
    reason=f"not every patch is checked against asyncssh {patches.asyncssh_version()}",
)
Attributes = dict[tuple[type, str], object]


def _targets() -> list[tuple[type, str]]:
    """Every asyncssh attribute a patch replaces (what it would replace, built but not set)."""
    return [(r.owner, r.attribute) for p in patches.PATCHES for r in p.make()]


def _current() -> Attributes:
    """Each replaced attribute as its class now holds it (None: inherited, not its own)."""
    return {(owner, name): vars(owner).get(name) for owner, name in _targets()}


@pytest.fixture
def stock_first() -> Iterator[Attributes]:
    """asyncssh as it was imported, and its attributes as they are then; the environment and the
    patches put back as the run has them afterwards."""
    before = os.environ.pop(patches.STOCK_ENV, None)
    patches.restore()
    try:
        yield _current()
    finally:
        if before is not None:
            os.environ[patches.STOCK_ENV] = before
        patches.install()


@on_a_checked_release
def test_the_originals_are_asyncssh_own(stock_first: Attributes) -> None:
    """What the other tests compare with is asyncssh's code, not a wrapper of ours."""
    for owner, name in stock_first:
        where = getattr(owner, name)
        function = getattr(where, "__func__", where)
        assert function.__module__.startswith("asyncssh."), (owner, name, function)


@on_a_checked_release
def test_the_env_switch_leaves_asyncssh_untouched(
    stock_first: Attributes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(patches.STOCK_ENV, "1")
    outcomes = patches.install()
    assert not any(o.applied for o in outcomes) and patches.applied() == frozenset()
    assert {o.why for o in outcomes} == {f"{patches.STOCK_ENV} is set"}
    assert _current() == stock_first


@on_a_checked_release
def test_the_env_switch_takes_out_patches_applied_earlier(
    stock_first: Attributes, monkeypatch: pytest.MonkeyPatch
) -> None:
    patches.install()
    assert _current() != stock_first
    monkeypatch.setenv(patches.STOCK_ENV, "1")
    patches.install()
    assert _current() == stock_first
    monkeypatch.setenv(patches.STOCK_ENV, "0")  # 0 means no
    patches.install()
    assert patches.applied() == ALL


@on_a_checked_release
def test_a_patch_is_skipped_on_a_release_it_was_not_checked_against(
    stock_first: Attributes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(asyncssh, "__version__", "2.99.0")
    # Say direct-auth alone was checked on 2.99.0: it is applied there, and no other patch is.
    fitted = tuple(
        dataclasses.replace(p, checked=frozenset({"2.99.0"})) if p.name == "direct-auth" else p
        for p in patches.PATCHES
    )
    monkeypatch.setattr(patches, "PATCHES", fitted)
    with caplog.at_level(logging.DEBUG, logger="k8slk_ops.ssh"):
        outcomes = patches.install()
    assert {o.patch: o.applied for o in outcomes} == {name: name == "direct-auth" for name in ALL}
    why = {o.patch: o.why for o in outcomes}
    assert why["coalesced-writes"] == "not checked against asyncssh 2.99.0, only 2.24.1"
    changed = {key for key, value in _current().items() if value is not stock_first[key]}
    assert changed == {(asyncssh.SSHClientConnection, "try_next_auth"),
                       (_public_key_auth(), "_start")}
    [line] = [r.getMessage() for r in caplog.records if "patches applied" in r.getMessage()]
    assert line == (
        "asyncssh 2.99.0: patches applied: direct-auth; skipped: coalesced-writes, "
        "derived-options, quiet-logs (not checked against asyncssh 2.99.0, only 2.24.1)"
    )
    monkeypatch.setattr(asyncssh, "__version__", "2.100.0")  # a release none was checked on
    patches.install()
    assert _current() == stock_first


def test_this_release_gets_exactly_the_patches_checked_against_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On any release, the lock's or another (nox -s lowest): none that was not checked."""
    monkeypatch.delenv(patches.STOCK_ENV, raising=False)
    try:
        outcomes = patches.install()
        fitting = {p.name for p in patches.PATCHES if p.fits(asyncssh.__version__)}
        assert {o.patch for o in outcomes if o.applied} == fitting == patches.applied()
    finally:
        monkeypatch.undo()
        patches.install()


def test_every_patch_names_the_locked_release_among_those_checked() -> None:
    """The lock (requirements/lock.txt) is what the suite runs on; a patch not checked there
    would never be tested with its patch on."""
    assert all(isinstance(p, Patch) and "2.24.1" in p.checked for p in patches.PATCHES)


@on_a_checked_release
def test_install_is_idempotent(stock_first: Attributes) -> None:
    patches.install()
    once = _current()
    assert patches.install() == patches.install()
    assert _current() == once  # not wrapped again
    patches.restore()
    assert _current() == stock_first


@on_a_checked_release
def test_making_a_pool_or_importing_the_tool_changes_nothing() -> None:
    """Only the run's start applies them: a fresh interpreter that imports the command line and
    makes a pool has asyncssh as it comes."""
    probe = (
        "import asyncio, k8slk_ops.cli.main, k8slk_ops.ssh\n"
        "from k8slk_ops.ssh import patches\n"
        "before = {(o, n): vars(o).get(n) for p in patches.PATCHES for r in p.make()"
        " for o, n in [(r.owner, r.attribute)]}\n"
        "async def pool():\n"
        "    async with k8slk_ops.ssh.SSHPool():\n"
        "        pass\n"
        "asyncio.run(pool())\n"
        "after = {k: vars(k[0]).get(k[1]) for k in before}\n"
        "assert after == before and not patches.applied(), 'patched by import or pool'\n"
        "assert all(getattr(getattr(o, n), '__func__', getattr(o, n)).__module__"
        ".startswith('asyncssh.') for o, n in before), 'not asyncssh own'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != patches.STOCK_ENV}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True, env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@on_a_checked_release
async def test_a_pool_made_in_process_leaves_them_as_they_are(stock_first: Attributes) -> None:
    async with SSHPool():
        pass
    assert patches.applied() == frozenset() and _current() == stock_first


@on_a_checked_release
def test_the_run_start_applies_them_and_logs_which(
    stock_first: Attributes, fleet: InProcessFleet, k8slk: K8slk, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = k8slk("status", fleet.inventory, "--verbose")
    assert patches.applied() == ALL, run.why()
    assert (
        f"asyncssh {asyncssh.__version__}: patches applied: coalesced-writes, derived-options, "
        "direct-auth, quiet-logs; skipped: none"
    ) in run.log
    monkeypatch.setenv(patches.STOCK_ENV, "1")
    stock = k8slk("status", fleet.inventory, "--verbose")
    assert stock.code == run.code, stock.why()
    assert patches.applied() == frozenset() and _current() == stock_first
    assert (
        "patches applied: none; skipped: coalesced-writes, derived-options, direct-auth, "
        f"quiet-logs ({patches.STOCK_ENV} is set)"
    ) in stock.log


def _public_key_auth() -> type:
    from asyncssh import auth

    cls: type = auth._ClientPublicKeyAuth
    return cls
