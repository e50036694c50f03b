"""What steps see: facts for planning (pure data) and, while running, the live handles.

``PlanContext`` is plain data read from the nodes before anything changes; planning is a pure
function of it. ``RunContext`` adds the connections, the event sink and the credentials minted
during the run. Credentials flow from stage to stage here, in memory, never through files.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from k8slk_ops.events import Event, EventKind, EventSink
from k8slk_ops.facts import NodeFacts
from k8slk_ops.inventory import Inventory, NodeSpec
from k8slk_ops.node import LinuxKitNode


@dataclass(frozen=True)
class Member:
    """A node as the cluster's API lists it."""

    name: str
    ready: bool
    control_plane: bool
    unschedulable: bool = False
    kubelet_version: str = ""


@dataclass
class ClusterFacts:
    """The cluster as seen from its primary control plane."""

    primary: str  # the initialised control plane, else the first control plane
    initialised: bool = False
    members: dict[str, Member] = field(default_factory=dict)

    def is_member(self, name: str) -> bool:
        return name in self.members


@dataclass
class RunOptions:
    """Knobs from the command line that steps read."""

    run_id: str
    concurrency: int = 64
    timeout: float = 600.0  # one kubeadm run on one node
    ready_timeout: float = 300.0
    token_ttl: str = "30m"
    strict: bool = False
    dry_run: bool = False
    kubeconfig_out: str | None = None
    selected: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlanContext:
    """Everything planning may look at. No connections: planning is pure."""

    inventory: Inventory
    options: RunOptions
    facts: dict[str, NodeFacts]  # reachable nodes only
    unreachable: dict[str, str]  # node -> why
    cluster: ClusterFacts
    # What earlier stages of the same plan will have done (e.g. "initialised": True).
    assumed: dict[str, Any] = field(default_factory=dict)

    def spec(self, name: str) -> NodeSpec:
        return self.inventory.node(name)

    @property
    def will_be_initialised(self) -> bool:
        return self.cluster.initialised or bool(self.assumed.get("initialised"))


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
    ttl: str = ""
    token_expires: float = float("inf")
    key_expires: float = float("inf")


@dataclass
class RunContext:
    """Live state of a run, shared by its steps."""

    plan: PlanContext
    sink: EventSink
    connect: Callable[[str], Awaitable[LinuxKitNode]]
    add_secret: Callable[[str], None]
    credentials: JoinCredentials | None = None
    credentials_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    results: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def inventory(self) -> Inventory:
        return self.plan.inventory

    @property
    def options(self) -> RunOptions:
        return self.plan.options

    async def node(self, name: str) -> LinuxKitNode:
        return await self.connect(name)

    def emit(self, node: str | None, phase: str, kind: EventKind, message: str = "") -> None:
        self.sink.emit(Event(node, phase, kind, message))
