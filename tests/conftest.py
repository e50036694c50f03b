"""Shared fixtures. The lab's fixtures are thin wrappers over tests/lab/fixture.py.

The suite runs on several pytest workers (pytest-xdist, ``--dist loadfile``, see noxfile.py):
a module's tests stay together on one worker, as they may share a module fixture (a lab, a
fleet) or a fixed address (the SSH tests' sshd on 127.0.240.N). The fixtures here give each
worker its own copy of anything process- or machine-wide; labs claim their own slot
(tests/lab/slots.py)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from k8slk_ops.ssh import patches, prepare_asyncssh
from tests.lab.fixture import LabFactory
from tests.lab.fixture import lab_factory as _lab_factory


@pytest.fixture(scope="session", autouse=True)
def own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """k8slk-ops keeps its local lock under $XDG_CACHE_HOME (else ~/.cache), keyed by cluster
    name and endpoint. Every simulated fleet is cluster ``fleet`` at the same endpoint, so two
    workers (or a test run beside someone's demo) bootstrapping fleets at once would find each
    other's lock: each worker gets its own cache directory, as if on its own machine."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def own_logging() -> Iterator[None]:
    """The CLI run in-process sets up the ``k8slk_ops`` logger for itself (its level, handlers,
    no propagation to the root logger): put back after every test, so that a later test's
    ``caplog`` sees the records whichever test a worker happened to run before it."""
    logger = logging.getLogger("k8slk_ops")
    saved = (logger.level, logger.propagate, list(logger.handlers), logger.disabled)
    yield
    logger.setLevel(saved[0])
    logger.propagate, logger.handlers[:], logger.disabled = saved[1], saved[2], saved[3]


@pytest.fixture(scope="session", autouse=True)
def asyncssh_as_the_tool_runs_it() -> None:
    """The tool applies its asyncssh patches at its run start (k8slk_ops/cli/cliutil.py), not when a
    pool is made: tests that make a pool or connect without the command line get the same
    asyncssh here (as it comes for the whole run with ``K8SLK_OPS_STOCK_ASYNCSSH=1``)."""
    prepare_asyncssh()


@dataclass(frozen=True)
class AsyncsshMode:
    """How asyncssh runs in a test: ``stock`` when the patches were switched off, ``applied``
    the patches in effect (none when stock; on a release no patch was checked against, none
    either)."""

    stock: bool
    applied: frozenset[str]


@pytest.fixture(params=["patched", "stock"])
def asyncssh_mode(request: pytest.FixtureRequest) -> Iterator[AsyncsshMode]:
    """Runs the test twice: with the tool's asyncssh patches (where checked), and with
    ``K8SLK_OPS_STOCK_ASYNCSSH=1`` (asyncssh as it comes, which must log in and work as well).
    The environment and the patches are as before afterwards."""
    stock = request.param == "stock"
    before = os.environ.get(patches.STOCK_ENV)
    if not stock and patches.stock_requested():
        pytest.skip(f"{patches.STOCK_ENV} is set for the whole run")
    if stock:
        os.environ[patches.STOCK_ENV] = "1"
    try:
        patches.install()
        yield AsyncsshMode(stock=stock, applied=patches.applied())
    finally:
        if before is None:
            os.environ.pop(patches.STOCK_ENV, None)
        else:
            os.environ[patches.STOCK_ENV] = before
        patches.install()


@pytest.fixture
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    """Start labs in a test: ``lab_factory(nodes=3, control_planes=1, settle=0.2, ...)``.
    Every lab it started is taken down when the test ends, passed or failed."""
    with _lab_factory(tmp_path_factory.mktemp("lab")) as factory:
        yield factory


@pytest.fixture(scope="module")
def lab_factory_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    """The same, shared by the tests of one module (labs down after its last test)."""
    with _lab_factory(tmp_path_factory.mktemp("lab")) as factory:
        yield factory
