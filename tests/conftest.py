"""Shared fixtures. The lab's fixtures are thin wrappers over tests/lab/fixture.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.fixture import LabFactory
from tests.lab.fixture import lab_factory as _lab_factory


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
