"""The etcd-verify-restore step against a scripted node: what it runs, in which order, what a
failure says, and that the throwaway etcd and its directory are removed on every path (done,
failed, cancelled), or named with the commands that remove them."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster import etcdctl, restorecheck
from k8slk_ops.cluster.snapshot import SnapshotResult
from k8slk_ops.engine.context import ClusterFacts, Member, RunContext
from k8slk_ops.node import paths
from k8slk_ops.output.events import Event
from k8slk_ops.ssh import CommandResult
from k8slk_ops.steps.etcdverify import EtcdVerifyRestore
from tests.unit.test_playbook_plan import CONFIGURED, context

IMAGE = "registry.k8s.io/etcd:3.4.23-0"
MANIFEST = json.dumps({"spec": {"containers": [{"image": IMAGE, "command": [
    "etcd", "--name=cp-1", "--data-dir=/var/lib/etcd",
    "--initial-advertise-peer-urls=https://10.0.0.1:2380"]}]}}).encode()
DATA = b"a snapshot" * 50
SCRATCH = restorecheck.scratch_dir("r1")
COUNT = json.dumps({"header": {"revision": 9}, "kvs": [{"key": "L3JlZ2lzdHJ5"}], "count": 57})
NODES = json.dumps({"header": {"revision": 9}, "kvs": [
    {"key": "L3JlZ2lzdHJ5L21pbmlvbnMvY3AtMQ=="},  # /registry/minions/cp-1
    {"key": "L3JlZ2lzdHJ5L21pbmlvbnMvdy0x"}]})  # /registry/minions/w-1
LISTING = "TASK    PID    STATUS\nk8slk-etcd-verify-r1    77    {}\n"
ETCD_LOG = b"embed: listening for peers\npanic: runtime error: invalid memory address\n"


def ok(text: str = "") -> CommandResult:
    return CommandResult(0, text.encode(), b"")


def failed(text: str) -> CommandResult:
    return CommandResult(1, b"", text.encode())


class ScriptedNode:
    """A control plane whose commands answer as the script says; every command recorded."""

    name = "cp-1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.files: dict[str, bytes] = {f"{paths.MANIFESTS}/etcd.yaml": MANIFEST,
                                        restorecheck.log_path(SCRATCH): ETCD_LOG}
        self.restore = ok()
        self.counts: list[CommandResult] = [ok(COUNT)]
        self.task = "RUNNING"
        self.cleanup = ok()
        self.hang_on_count: asyncio.Event | None = None
        self.counting = asyncio.Event()  # set once the first count is asked

    def kinds(self) -> list[str]:
        """What each command was, in order."""
        out = []
        for argv in self.calls:
            if argv[:2] == ["sh", "-c"]:
                out.append("cleanup" if argv[2] == restorecheck.CLEANUP_SCRIPT else "mkdir")
            elif "run" in argv:
                out.append("serve" if "-d" in argv else "restore")
            elif "exec" in argv:
                out.append("nodes" if restorecheck.NODES_PREFIX in argv else "count")
            else:
                out.append(" ".join(argv[3:]))
        return out

    async def shell(self, argv: Sequence[str], *, input: bytes | None = None,
                    timeout: float | None = None) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        kind = self.kinds()[-1]
        if kind == "restore":
            return self.restore
        if kind == "count":
            self.counting.set()
            if self.hang_on_count is not None:
                await self.hang_on_count.wait()
            return self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]
        if kind == "nodes":
            return ok(NODES)
        if kind == "task ls":
            return ok(LISTING.format(self.task))
        if kind == "cleanup":
            return self.cleanup
        return ok()

    async def read_file(self, path: str) -> bytes | None:
        return self.files.get(path)

    async def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        self.files[path] = data

    async def file_digest(self, path: str) -> tuple[int, str]:
        data = self.files[path]
        return len(data), hashlib.sha256(data).hexdigest()


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def emit(self, event: Event) -> None:
        self.seen.append(event)


def _ctx(tmp_path: Path, node: ScriptedNode) -> RunContext:
    names = ["cp-1", "cp-2", "w-1", "w-2"]
    members = {n: Member(n, True, n.startswith("cp")) for n in names}
    plan = context(tmp_path, ClusterFacts(primary="cp-1", initialised=True, members=members),
                   dict.fromkeys(names, CONFIGURED))
    plan = dataclasses.replace(plan, options=dataclasses.replace(
        plan.options, snapshot_verify_restore=True))

    async def connect(name: str) -> ScriptedNode:
        return node

    ctx = RunContext(plan, Events(), connect, lambda _s: None)  # type: ignore[arg-type]
    path = tmp_path / "lab-20261207T060000Z.db"
    path.write_bytes(DATA)
    ctx.state.snapshot = SnapshotResult(
        path, "cp-1", len(DATA), hashlib.sha256(DATA).hexdigest(),
        etcdctl.SnapshotStatus(1, 9, 60), datetime.now(UTC), "local etcdctl")
    return ctx


def _apply(ctx: RunContext) -> None:
    step = EtcdVerifyRestore()
    asyncio.run(step.apply(step.Options(), ctx, "cp-1"))


def test_a_snapshot_that_restores_is_verified_and_nothing_is_left(tmp_path: Path) -> None:
    node = ScriptedNode()
    ctx = _ctx(tmp_path, node)
    _apply(ctx)
    check = ctx.state.restore_check
    assert check is not None and check.verified
    assert (check.keys, check.nodes) == (57, ("cp-1", "w-1"))
    assert node.kinds() == ["mkdir", "restore", "serve", "count", "nodes", "cleanup"]
    assert node.files[restorecheck.snapshot_path(SCRATCH)] == DATA  # the kept file itself
    restore = node.calls[1]
    assert f"type=bind,src={SCRATCH},dst=/restore,options=rbind:rw" in restore
    assert restore[restore.index(IMAGE) + 2:][:3] == ["etcdctl", "snapshot", "restore"]


def test_an_etcd_that_is_slow_to_serve_is_asked_again(tmp_path: Path) -> None:
    node = ScriptedNode()
    node.counts = [failed("Error: context deadline exceeded"), ok(COUNT)]
    ctx = _ctx(tmp_path, node)
    _apply(ctx)
    assert node.kinds()[3:6] == ["count", "task ls", "count"]
    assert ctx.state.restore_check is not None and ctx.state.restore_check.verified


def test_an_etcd_that_dies_fails_the_check_with_its_log_and_is_removed(tmp_path: Path) -> None:
    node = ScriptedNode()
    node.counts = [failed("Error: context deadline exceeded")]
    node.task = "STOPPED"
    ctx = _ctx(tmp_path, node)
    with pytest.raises(NodeError) as raised:
        _apply(ctx)
    message = str(raised.value)
    assert message.startswith("restore check failed: the throwaway etcd exited before it "
                              "answered")
    assert "lab-20261207T060000Z.db is kept" in message and "may still be fine" in message
    assert "run `etcd snapshot --verify-restore` again" in message
    assert raised.value.log_tail[-1] == "panic: runtime error: invalid memory address"
    assert node.kinds()[-1] == "cleanup"
    check = ctx.state.restore_check
    assert check is not None and not check.verified
    assert (tmp_path / "lab-20261207T060000Z.db").read_bytes() == DATA


def test_a_snapshot_that_does_not_restore_says_so_and_cleans_up(tmp_path: Path) -> None:
    node = ScriptedNode()
    node.restore = failed("Error: write /restore/data/member/snap/db: no space left on device")
    ctx = _ctx(tmp_path, node)
    with pytest.raises(NodeError, match="it does not restore: .*no space left on device.*is "
                       r"kept.*df /var/node") as raised:
        _apply(ctx)
    assert "serve" not in node.kinds()
    assert node.kinds()[-1] == "cleanup"
    assert raised.value.phase == "verify-restore"


def test_a_cleanup_that_leaves_something_fails_the_node_and_names_the_fix(
    tmp_path: Path
) -> None:
    node = ScriptedNode()
    node.cleanup = failed(f"still there: directory {SCRATCH}")
    ctx = _ctx(tmp_path, node)
    with pytest.raises(NodeError) as raised:
        _apply(ctx)
    message = str(raised.value)
    assert message.startswith("restore verified: 57 keys, 2 nodes (cp-1, w-1), but still there")
    assert f"rm -rf {SCRATCH}" in message
    assert ctx.state.cleanup_errors and SCRATCH in ctx.state.cleanup_errors[0]


def test_a_cancelled_check_still_removes_the_throwaway_etcd(tmp_path: Path) -> None:
    node = ScriptedNode()
    ctx = _ctx(tmp_path, node)

    async def cancel_while_waiting() -> None:
        node.hang_on_count = asyncio.Event()  # the count never comes back
        step = EtcdVerifyRestore()
        task = asyncio.create_task(step.apply(step.Options(), ctx, "cp-1"))
        await node.counting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_while_waiting())
    assert node.kinds()[-1] == "cleanup"
    assert node.calls[-1][-2:] == ["k8slk-etcd-verify-r1", SCRATCH]
