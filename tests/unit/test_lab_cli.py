"""``python -m tests.lab up`` hands its switches to Lab.up."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from tests.lab import cli, preflight
from tests.lab.errors import LabError
from tests.lab.lab import Lab
from tests.lab.state import LabState


class _Started:
    slot = 7
    nodes = ()
    inventory_path = Path("/tmp/x/inventory.yml")


@pytest.mark.parametrize(("flags", "strict", "addon"), [
    ([], True, True), (["--strict-network"], True, True), (["--lenient-network"], False, True),
    (["--no-addons"], True, False),
])
def test_up_strict_network(monkeypatch: pytest.MonkeyPatch, flags: list[str],
                           strict: bool, addon: bool) -> None:
    seen = _up_with(monkeypatch, flags)
    assert seen["strict_network"] is strict
    assert seen["pod_network_addon"] is addon


@pytest.mark.parametrize(("flags", "real_etcd"), [
    ([], True), (["--real-etcd"], True), (["--no-real-etcd"], False),
])
def test_up_runs_a_real_etcd_unless_told_not_to(monkeypatch: pytest.MonkeyPatch,
                                               flags: list[str], real_etcd: bool) -> None:
    assert _up_with(monkeypatch, flags)["real_etcd"] is real_etcd


def _up_with(monkeypatch: pytest.MonkeyPatch, flags: list[str]) -> dict[str, Any]:
    """What ``python -m tests.lab up --dir /tmp/x FLAGS`` asks of Lab.up (which is not run)."""
    seen: dict[str, Any] = {}

    def up(directory: str, **kwargs: Any) -> _Started:
        seen.update(kwargs)
        return _Started()

    monkeypatch.setattr(cli.Lab, "up", up)
    assert cli.main(["up", "--dir", "/tmp/x", *flags]) == 0
    return seen


def test_a_lab_without_etcd_installed_names_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """No silent fallback to the file store: the lab refuses to start and says what to install,
    unless it was asked for no etcd."""
    real_which = preflight.shutil.which
    monkeypatch.setattr(preflight.shutil, "which",
                        lambda b: None if b in ("etcd", "etcdctl") else real_which(b) or b)
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    found = " ".join(preflight.problems())
    assert "etcd-client etcd-server" in found and "install-deps.sh" in found
    assert "etcd" not in " ".join(preflight.problems(real_etcd=False))
    with pytest.raises(LabError, match="etcd-server"):
        preflight.check()


def test_the_lab_states_default_is_a_real_etcd() -> None:
    assert LabState(1, True, 0.0, 0.0, []).real_etcd is True
    assert _lab_up_default("real_etcd") is True


def _lab_up_default(name: str) -> Any:
    return inspect.signature(Lab.up).parameters[name].default
