"""One operation from start to end: lock, connect, read facts, plan, execute, report.

This is the only place that wires the layers together. The order matters and is the promise:
nothing is written to any node before every host key checked out, the facts are read and the
plan is made; the token minted for the run is revoked in every case; the locks are released
in every case; the report always comes back, partial if the run was interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from k8slk_ops import kubeadm
from k8slk_ops.context import ClusterFacts, Member, PlanContext, RunContext, RunOptions
from k8slk_ops.errors import (
    EXIT_INTERRUPTED,
    EXIT_NODE_FAILED,
    EXIT_OK,
    CannotStart,
    UsageError,
)
from k8slk_ops.events import Event, EventKind, EventSink, NodeReport, Outcome, RunReport
from k8slk_ops.facts import NodeFacts
from k8slk_ops.inventory import Inventory
from k8slk_ops.lock import ClusterLock, Holder, LocalLock
from k8slk_ops.node import LinuxKitNode
from k8slk_ops.plan import Plan, make_plan, needed_nodes
from k8slk_ops.playbook import Playbook
from k8slk_ops.run import Executor
from k8slk_ops.ssh import HostKeyMismatch, HostKeyUnknown, SSHError, SSHPool, SSHTarget


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def targets_of(inventory: Inventory) -> dict[str, SSHTarget]:
    """The SSH target of every node, built once per run."""
    out = {}
    for node in inventory.nodes:
        s = inventory.ssh_for(node)
        out[node.name] = SSHTarget(
            name=node.name,
            address=node.address,
            port=s.port,
            user=s.user,
            identity_file=s.identity_file,
            known_hosts=s.known_hosts,
            host_key_policy=s.host_key_policy,
            host_key_fingerprint=s.host_key_fingerprint,
            jump_host=s.jump_host,
            connect_timeout=s.connect_timeout,
            keepalive_interval=s.keepalive_interval,
            # ~/.ssh/config is honoured when it exists; a missing default is no error.
            config_file=s.config_file if s.config_file and s.config_file.exists() else None,
        )
    return out


class Operation:
    """Runs one playbook against one inventory and returns the report."""

    def __init__(
        self,
        playbook: Playbook,
        inventory: Inventory,
        options: RunOptions,
        sink: EventSink,
        add_secret: Callable[[str], None],
        *,
        command: str,
        break_lock: bool = False,
        local_lock_dir: str | None = None,
    ) -> None:
        self.playbook = playbook
        self.inventory = inventory
        self.options = options
        self.sink = sink
        self.add_secret = add_secret
        self.command = command
        self.break_lock = break_lock
        self.local_lock_dir = local_lock_dir
        self.pool = SSHPool(max_handshakes=10)
        self.targets = targets_of(inventory)
        self.nodes: dict[str, asyncio.Task[LinuxKitNode]] = {}
        self.facts: dict[str, NodeFacts] = {}
        self.unreachable: dict[str, str] = {}
        self.host_key_errors: list[str] = []
        self.host_key_state: dict[str, str] = {}
        self.executor: Executor | None = None
        self.interrupted = False
        self.report = RunReport(
            command=command,
            cluster=inventory.cluster.name,
            inventory=str(inventory.source),
            dry_run=options.dry_run,
            nodes=[NodeReport(n.name, n.role, n.address) for n in inventory.nodes],
        )

    # -- plumbing -------------------------------------------------------------------------------

    def emit(self, node: str | None, phase: str, kind: EventKind, message: str = "") -> None:
        self.sink.emit(Event(node, phase, kind, message))

    async def connect(self, name: str) -> LinuxKitNode:
        """The node's one connection for the run, opened on first use."""
        task = self.nodes.get(name)
        if task is None:
            task = asyncio.ensure_future(self._open(name))
            self.nodes[name] = task
        return await asyncio.shield(task)

    async def _open(self, name: str) -> LinuxKitNode:
        target = self.targets[name]
        conn = await self.pool.connect(target)
        return LinuxKitNode(name, target.address, conn)

    async def _gather(self, names: list[str]) -> None:
        """Connect to ``names`` and read their facts, all at once, bounded."""
        gate = asyncio.Semaphore(max(1, self.options.concurrency))

        async def one(name: str) -> None:
            if name in self.facts or name in self.unreachable:
                return
            async with gate:
                self.emit(name, "connect", EventKind.START)
                try:
                    lk = await self.connect(name)
                    self.facts[name] = await lk.facts()
                except (HostKeyMismatch, HostKeyUnknown) as exc:
                    self.host_key_errors.append(str(exc))
                    kind = "mismatch" if isinstance(exc, HostKeyMismatch) else "unknown"
                    self.host_key_state[name] = kind
                    self.unreachable[name] = f"host key {kind}"
                    self.emit(name, "connect", EventKind.FAIL, str(exc))
                except SSHError as exc:
                    self.unreachable[name] = str(exc)
                    self.emit(name, "connect", EventKind.FAIL, str(exc))
                else:
                    version = self.facts[name].kubeadm_version
                    self.report.node(name).version = version
                    self.emit(name, "connect", EventKind.OK, f"kubeadm {version or '?'}")

        await asyncio.gather(*(one(n) for n in names))
        if self.host_key_errors and not self.playbook.read_only:
            raise CannotStart(
                "refusing to run: host key check failed; nothing was changed on any node.\n"
                + "\n".join(self.host_key_errors)
            )

    async def _cluster_facts(self) -> ClusterFacts:
        """Find the primary: the first control plane, in inventory order, that is initialised
        and whose API answers. Control planes after it are not contacted for this. With the
        playbook's ``primary: not-selected``, selected control planes are tried last."""
        cps = [n.name for n in self.inventory.control_planes]
        if self.playbook.primary == "not-selected":
            chosen = set(self.options.selected)
            cps = [n for n in cps if n not in chosen] + [n for n in cps if n in chosen]
        silent: dict[str, str] = {}
        for name in cps:
            await self._gather([name])
            if name not in self.facts or not self.facts[name].admin_conf:
                continue
            lk = await self.connect(name)
            result = await lk.kubectl("get", "nodes", "-o", "json", timeout=30)
            if result.exit_status != 0:
                silent[name] = result.stderr.decode(errors="replace").strip()[-300:]
                continue
            cluster = ClusterFacts(primary=name, initialised=True)
            for n in kubeadm.parse_nodes_json(result.stdout.decode()):
                cluster.members[n.name] = Member(
                    n.name, n.ready, n.control_plane, n.unschedulable, n.kubelet_version
                )
            return cluster
        if silent:
            detail = "; ".join(f"{k}: {v}" for k, v in silent.items())
            raise CannotStart(f"the cluster is initialised but no control plane API answers: {detail}")
        first = self.inventory.control_planes[0].name
        if first in self.unreachable and not self.playbook.read_only:
            raise CannotStart(
                f"the first control plane {first} is unreachable: {self.unreachable[first]}"
            )
        return ClusterFacts(primary=first)

    # -- the operation --------------------------------------------------------------------------

    async def run(self) -> RunReport:
        holder = Holder.me(self.options.run_id, self.command)
        local = LocalLock(
            f"{self.inventory.cluster.name}@{self.inventory.endpoint}",
            holder,
            None if self.local_lock_dir is None else Path(self.local_lock_dir),
        )
        cluster_lock: ClusterLock | None = None
        self.playbook.check_hosts({n.name for n in self.inventory.nodes})
        unknown = [n for n in self.options.selected if n not in self.targets]
        if unknown:
            raise UsageError(f"no node named {', '.join(unknown)} in {self.inventory.source}")
        locking = not (self.options.dry_run or self.playbook.read_only)
        if locking:
            local.acquire()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
            loop.add_signal_handler(signal.SIGTERM, self._on_interrupt)
        try:
            cluster = await self._cluster_facts()
            if self.playbook.requires_cluster and not cluster.initialised:
                gone = [n.name for n in self.inventory.control_planes if n.name in self.unreachable]
                if gone:
                    raise CannotStart(
                        f"{self.playbook.name} needs a running cluster, and no control plane "
                        "that could be reached is initialised; unreachable: "
                        + "; ".join(f"{n}: {self.unreachable[n]}" for n in gone)
                    )
                raise CannotStart(
                    f"{self.playbook.name} needs a running cluster, and no control plane of "
                    f"{self.inventory.source} is initialised: run `k8slk-ops bootstrap` first"
                )
            if locking:
                cluster_lock = ClusterLock(await self.connect(cluster.primary), holder)
                await cluster_lock.acquire(self.break_lock)
            ctx = PlanContext(
                inventory=self.inventory,
                options=self.options,
                facts=self.facts,
                unreachable=self.unreachable,
                cluster=cluster,
            )
            await self._gather(needed_nodes(self.playbook, ctx))
            plan = make_plan(self.playbook, ctx)
            self.report.plan = plan.to_json()
            if self.options.dry_run:
                self._dry_run_report(plan)
                return self.report
            if not plan.changes:
                self.report.messages.append("nothing to do: the cluster already matches")
                self.emit(None, "plan", EventKind.INFO, "nothing to do: the cluster already matches")
            await self._execute(ctx, plan)
            return self.report
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
            if cluster_lock is not None:
                with contextlib.suppress(Exception):
                    await cluster_lock.release()
            await self.pool.close()
            if locking:
                local.release()
            self.report.ended = datetime.now(UTC)

    def _on_interrupt(self) -> None:
        self.interrupted = True
        if self.executor is not None:
            self.executor.request_stop()

    async def _execute(self, ctx: PlanContext, plan: Plan) -> None:
        run_ctx = RunContext(plan=ctx, sink=self.sink, connect=self.connect, add_secret=self.add_secret)
        reports = {n.name: n for n in self.report.nodes}
        self.executor = Executor(run_ctx, plan, reports)
        if self.interrupted:
            self.executor.request_stop()
        await self.executor.execute()
        self.report.interrupted = self.executor.interrupted
        self.report.changed = any(n.outcome == Outcome.OK for n in self.report.nodes)
        for node in self.report.nodes:
            if node.name in run_ctx.results.get("versions", {}):
                node.version = run_ctx.results["versions"][node.name] or node.version
        for node in self.report.nodes:
            if node.name in run_ctx.results.get("details", {}):
                node.details.update(run_ctx.results["details"][node.name])
            elif node.name in self.unreachable:
                node.details.update(
                    {
                        "reachable": False,
                        "hostKey": self.host_key_state.get(node.name, "not checked"),
                        "error": self.unreachable[node.name],
                    }
                )
        if "kubeconfig" in run_ctx.results:
            self.report.data["kubeconfig"] = run_ctx.results["kubeconfig"]
        for err in run_ctx.results.get("cleanup_errors", []):
            self.report.messages.append(f"cleanup failed: {err}")
        if run_ctx.results.get("tokens"):
            self.report.messages.append(
                "WARNING: could not delete bootstrap token(s) "
                + ", ".join(run_ctx.results["tokens"])
                + "; delete them with `kubeadm token delete`"
            )
        bad = {Outcome.FAILED, Outcome.UNREACHABLE, Outcome.SKIPPED, Outcome.CANCELLED}
        if self.report.interrupted:
            self.report.exit_code = EXIT_INTERRUPTED
        elif any(n.outcome in bad for n in self.report.nodes):
            self.report.exit_code = EXIT_NODE_FAILED
        else:
            self.report.exit_code = EXIT_OK

    def _dry_run_report(self, plan: Plan) -> None:
        touched = plan.nodes_touched()
        changing = {
            p.node
            for s in plan.stages
            for p in s.nodes
            if any(step.call.step.changes for step in p.steps)
        }
        for node in self.report.nodes:
            if node.name in self.unreachable:
                node.outcome = Outcome.UNREACHABLE
                node.message = self.unreachable[node.name]
            elif node.name in changing:
                node.outcome = Outcome.PLANNED
            elif node.name in touched:
                node.outcome = Outcome.UNCHANGED
        self.report.data["planText"] = plan.to_text()
        self.report.exit_code = EXIT_OK
