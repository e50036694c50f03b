"""The run's one Ready poller: each poll's node list reaches the run's membership once, while
nodes still wait, rather than a copy of the whole list per waiting node when it stops."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from k8slk_ops.cluster.membership import Member, MemberWatcher
from k8slk_ops.ssh.target import CommandResult


def _node(name: str, ready: bool) -> dict[str, Any]:
    condition: dict[str, str] = {"type": "Ready", "status": "True" if ready else "False"}
    if not ready:
        condition |= {"reason": "KubeletNotReady", "message": "container runtime network not ready"}
    return {
        "metadata": {"name": name, "labels": {}},
        "spec": {},
        "status": {"conditions": [condition], "nodeInfo": {"kubeletVersion": "v1.31.3"}},
    }


class _Primary:
    """A control plane whose ``kubectl get nodes -o json`` lists what the test set."""

    name = "cp-1"

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.polls = 0

    async def kubectl(self, *args: str, timeout: float | None = 60) -> CommandResult:
        self.polls += 1
        body = json.dumps({"kind": "List", "items": self.nodes}).encode()
        return CommandResult(0, body, b"")


def test_each_poll_reaches_the_run_membership_while_nodes_wait() -> None:
    async def scenario() -> None:
        primary = _Primary()
        primary.nodes = [_node("cp-1", True), _node("w-1", False), _node("w-2", False)]
        heard: list[dict[str, Member]] = []
        membership: dict[str, Member] = {}
        first_poll = asyncio.Event()

        def on_poll(members: dict[str, Member]) -> None:
            heard.append(dict(members))
            membership.update(members)
            first_poll.set()

        async def get_primary() -> Any:
            return primary

        watcher = MemberWatcher(get_primary, on_poll=on_poll)
        waiters = [asyncio.ensure_future(watcher.wait_ready(n, 30.0)) for n in ("w-1", "w-2")]
        await first_poll.wait()
        # Both still wait, and the run already knows why they are not Ready.
        assert not any(w.done() for w in waiters)
        assert membership["w-1"].not_ready_reason == "KubeletNotReady"
        primary.nodes = [_node(n, True) for n in ("cp-1", "w-1", "w-2")]
        done = await asyncio.gather(*waiters)
        assert [m.name for m in done] == ["w-1", "w-2"]
        assert membership["w-2"].ready
        # One report per poll, however many nodes wait.
        assert len(heard) == primary.polls

    asyncio.run(scenario())
