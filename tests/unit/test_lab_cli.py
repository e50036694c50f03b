"""``python -m tests.lab up`` hands its switches to Lab.up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.lab import cli


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
    seen: dict[str, Any] = {}

    def up(directory: str, **kwargs: Any) -> _Started:
        seen.update(kwargs)
        return _Started()

    monkeypatch.setattr(cli.Lab, "up", up)
    assert cli.main(["up", "--dir", "/tmp/x", *flags]) == 0
    assert seen["strict_network"] is strict
    assert seen["pod_network_addon"] is addon
