"""What steps see: facts for planning (pure data) and, while running, the live handles.

``PlanContext`` is plain data read from the nodes before anything changes; planning is a pure
function of it, and nothing changes it afterwards (the plan runs as made). ``RunContext`` adds
the connections, the event sink and ``RunState``: what the run makes and learns as it goes
(tokens, the CA pin, the kubeconfig it wrote, membership as it changes). Credentials flow from
stage to stage there, in memory, never through files.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from k8slk_ops.base.nextstep import NextStep, Rerun
from k8slk_ops.cluster.addonrecord import RecordEntry
from k8slk_ops.cluster.etcdctl import MemberHealth
from k8slk_ops.cluster.etcdmembers import MemberRemoval, StaleMember
from k8slk_ops.cluster.etcdrebuild import RebuildRun
from k8slk_ops.cluster.etcdrestore import RestoreRun
from k8slk_ops.cluster.membership import Member, MemberWatcher
from k8slk_ops.cluster.restorecheck import RestoreCheck
from k8slk_ops.cluster.snapshot import SnapshotResult
from k8slk_ops.drift import ConfigMaps, DriftResult, StaticPod
from k8slk_ops.engine.milestones import Milestones
from k8slk_ops.engine.options import RunOptions
from k8slk_ops.inventory import Inventory, NodeSpec
from k8slk_ops.kubeadm import NodeCerts
from k8slk_ops.node.facts import NodeFacts
from k8slk_ops.node.linuxkit import LinuxKitNode
from k8slk_ops.output.events import Event, EventKind, EventSink
from k8slk_ops.output.rows import CertsRow, StatusRow
from k8slk_ops.ssh import HostKeyPolicy, SSHError

__all__ = [
    "ClusterFacts",
    "JoinCredentials",
    "Member",
    "NodeProbe",
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
    # The addon manifests the cluster records as applied: key -> its SHA-256 and objects
    # (see addonrecord).
    addons: dict[str, RecordEntry] = field(default_factory=dict)
    # Why no control plane's API answered, when a read-only run goes on without it.
    api_error: str = ""
    # A changing run that goes on without the API (a playbook with ``withoutApi``): its lock
    # is the lock files, its steps work through SSH alone, and the silence is not its failure.
    through_ssh: bool = False

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
    # node -> the IP kubeadm advertises and the kubelet registers (Cluster.node_ips)
    node_ips: Mapping[str, str] = dataclasses.field(default_factory=dict)

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


class NodeProbe(Protocol):
    """What a running step may ask of the cluster probe (``probe.Cluster``) mid-run."""

    async def refresh(self, names: Sequence[str]) -> dict[str, NodeFacts]: ...

    async def redial(
        self,
        name: str,
        *,
        host_key_policy: HostKeyPolicy | None = None,
        host_key_fingerprint: str | None = None,
    ) -> LinuxKitNode: ...

    async def release(self, name: str) -> None: ...

    def next_step_for(self, name: str, exc: SSHError, rerun: str) -> NextStep: ...


@dataclass
class RunState:
    """What a run makes and learns while it runs; the report is built from it."""

    # IDs of the bootstrap tokens this run minted and has not deleted yet: revoked at the end.
    tokens: list[str] = field(default_factory=list)
    # The CA pins kubeadm init printed in this run: a computed pin must be one of them.
    init_ca_hashes: tuple[str, ...] = ()
    credentials: JoinCredentials | None = None  # token, CA pin, certificate key
    credentials_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    certs_uploaded: bool = False  # this run stored the kubeadm-certs Secret: deleted at the end
    kubeconfig: Path | None = None  # where the admin kubeconfig was written
    versions: dict[str, str] = field(default_factory=dict)  # node -> kubelet version when Ready
    status: dict[str, StatusRow] = field(default_factory=dict)  # node -> its `status` row
    certs_rows: dict[str, CertsRow] = field(default_factory=dict)  # node -> its `certs` row
    member_watcher: MemberWatcher | None = None
    cleanup_errors: list[str] = field(default_factory=list)
    # Membership as the run changes it (deleted nodes leave, joined nodes arrive).
    members: dict[str, Member] = field(default_factory=dict)
    initialised: bool = False  # a control plane is initialised (before the run, or by it)
    reset: set[str] = field(default_factory=set)  # nodes `kubeadm reset -f` ran on
    # Nodes whose drain started and neither finished nor was forced on: still cordoned by us.
    drains_unfinished: set[str] = field(default_factory=set)
    # Facts read again during the run (after a reboot, say); the plan keeps the ones it was
    # made from.
    facts: dict[str, NodeFacts] = field(default_factory=dict)
    # Each control plane's certificates as `kubeadm certs check-expiration` last showed them.
    certs: dict[str, NodeCerts] = field(default_factory=dict)
    # Control planes whose certificates this run renewed and has not restarted yet.
    certs_renewed: set[str] = field(default_factory=set)
    # node -> when its kubelet's client certificate expires, read where the node was not Ready.
    kubelet_certs: dict[str, datetime] = field(default_factory=dict)
    # Nodes this run rebooted (a new host key from them may be accepted: hostKeyAfterReboot).
    rebooted: set[str] = field(default_factory=set)
    # Each node's boot ID just before this run rebooted it (recorded on its Node too).
    boot_ids: dict[str, str] = field(default_factory=dict)
    snapshot: SnapshotResult | None = None  # the etcd snapshot this run wrote and checked
    restore_check: RestoreCheck | None = None  # --verify-restore: the snapshot restored, read
    etcd_restore: RestoreRun = field(default_factory=RestoreRun)  # what etcd restore learned
    etcd_rebuild: RebuildRun = field(default_factory=RebuildRun)  # etcd restore --pki's
    etcd: dict[str, MemberHealth] = field(default_factory=dict)  # node -> its etcd member
    etcd_removed: list[MemberRemoval] = field(default_factory=list)  # members this run removed
    etcd_stale: dict[int, StaleMember] = field(default_factory=dict)  # member ID -> why stale
    api_error: str = ""  # no control plane's API answered this read-only run: why
    # node -> "init" or "join": a kubeadm run triggered, whose wait a stop request cut; it goes
    # on on the node, and the report says so.
    kubeadm_cut: dict[str, str] = field(default_factory=dict)
    # drift: kube-system's ConfigMaps as the primary read them, each control plane's static
    # pods, and the differences found (None until compared).
    drift_configmaps: ConfigMaps | None = None
    drift_pods: dict[str, dict[str, StaticPod]] = field(default_factory=dict)
    drift: DriftResult | None = None


@dataclass
class RunContext:
    """Live state of a run, shared by its steps."""

    plan: PlanContext
    sink: EventSink
    connect: Callable[[str], Awaitable[LinuxKitNode]]
    add_secret: Callable[[str], None]
    state: RunState = field(default_factory=RunState)
    started: float = field(default_factory=time.monotonic)
    probe: NodeProbe | None = None  # reading facts again, dialling again; None in plain tests
    again: str = ""  # the command that runs this run again (what a failed node's row ends with)
    # What steps reach part-way, for the stages running beside them (engine/milestones.py).
    milestones: Milestones = field(default_factory=Milestones)

    def __post_init__(self) -> None:
        self.state.members = dict(self.plan.cluster.members)
        self.state.initialised = self.plan.cluster.initialised
        if not self.plan.cluster.through_ssh:
            self.state.api_error = self.plan.cluster.api_error

    @property
    def inventory(self) -> Inventory:
        return self.plan.inventory

    @property
    def options(self) -> RunOptions:
        return self.plan.options

    async def node(self, name: str) -> LinuxKitNode:
        return await self.connect(name)

    def lost_next_step(self, name: str, exc: SSHError) -> NextStep | None:
        """What to do about ``name``, lost mid-run with ``exc``."""
        if self.probe is None:
            return None
        return self.probe.next_step_for(name, exc, self.again or self.rerun(name).join)

    def rerun(self, name: str) -> Rerun:
        """How the operator runs the tool again for ``name`` once a failure is fixed."""
        return Rerun.of(str(self.inventory.source), name,
                        primary=name == self.plan.cluster.primary)

    def facts(self, name: str) -> NodeFacts:
        """The node's latest facts: read again during the run if they were, else the plan's."""
        return self.state.facts.get(name) or self.plan.facts[name]

    async def refresh(self, names: Sequence[str]) -> dict[str, NodeFacts]:
        """Read the facts of ``names`` again (one node or a batch); ``facts()`` returns them
        from now on. A node that cannot be reached is missing from the result."""
        fresh = await self._probe().refresh(names)
        self.state.facts.update(fresh)
        return fresh

    async def redial(
        self,
        name: str,
        *,
        host_key_policy: HostKeyPolicy | None = None,
        host_key_fingerprint: str | None = None,
    ) -> LinuxKitNode:
        """Drop the node's connection and dial it again with the host-key decision given now
        (a rebooted LinuxKit node has new host keys)."""
        return await self._probe().redial(
            name, host_key_policy=host_key_policy, host_key_fingerprint=host_key_fingerprint
        )

    async def release(self, name: str) -> None:
        """Close the node's connection: nothing later in the run uses it (a later use would
        dial it again)."""
        if self.probe is not None:
            await self.probe.release(name)

    def _probe(self) -> NodeProbe:
        if self.probe is None:
            raise RuntimeError("this run has no cluster probe to read facts again")
        return self.probe

    def members_watcher(self) -> MemberWatcher:
        """The run's one poller of the primary's node list, started on first use."""
        if self.state.member_watcher is None:
            self.state.member_watcher = MemberWatcher(
                lambda: self.node(self.plan.cluster.primary),
                on_poll=lambda seen: self.state.members.update(seen),  # NotReady ones too
            )
        return self.state.member_watcher

    def emit(self, node: str | None, phase: str, kind: EventKind, message: str = "") -> None:
        self.sink.emit(Event(node, phase, kind, message))
