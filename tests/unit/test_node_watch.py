"""Ready by events: ``kubectl get nodes --watch --output-watch-events -o json`` read line by
line, the run's one watcher waking each waiter on news of its own node, and the poll it falls
back to; and ``withNext``, the stages that run side by side, checked when the playbook loads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError, UsageError
from k8slk_ops.cluster import membership
from k8slk_ops.cluster.membership import WATCH_ARGS, Member, MemberWatcher
from k8slk_ops.engine.playbook import load_playbook
from k8slk_ops.ssh.target import CommandResult
from k8slk_ops.steps import STEPS


def _node(name: str, ready: bool, version: str = "7") -> dict[str, Any]:
    condition: dict[str, str] = {"type": "Ready", "status": "True" if ready else "False"}
    if not ready:
        condition |= {"reason": "KubeletNotReady", "message": "container runtime network not ready"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {}, "resourceVersion": version},
        "spec": {},
        "status": {"conditions": [condition], "nodeInfo": {"kubeletVersion": "v1.31.3"}},
    }


def _event(kind: str, obj: dict[str, Any]) -> str:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":"))


# -- the parser --------------------------------------------------------------------------------


def test_an_added_or_modified_event_carries_the_node_and_its_version() -> None:
    event = kubeadm.parse_node_event(_event("MODIFIED", _node("w-1", True, "812")))
    assert event.type == "MODIFIED" and event.resource_version == "812"
    assert event.node is not None and event.node.name == "w-1" and event.node.ready
    added = kubeadm.parse_node_event(_event("ADDED", _node("w-2", False)))
    assert added.node is not None and not added.node.ready
    assert added.node.not_ready_reason == "KubeletNotReady"


def test_a_bookmark_has_a_version_and_no_node() -> None:
    line = _event("BOOKMARK", {"kind": "Node", "apiVersion": "v1",
                               "metadata": {"resourceVersion": "9001"}})
    event = kubeadm.parse_node_event(line)
    assert (event.type, event.node, event.resource_version) == ("BOOKMARK", None, "9001")


def test_an_error_event_keeps_the_api_servers_words() -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
              "reason": "Expired", "message": "too old resource version: 5 (812)"}
    event = kubeadm.parse_node_event(_event("ERROR", status))
    assert event.type == "ERROR" and event.node is None
    assert event.message == "too old resource version: 5 (812)"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("{", "not JSON"),
        ("[]", "an event without an object"),
        ('{"type": "ADDED"}', "an event without an object"),
        (json.dumps({"type": "RENAMED", "object": {}}), "unknown event type 'RENAMED'"),
        (json.dumps(_node("w-1", True), indent=4).splitlines()[0], "not JSON"),
        (_event("ADDED", {"metadata": {}}), "a node without a name"),
    ],
)
def test_what_is_not_an_event_is_refused(line: str, words: str) -> None:
    with pytest.raises(kubeadm.ParseError, match=words):
        kubeadm.parse_node_event(line)


# -- the watcher -------------------------------------------------------------------------------


class _Primary:
    """A control plane whose watch prints what the test queues (None ends it), and whose node
    list (the fallback poll) is ``nodes``."""

    name = "cp-1"

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.watches: list[tuple[str, ...]] = []
        self.closed = 0
        self.nodes: list[dict[str, Any]] = []
        self.polls = 0

    async def _lines(self) -> AsyncGenerator[str, None]:
        try:
            while (line := await self.queue.get()) is not None:
                yield line
        finally:
            self.closed += 1

    def kubectl_lines(self, *args: str) -> AsyncGenerator[str, None]:
        self.watches.append(args)
        return self._lines()

    async def kubectl(self, *args: str, timeout: float | None = 60) -> CommandResult:
        self.polls += 1
        return CommandResult(0, json.dumps({"kind": "List", "items": self.nodes}).encode(), b"")


def _watcher(primary: _Primary, heard: list[dict[str, Member]] | None = None) -> MemberWatcher:
    async def get_primary() -> Any:
        return primary

    return MemberWatcher(get_primary, on_poll=None if heard is None else heard.append)


def test_each_waiter_wakes_on_its_own_node_turning_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(membership, "IDLE_GRACE", 0.0)

    async def scenario() -> None:
        primary = _Primary()
        heard: list[dict[str, Member]] = []
        watcher = _watcher(primary, heard)
        reasons: list[str] = []
        w1 = asyncio.ensure_future(watcher.wait_ready("w-1", 30.0, reasons.append))
        w2 = asyncio.ensure_future(watcher.wait_ready("w-2", 30.0))
        for line in (_event("ADDED", _node("cp-1", True)), _event("ADDED", _node("w-1", False))):
            primary.queue.put_nowait(line)
        await asyncio.sleep(0.05)
        assert not w1.done() and not w2.done()
        assert reasons == ["KubeletNotReady: container runtime network not ready"]
        primary.queue.put_nowait(_event("MODIFIED", _node("w-1", True)))
        member = await asyncio.wait_for(w1, 5)
        assert member.name == "w-1" and member.ready and not w2.done()
        primary.queue.put_nowait(_event("ADDED", _node("w-2", True)))
        assert (await asyncio.wait_for(w2, 5)).ready
        # One watch for both waiters, ended (its channel closed) once nobody waits; the run's
        # membership heard each node the events brought.
        assert primary.watches == [WATCH_ARGS] and primary.polls == 0
        await asyncio.sleep(0.05)
        assert primary.closed == 1
        assert [list(h) for h in heard] == [["cp-1"], ["w-1"], ["w-1"], ["w-2"]]

    asyncio.run(scenario())


def test_a_waiter_after_the_notready_event_hears_its_reason_at_once() -> None:
    """The joins primed the watch, so a node's NotReady came before anyone waited for it; its
    reason does not change again until the pod network comes: the waiter is told at once."""
    async def scenario() -> None:
        primary = _Primary()
        watcher = _watcher(primary)
        watcher.prime(30.0)
        primary.queue.put_nowait(_event("ADDED", _node("w-1", False)))
        await asyncio.sleep(0.05)
        reasons: list[str] = []
        waiting = asyncio.ensure_future(watcher.wait_ready("w-1", 30.0, reasons.append))
        await asyncio.sleep(0.05)
        assert reasons == ["KubeletNotReady: container runtime network not ready"]
        primary.queue.put_nowait(_event("MODIFIED", _node("w-1", False, "8")))  # same words
        primary.queue.put_nowait(_event("MODIFIED", _node("w-1", True, "9")))
        assert (await asyncio.wait_for(waiting, 5)).ready
        assert len(reasons) == 1  # told once, not again for the same words
        watcher.stop()

    asyncio.run(scenario())


def test_a_primed_watch_has_listed_the_nodes_before_anyone_waits() -> None:
    async def scenario() -> None:
        primary = _Primary()
        watcher = _watcher(primary)
        watcher.prime(30.0)  # as the joins do when they trigger
        primary.queue.put_nowait(_event("ADDED", _node("w-1", True)))
        await asyncio.sleep(0.05)
        assert primary.watches == [WATCH_ARGS] and watcher.members["w-1"].ready
        member = await asyncio.wait_for(watcher.wait_ready("w-1", 30.0), 5)
        assert member.ready and primary.watches == [WATCH_ARGS]  # the same watch, no wait
        watcher.stop()  # the run's end
        await asyncio.sleep(0.05)
        assert primary.closed == 1 and watcher.task is None

    asyncio.run(scenario())


def test_a_watch_that_ends_is_started_again() -> None:
    async def scenario() -> None:
        primary = _Primary()
        watcher = _watcher(primary)
        waiter = asyncio.ensure_future(watcher.wait_ready("w-1", 30.0))
        primary.queue.put_nowait(_event("ADDED", _node("w-1", False)))
        primary.queue.put_nowait(_event("BOOKMARK", {"kind": "Node",
                                                     "metadata": {"resourceVersion": "9"}}))
        primary.queue.put_nowait(None)  # the API server ended the watch (its timeout)
        primary.queue.put_nowait(_event("ADDED", _node("w-1", True)))
        assert (await asyncio.wait_for(waiter, 5)).ready
        assert len(primary.watches) == 2

    asyncio.run(scenario())


def test_a_watch_that_cannot_work_gives_way_to_the_poll() -> None:
    async def scenario() -> None:
        primary = _Primary()
        primary.nodes = [_node("w-1", True)]
        watcher = _watcher(primary)
        primary.queue.put_nowait(None)  # kubectl exits at once, twice: no watch here
        primary.queue.put_nowait(None)
        member = await asyncio.wait_for(watcher.wait_ready("w-1", 30.0), 5)
        assert member.ready and len(primary.watches) == 2 and primary.polls >= 1
        assert not watcher.watching

    asyncio.run(scenario())


def test_a_line_that_is_no_event_gives_way_to_the_poll() -> None:
    async def scenario() -> None:
        primary = _Primary()
        primary.nodes = [_node("w-1", True)]
        watcher = _watcher(primary)
        primary.queue.put_nowait("NAME   STATUS   ROLES   AGE   VERSION")
        member = await asyncio.wait_for(watcher.wait_ready("w-1", 30.0), 5)
        assert member.ready and primary.polls >= 1 and len(primary.watches) == 1
        assert not watcher.watching  # for the rest of the run

    asyncio.run(scenario())


def test_a_node_never_ready_is_reported_with_its_reason() -> None:
    async def scenario() -> None:
        primary = _Primary()
        watcher = _watcher(primary)
        primary.queue.put_nowait(_event("ADDED", _node("w-1", False)))
        with pytest.raises(NodeError, match=r"still NotReady after 0s \(KubeletNotReady"):
            await watcher.wait_ready("w-1", 0.2)
        with pytest.raises(NodeError, match="still not registered"):
            await watcher.wait_ready("w-9", 0.2)

    asyncio.run(scenario())


# -- withNext ----------------------------------------------------------------------------------


def _playbook(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pb.yml"
    path.write_text(text)
    return path


STAGE = "  - name: {name}\n    hosts: primary\n{extra}    steps:\n      - wait-ready: {{}}\n"


def test_with_next_pairs_a_stage_with_the_next_one(tmp_path: Path) -> None:
    text = "name: x\nstages:\n" + STAGE.format(name="a", extra="    withNext: true\n") + \
        STAGE.format(name="b", extra="")
    book = load_playbook(_playbook(tmp_path, text), STEPS)
    assert [s.with_next for s in book.stages] == [True, False]


def test_with_next_in_a_row_runs_the_stages_together(tmp_path: Path) -> None:
    text = "name: x\nstages:\n" + STAGE.format(name="a", extra="    withNext: true\n") + \
        STAGE.format(name="b", extra="    withNext: true\n") + STAGE.format(name="c", extra="")
    book = load_playbook(_playbook(tmp_path, text), STEPS)
    assert [s.with_next for s in book.stages] == [True, True, False]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: x\nstages:\n" + STAGE.format(name="a", extra="    withNext: true\n"),
         "stages[0].withNext: withNext: true on the last stage"),
        ("name: x\nstages:\n" + STAGE.format(name="a", extra="    withNext: true\n")
         + STAGE.format(name="b", extra="    withNext: true\n"),
         "stages[1].withNext: withNext: true on the last stage"),
        ("name: x\nstages:\n" + STAGE.format(name="a", extra="") + "always:\n"
         + STAGE.format(name="b", extra="    withNext: true\n"),
         "always[0].withNext: an always stage runs on its own"),
    ],
)
def test_a_with_next_that_cannot_pair_is_refused_at_load(
    tmp_path: Path, text: str, words: str
) -> None:
    with pytest.raises(UsageError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_playbook(_playbook(tmp_path, text), STEPS)
