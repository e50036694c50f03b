"""What steps see: facts for planning (pure data) and, while running, the live handles.

``PlanContext`` is plain data read from the nodes before anything changes; planning is a pure
function of it, and nothing changes it afterwards (the plan runs as made). ``RunContext`` adds
the connections, the event sink and ``RunState``: what the run makes and learns as it goes
(tokens, the CA pin, the kubeconfig it wrote, membership as it changes). Credentials flow from
stage to stage there, in memory, never through files.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8slk_ops.events import Event, EventKind, EventSink
from k8slk_ops.facts import NodeFacts
from k8slk_ops.inventory import Inventory, NodeSpec
from k8slk_ops.membership import Member, MemberWatcher
from k8slk_ops.node import LinuxKitNode
from k8slk_ops.options import RunOptions

__all__ = [
    "ClusterFacts",
    "JoinCredentials",
    "Member",
    "PlanContext",
    "RunContext",
    "RunOptions",
    "RunState",
]


@dataclass(frozen=True)
class ClusterFacts:
    """The cluster as seen from its primary control plane before the run changes anything."""

    primary: str  # the initialised control plane, else the first control plane
    initialised: bool = False
    members: dict[str, Member] = field(default_factory=dict)

    def is_member(self, name: str) -> bool:
        return name in self.members


@dataclass(frozen=True)
class PlanContext:
    """Everything planning may look at. No connections: planning is pure."""

    inventory: Inventory
    options: RunOptions
    facts: Mapping[str, NodeFacts]  # reachable nodes only
    unreachable: Mapping[str, str]  # node -> why
    cluster: ClusterFacts

    def spec(self, name: str) -> NodeSpec:
        return self.inventory.node(name)


@dataclass
class JoinCredentials:
    """Minted on the primary for this run; secrets, registered with the redactor."""

    endpoint: str
    token: str
    ca_cert_hash: str
    certificate_key: str | None = None
    token_id: str = ""
    # Where they were minted and when they stop working (time.monotonic()), so that a long run
    # mints new ones before a join could be handed an expired token or certificate key.
    primary: str = ""
    ttl: float = 0.0  # seconds
    token_expires: float = float("inf")
    key_expires: float = float("inf")


@dataclass
class RunState:
    """What a run makes and learns while it runs; the report is built from it."""

    # IDs of the bootstrap tokens this run minted and has not deleted yet: revoked at the end.
    tokens: list[str] = field(default_factory=list)
    # The CA pins kubeadm init printed in this run: a computed pin must be one of them.
    init_ca_hashes: tuple[str, ...] = ()
    credentials: JoinCredentials | None = None  # token, CA pin, certificate key
    credentials_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    kubeconfig: Path | None = None  # where the admin kubeconfig was written
    versions: dict[str, str] = field(default_factory=dict)  # node -> kubelet version when Ready
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> status row
    member_watcher: MemberWatcher | None = None
    cleanup_errors: list[str] = field(default_factory=list)
    # Membership as the run changes it (deleted nodes leave, joined nodes arrive).
    members: dict[str, Member] = field(default_factory=dict)
    initialised: bool = False  # a control plane is initialised (before the run, or by it)
    reset: set[str] = field(default_factory=set)  # nodes `kubeadm reset -f` ran on
    # Nodes whose drain started and neither finished nor was forced on: still cordoned by us.
    drains_unfinished: set[str] = field(default_factory=set)


@dataclass
class RunContext:
    """Live state of a run, shared by its steps."""

    plan: PlanContext
    sink: EventSink
    connect: Callable[[str], Awaitable[LinuxKitNode]]
    add_secret: Callable[[str], None]
    state: RunState = field(default_factory=RunState)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.state.members = dict(self.plan.cluster.members)
        self.state.initialised = self.plan.cluster.initialised

    @property
    def inventory(self) -> Inventory:
        return self.plan.inventory

    @property
    def options(self) -> RunOptions:
        return self.plan.options

    async def node(self, name: str) -> LinuxKitNode:
        return await self.connect(name)

    def members_watcher(self) -> MemberWatcher:
        """The run's one poller of the primary's node list, started on first use."""
        if self.state.member_watcher is None:
            self.state.member_watcher = MemberWatcher(
                lambda: self.node(self.plan.cluster.primary)
            )
        return self.state.member_watcher

    def emit(self, node: str | None, phase: str, kind: EventKind, message: str = "") -> None:
        self.sink.emit(Event(node, phase, kind, message))
