"""The run's lifecycle with the nodes faked at the connection: what the report says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k8slk_ops.engine.context import RunOptions
from k8slk_ops.engine.operation import Operation
from k8slk_ops.engine.outcomes import NOTHING_TO_DO
from k8slk_ops.engine.playbook import load_builtin, load_playbook
from k8slk_ops.inventory import load_inventory
from k8slk_ops.output.events import EventKind
from k8slk_ops.output.rows import StatusRow
from k8slk_ops.ssh.target import CommandResult
from k8slk_ops.steps import STEPS
from tests.unit.test_cluster import INVENTORY, FakeNode, Sink, World


class LockingNode(FakeNode):
    """Takes the cluster lock and answers `kubeadm certs check-expiration` with nothing."""

    async def shell(self, argv: list[str], **_: Any) -> CommandResult:
        return CommandResult(0, b"taken\n", b"")

    async def remove_file(self, path: str) -> None:
        return None

    async def kubeadm(self, *args: str, timeout: float | None = 120) -> CommandResult:
        return CommandResult(1, b"", b"not in this test")

    async def kubelet_exec(self, argv: list[str], **_: Any) -> CommandResult:
        """The cluster lock's Lease: created, then gone by the time it is read back."""
        if argv[1] == "create":
            return CommandResult(0, b'{"metadata": {"resourceVersion": "1"}}', b"")
        if argv[1] == "get":
            return CommandResult(1, b"", b'Error from server (NotFound): leases "x" not found')
        return CommandResult(0, b"", b"")

    async def read_file(self, path: str) -> bytes | None:
        return None


def operation(tmp_path: Path, world: World, book: Any, sink: Sink) -> Operation:
    inv = tmp_path / "inv.yml"
    inv.write_text(INVENTORY)
    op = Operation(book, load_inventory(inv), RunOptions(run_id="r1"), sink, lambda s: None,
                   command=book.name, local_lock_dir=str(tmp_path / "locks"))

    async def opener(target: Any) -> Any:
        world.dials.append(target)
        return LockingNode(world, target.name)

    op.cluster._opener = opener
    return op


async def test_a_read_only_run_never_says_nothing_to_do(tmp_path: Path) -> None:
    world = World()
    world.members = ["cp-1", "w-1", "w-2"]
    sink = Sink()
    report = await operation(tmp_path, world, load_builtin("status", STEPS), sink).run()
    assert report.exit_code == 0
    assert NOTHING_TO_DO not in report.messages
    assert not any("nothing to do" in e.message for e in sink.events)
    row = report.node("w-1").row
    assert isinstance(row, StatusRow) and row.registered


async def test_a_converged_run_says_nothing_to_do_once(tmp_path: Path) -> None:
    world = World()
    world.members = ["cp-1", "w-1", "w-2"]
    book_path = tmp_path / "ready.yml"
    book_path.write_text("name: ready\nstages:\n  - name: r\n    steps:\n      - wait-ready: {}\n")
    sink = Sink()
    report = await operation(tmp_path, world, load_playbook(book_path, STEPS), sink).run()
    assert report.exit_code == 0
    assert report.messages.count(NOTHING_TO_DO) == 1
    assert not any(e.kind == EventKind.INFO and "nothing to do" in e.message for e in sink.events)
    assert {n.version for n in report.nodes} == {"v1.31.3"}
