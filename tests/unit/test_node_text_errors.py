"""What a node prints that cannot be read is a message, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8slk_ops.cli import cliutil
from tests.fleet import kubectl as fleet_kubectl
from tests.fleet.inprocess import InProcessFleet
from tests.fleet.node import SimNode
from tests.fleet.result import NeedsInput, Pending, Result
from tests.unit.clirun import K8slk


@pytest.mark.parametrize(
    ("printed", "said"),
    [(b"\xff\xfe{not utf-8", "not UTF-8"), (b"<html>502 Bad Gateway</html>\n", "did not print JSON")],
)
def test_unreadable_node_list_is_a_message(
    fleet: InProcessFleet, k8slk: K8slk, monkeypatch: pytest.MonkeyPatch, printed: bytes, said: str
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    real = fleet_kubectl.cli

    def garbled(node: SimNode, argv: list[str]) -> Result | Pending | NeedsInput:
        if argv[1:3] == ["get", "nodes"]:
            return Result.ok(printed)
        return real(node, argv)

    monkeypatch.setattr(fleet_kubectl, "cli", garbled)
    run = k8slk("add-node", fleet.inventory, "--json")
    assert run.code == 3, run.why()
    assert said in run.stderr and "cp-1" in run.stderr
    assert "Traceback" not in run.stderr + run.log


def test_an_inventory_too_large_for_memory_is_exit_2(
    k8slk: K8slk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[control_plane]\ncp-1 ansible_host=192.0.2.1\n")

    def exhausted(path: Path) -> object:
        raise MemoryError

    monkeypatch.setattr(cliutil, "load_inventory", exhausted)
    for args in (("inventory", "check", inventory), ("bootstrap", inventory, "--dry-run")):
        run = k8slk(*args)
        assert run.code == 2, run.why()
        assert "does not fit in memory" in run.stderr and str(inventory) in run.stderr
        assert "Traceback" not in run.stderr
