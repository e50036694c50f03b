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

import pytest

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
