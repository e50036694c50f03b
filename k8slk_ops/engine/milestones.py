"""Points a step reaches part-way, for the stages that run beside it.

kubeadm init has the API server answering its admin a few seconds in, and spends the rest of
its run storing configuration, marking the node, making the bootstrap-token objects and
installing CoreDNS and kube-proxy. What needs only the API (the pod network's apply, the join
credentials) runs in stages beside init (``withNext``) and starts once init has got that far,
rather than once it has ended: the person waiting sees those seconds overlap init's own.

A step class names what it reaches (``reaches``) and what it waits for (``awaits``); the
executor does the bookkeeping. Before a group of stages that run together starts, it expects
each milestone of a step planned in the group, on that step's node. The reaching step says so
mid-way (``reach``), and when it ends the executor settles what is left: reached if it went
well, missed if it failed, was cancelled or never ran. A step that awaits a milestone nobody in
its group expects starts at once (the stage before it has ended: whatever it reaches is
reached). One that awaits a missed milestone does not start (``NotStarted``): its node's report
is the failure of the step that missed it, not a second failure of its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


class NotStarted(Exception):
    """A step that waited for a milestone its node missed: it did nothing."""


@dataclass
class _Milestone:
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    missed: str = ""  # why, when it was missed


class Milestones:
    """The milestones a run expects, per (name, node)."""

    def __init__(self) -> None:
        self._expected: dict[tuple[str, str], _Milestone] = {}

    def expect(self, name: str, node: str) -> None:
        self._expected.setdefault((name, node), _Milestone())

    def reach(self, name: str, node: str) -> None:
        """``name`` is reached on ``node`` (a no-op when it is not expected or settled)."""
        milestone = self._expected.get((name, node))
        if milestone is not None and not milestone.settled.is_set():
            milestone.settled.set()

    def miss(self, name: str, node: str, why: str) -> None:
        """``name`` will not be reached on ``node`` (a no-op once it is settled)."""
        milestone = self._expected.get((name, node))
        if milestone is not None and not milestone.settled.is_set():
            milestone.missed = why
            milestone.settled.set()

    def pending(self, name: str, node: str) -> bool:
        milestone = self._expected.get((name, node))
        return milestone is not None and not milestone.settled.is_set()

    async def wait(self, name: str, node: str) -> None:
        """Return once ``name`` is reached on ``node`` (at once if nothing expects it);
        raise ``NotStarted`` if it was missed."""
        milestone = self._expected.get((name, node))
        if milestone is None:
            return
        await milestone.settled.wait()
        if milestone.missed:
            raise NotStarted(milestone.missed)
