"""One operation from start to end: lock, probe, plan, execute, report.

This is the only place that wires the layers together (docs/architecture.md). The order
matters and is the promise: nothing is written to any node before every host key checked out,
the facts are read and the plan is made; the token minted for the run is revoked in every case;
the locks are released in every case; the report always comes back, partial if the run was
interrupted. Probing the nodes is ``cluster.Cluster``'s job, building the report
``outcomes``'s; this module owns the run's lifecycle: locks, signals, the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from k8slk_ops import outcomes
from k8slk_ops.cluster import Cluster, NoApiAnswers, targets_of
from k8slk_ops.context import ClusterFacts, PlanContext, RunContext
from k8slk_ops.errors import EXIT_CANNOT_START, CannotStart, UsageError
from k8slk_ops.events import Event, EventKind, EventSink, NodeReport, RunReport
from k8slk_ops.inventory import Inventory
from k8slk_ops.inventory.playbook_check import check_hosts
from k8slk_ops.lock import RENEW_SECONDS, FileLocks, Holder, LeaseLock, LocalLock, LockLost
from k8slk_ops.options import RunOptions
from k8slk_ops.plan import Plan, make_plan, needed_nodes
from k8slk_ops.playbook import Playbook
from k8slk_ops.run import Executor

__all__ = ["Operation", "new_run_id", "targets_of"]


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


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
        break_lock: int = 0,
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
        self.cluster = Cluster(
            inventory,
            sink,
            concurrency=options.concurrency,
            refuse_host_key_errors=not playbook.read_only,
        )
        self.executor: Executor | None = None
        self.lock: FileLocks | LeaseLock | None = None
        self.lock_lost = ""
        self.run_ctx: RunContext | None = None
        self.interrupted = False
        self.report = RunReport(
            command=command,
            cluster=inventory.cluster.name,
            inventory=str(inventory.source),
            dry_run=options.dry_run,
            nodes=[NodeReport(n.name, n.role, n.address) for n in inventory.nodes],
        )

    def emit(self, node: str | None, phase: str, kind: EventKind, message: str = "") -> None:
        self.sink.emit(Event(node, phase, kind, message))

    # -- the operation --------------------------------------------------------------------------

    async def run(self) -> RunReport:
        self._check_input()
        holder = Holder.me(self.options.run_id, self.command)
        locking = not (self.options.dry_run or self.playbook.read_only)
        try:
            async with self._local_lock(holder, locking), self._signals():
                cluster = await self._find_cluster(holder, locking)
                async with self._cluster_lock(cluster, holder, locking):
                    await self._plan_and_execute(cluster)
            return self.report
        finally:
            await self.cluster.close()
            self.report.ended = datetime.now(UTC)

    def _check_input(self) -> None:
        problems = check_hosts(self.playbook, self.inventory)
        if problems:
            raise UsageError("\n".join(problems))
        if self.playbook.primary == "not-selected" and not self.options.selected:
            raise UsageError(
                f"{self.playbook.name} acts on the nodes it is given: name them (--node NAME)"
            )
        unknown = [n for n in self.options.selected if n not in self.cluster.targets]
        if unknown:
            raise UsageError(f"no node named {', '.join(unknown)} in {self.inventory.source}")

    async def _find_cluster(self, holder: Holder, locking: bool) -> ClusterFacts:
        """The primary and the membership; refuses to go on without a cluster if it needs one.
        A cluster whose API is silent while another run holds the lock files is being set up
        by that run (an init writes admin.conf before its API answers): that run is named."""
        cps = [n.name for n in self.inventory.control_planes]
        if self.playbook.primary == "not-selected":
            chosen = set(self.options.selected)
            cps = [n for n in cps if n not in chosen] + [n for n in cps if n in chosen]
        try:
            cluster = await self.cluster.find_primary(
                cps, read_only=self.playbook.read_only, without_api=self.playbook.without_api
            )
        except NoApiAnswers:
            if locking and not self.break_lock:
                lock = await self._file_locks(holder)
                await lock.acquire()  # LockHeld, naming the other run, when it holds them
                await lock.release()
            raise
        if cluster.through_ssh:
            message = (f"no control plane API answers ({cluster.api_error}): {self.playbook.name} "
                       "goes on through SSH alone, locked by the lock files on the control planes")
            self.emit(None, "lock", EventKind.WARN, message)
            self.report.messages.append(message)
        if self.playbook.requires_cluster and not cluster.initialised:
            unreachable = self.cluster.unreachable
            gone = [n.name for n in self.inventory.control_planes if n.name in unreachable]
            if gone:
                raise CannotStart(
                    f"{self.playbook.name} needs a running cluster, and no control plane "
                    "that could be reached is initialised; unreachable: "
                    + "; ".join(f"{n}: {unreachable[n]}" for n in gone)
                )
            raise CannotStart(
                f"{self.playbook.name} needs a running cluster, and no control plane of "
                f"{self.inventory.source} is initialised: run `k8slk-ops bootstrap` first"
            )
        return cluster

    async def _plan_and_execute(self, cluster: ClusterFacts) -> None:
        probe = PlanContext(
            inventory=self.inventory,
            options=self.options,
            facts=self.cluster.facts,
            unreachable=self.cluster.unreachable,
            cluster=cluster,
        )
        await self.cluster.gather(needed_nodes(self.playbook, probe))
        # The plan's facts are a copy: re-reading facts mid-run never changes the plan.
        ctx = PlanContext(
            inventory=self.inventory,
            options=self.options,
            facts=dict(self.cluster.facts),
            unreachable=dict(self.cluster.unreachable),
            cluster=cluster,
            node_ips=self.cluster.node_ips(),
        )
        plan = make_plan(self.playbook, ctx)
        self.report.plan = plan.to_json()
        outcomes.note_versions(self.report, self.cluster)
        if self.options.dry_run:
            outcomes.finish_dry_run(self.report, self.cluster, plan)
            return
        for warning in plan.warnings:
            self.sink.emit(Event(None, "plan", EventKind.WARN, warning))
        if not plan.changes and not self.playbook.read_only:
            self.report.messages.append(outcomes.NOTHING_TO_DO)
        await self._execute(ctx, plan)

    async def _execute(self, ctx: PlanContext, plan: Plan) -> None:
        run_ctx = RunContext(
            plan=ctx,
            sink=self.sink,
            connect=self.cluster.connect,
            add_secret=self.add_secret,
            probe=self.cluster,
        )
        self.run_ctx = run_ctx
        reports = {n.name: n for n in self.report.nodes}
        self.executor = Executor(run_ctx, plan, reports, guard=self._still_locked)
        if self.interrupted:
            self.executor.request_stop()
        await self.executor.execute()
        outcomes.finish_run(self.report, self.cluster, run_ctx.state, self.executor.interrupted)
        if self.executor.guard_stopped:
            self.report.messages.append(
                f"the cluster lock was lost ({self.executor.guard_stopped}): the run stopped "
                "before its next changing stage"
            )
            self.report.exit_code = EXIT_CANNOT_START

    # -- locks and signals ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _local_lock(self, holder: Holder, locking: bool) -> AsyncIterator[None]:
        """This machine's lock on the cluster, for a run that changes things."""
        local = LocalLock(
            f"{self.inventory.cluster.name}@{self.inventory.endpoint}",
            holder,
            None if self.local_lock_dir is None else Path(self.local_lock_dir),
        )
        if locking:
            local.acquire()
        try:
            yield
        finally:
            if locking:
                local.release()

    @contextlib.asynccontextmanager
    async def _cluster_lock(
        self, cluster: ClusterFacts, holder: Holder, locking: bool
    ) -> AsyncIterator[None]:
        """The cluster lock for a run that changes things, renewed while the run lasts and
        released in any case: the Lease once the cluster exists and its API answers, else the
        lock file on every reachable control plane (lock.py)."""
        if not locking:
            yield
            return
        lock = await self._take_cluster_lock(cluster, holder)
        self.lock = lock
        renewer = asyncio.ensure_future(self._keep(lock))
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(BaseException):
                await renewer
            if not self._lock_taken_apart():
                with contextlib.suppress(Exception):
                    await lock.release()

    async def _file_locks(self, holder: Holder) -> FileLocks:
        """The lock files of every reachable control plane, for ``holder``."""
        names = [
            n.name for n in self.inventory.control_planes if n.name not in self.cluster.unreachable
        ]
        return FileLocks([await self.cluster.connect(n) for n in names], holder)

    async def _take_cluster_lock(
        self, cluster: ClusterFacts, holder: Holder
    ) -> FileLocks | LeaseLock:
        lock: FileLocks | LeaseLock
        if cluster.initialised and not cluster.through_ssh:
            lock = LeaseLock(cluster.primary, self.cluster.connect, holder)
        else:
            lock = await self._file_locks(holder)
        await lock.acquire(self.break_lock)
        for message in lock.broken:
            self.emit(None, "lock", EventKind.WARN, message)
            self.report.messages.append(message)
        return lock

    async def _keep(self, lock: FileLocks | LeaseLock) -> None:
        """Renew the lock until the run ends; a renewal that fails marks the lock lost."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            if self._lock_taken_apart():
                return
            try:
                await lock.renew()
            except LockLost as exc:
                self.lock_lost = str(exc)
                return
            except Exception:  # a connection hiccup: the next renewal or the check decides
                continue

    def _lock_taken_apart(self) -> bool:
        """The run itself reset the control plane its Lease was kept through (the last one,
        or the cluster taken apart): the lock went with the cluster, on purpose."""
        lock, ctx = self.lock, self.run_ctx
        return isinstance(lock, LeaseLock) and ctx is not None and lock.node_name in ctx.state.reset

    async def _still_locked(self) -> str | None:
        """Checked before every changing stage: None while the run holds its lock."""
        if self.lock is None or self._lock_taken_apart():
            return None
        if self.lock_lost:
            return self.lock_lost
        try:
            return await self.lock.verify()
        except Exception as exc:
            return f"the lock could not be checked: {exc}"

    @contextlib.asynccontextmanager
    async def _signals(self) -> AsyncIterator[None]:
        """Ctrl-C and SIGTERM ask the executor to stop (twice: to cancel running steps)."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
            loop.add_signal_handler(signal.SIGTERM, self._on_interrupt)
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)

    def _on_interrupt(self) -> None:
        self.interrupted = True
        if self.executor is not None:
            self.executor.request_stop()
