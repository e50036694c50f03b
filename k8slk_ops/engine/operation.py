"""One operation from start to end: lock, probe, plan, execute, report.

This is the only place that wires the layers together (docs/architecture.md). The order
matters and is the promise: nothing is written to any node before every host key checked out,
the facts are read and the plan is made; the token minted for the run is revoked in every case;
the locks are released in every case; the report always comes back, partial if the run was
interrupted. Probing the nodes is ``probe.Cluster``'s job, building the report
``outcomes``'s; this module owns the run's lifecycle: locks, signals, the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path

from k8slk_ops.base.errors import EXIT_CANNOT_START, CannotStart, UsageError
from k8slk_ops.base.nextstep import tool_command, tool_line
from k8slk_ops.cluster.lock import (
    HeldLock,
    Holder,
    LocalLock,
    RunLock,
    cluster_lock,
    lock_next_step,
)
from k8slk_ops.engine import outcomes
from k8slk_ops.engine.context import ClusterFacts, PlanContext, RunContext
from k8slk_ops.engine.executor import Executor
from k8slk_ops.engine.options import RunOptions
from k8slk_ops.engine.plan import Plan, make_plan, needed_nodes
from k8slk_ops.engine.playbook import Playbook
from k8slk_ops.engine.probe import Cluster, NoApiAnswers, targets_of
from k8slk_ops.inventory import Inventory
from k8slk_ops.inventory.playbook_check import check_hosts
from k8slk_ops.node.linuxkit import NodeCommandError
from k8slk_ops.output.events import Event, EventKind, EventSink, NodeReport, RunReport
from k8slk_ops.output.rows import Layout
from k8slk_ops.ssh import SSHError

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
        on_plan: Callable[[Plan], None] | None = None,
    ) -> None:
        self.playbook = playbook
        self.inventory = inventory
        self.options = options
        self.sink = sink
        self.add_secret = add_secret
        self.command = command
        self.break_lock = break_lock
        self.local_lock_dir = local_lock_dir
        # Hears the plan made under the lock before anything runs (apply prints it and asks
        # before a disruption): it may end the run by raising, with nothing changed. It runs
        # with Ctrl-C as Python's own (KeyboardInterrupt), so that a prompt can be left.
        self.on_plan = on_plan
        self.cluster = Cluster(
            inventory,
            sink,
            concurrency=options.concurrency,
            refuse_host_key_errors=not playbook.read_only,
        )
        self.executor: Executor | None = None
        self._likely_needed: list[str] = []  # the nodes the stages name, before the primary is known
        self.lock: HeldLock | None = None  # the cluster lock, while the run holds it
        self.run_ctx: RunContext | None = None
        self.interrupted = False
        self.interrupted_by = ""  # which signal stopped the run
        self.report = RunReport(
            command=command,
            cluster=inventory.cluster.name,
            inventory=str(inventory.source),
            dry_run=options.dry_run,
            layout=Layout.of(command),
            nodes=[NodeReport(n.name, n.role, n.address) for n in inventory.nodes],
        )

    def emit(self, node: str | None, phase: str, kind: EventKind, message: str = "") -> None:
        self.sink.emit(Event(node, phase, kind, message))

    # -- the operation --------------------------------------------------------------------------

    async def run(self) -> RunReport:
        self._check_input()
        self._warm_connections()
        holder = Holder.me(self.options.run_id, self.command)
        locking = not (self.options.dry_run or self.playbook.read_only)
        try:
            async with self._local_lock(holder, locking), self._signals():
                cluster = await self._find_cluster(holder, locking)
                async with self._cluster_lock(cluster, holder, locking):
                    if locking:
                        cluster = await self._read_under_lock(cluster, holder)
                    await self._plan_and_execute(cluster)
            return self.report
        except (SSHError, NodeCommandError) as exc:
            if self.executor is not None:
                raise
            raise CannotStart(
                f"could not start: {exc}. Nothing was changed on any node; check that the node "
                "is up and answers SSH (`k8slk-ops status` shows every node), then run again"
            ) from None
        finally:
            await self.cluster.close()
            self.report.ended = datetime.now(UTC)

    def _warm_connections(self) -> None:
        """Dial the nodes the run will read while it finds the primary and takes the lock
        (``Cluster.warm``): the nodes its stages name, with the first control plane standing in
        for the primary until the primary is known. Writing waits for the facts, as ever."""
        first = next((n.name for n in self.inventory.control_planes), "")
        provisional = PlanContext(
            inventory=self.inventory,
            options=self.options,
            facts={},
            unreachable={},
            cluster=ClusterFacts(primary=first),
        )
        self._likely_needed = needed_nodes(self.playbook, provisional)
        self.cluster.warm(self._likely_needed)

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
        # A control plane on its way out is the last one to work through.
        leaving = set(self.options.leaving)
        cps = [n for n in cps if n not in leaving] + [n for n in cps if n in leaving]
        try:
            cluster = await self.cluster.find_primary(
                cps, read_only=self.playbook.read_only, without_api=self.playbook.without_api,
                addon_record=any(call.step.reads_addon_record
                                 for stage in self.playbook.stages for call in stage.steps),
            )
        except NoApiAnswers:
            if locking and not self.break_lock:
                # LockHeld, naming the other run, when it holds the lock files.
                async with HeldLock(await self._cluster_lock_of(None, holder)):
                    pass
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

    async def _read_under_lock(self, before: ClusterFacts, holder: Holder) -> ClusterFacts:
        """The cluster read again now that this run holds its lock: the plan and the quorum
        guard work on this reading, not on the one that found the lock.

        Why read twice rather than lock first: where the cluster lock lives follows from that
        first reading (the Lease is reached through a control plane whose API answers; before
        the cluster exists, the lock files go on every reachable control plane). Between the
        two, another run may have held the lock, changed the cluster and released it: removed a
        control plane, say, so that a guard working on the first reading would count three
        control planes where two are left. A cluster whose primary or state changed meanwhile
        is refused, as the lock was taken for the one first seen."""
        again = sorted(self.cluster.facts)
        # The other nodes the run will likely need are read meanwhile, under the lock too (the
        # plan reads any the primary's reading adds; a node read for nothing costs a read).
        others = [n for n in self._likely_needed if n not in again]
        await asyncio.gather(self.cluster.refresh(again), self.cluster.gather(others))
        after = await self._find_cluster(holder, locking=False)
        if (after.primary, after.initialised) != (before.primary, before.initialised):
            def seen(c: ClusterFacts) -> str:
                return f"{'initialised' if c.initialised else 'not initialised'}, via {c.primary}"

            raise CannotStart(
                f"the cluster changed while this run took its lock (it was {seen(before)}, it is "
                f"{seen(after)}): another run was under way; nothing was changed, run again"
            )
        return after

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
            outcomes.finish_dry_run(self.report, self.cluster, plan, self._again())
            return
        for warning in plan.warnings:
            self.sink.emit(Event(None, "plan", EventKind.WARN, warning))
        if not plan.changes and not self.playbook.read_only:
            self.report.messages.append(outcomes.NOTHING_TO_DO)
        if self.on_plan is not None:
            with self._prompting():
                self.on_plan(plan)
        await self._execute(ctx, plan)

    async def _execute(self, ctx: PlanContext, plan: Plan) -> None:
        run_ctx = RunContext(
            plan=ctx,
            sink=self.sink,
            connect=self.cluster.connect,
            add_secret=self.add_secret,
            probe=self.cluster,
            again=self._again(),
        )
        self.run_ctx = run_ctx
        reports = {n.name: n for n in self.report.nodes}
        guard = None if self.lock is None else self.lock.check
        self.executor = Executor(run_ctx, plan, reports, guard=guard)
        if self.interrupted:
            self.executor.request_stop(self.interrupted_by)
        await self.executor.execute()
        outcomes.finish_run(self.report, self.cluster, run_ctx.state, self.executor.interrupted,
                            self._again())
        if self.executor.guard_stopped:
            self.report.messages.append(
                f"the cluster lock was lost ({self.executor.guard_stopped}): the run stopped "
                "before its next changing stage"
            )
            outcomes.note_lock_lost(self.report, lock_next_step(self._again()))
            self.report.exit_code = EXIT_CANNOT_START

    def _again(self) -> str:
        """The command line that runs this operation again, for a failed node's next step."""
        inventory, selected = str(self.inventory.source), self.options.selected
        if self.command == "remove-node":  # names its nodes as arguments, and has --force
            return tool_line("remove-node", inventory, *selected,
                             *["--force"] * self.options.force)
        return tool_command(self.command, inventory, *selected)

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
        """The cluster lock for a run that changes things, held while the run lasts
        (``lock.HeldLock``: renewed, checked before every changing stage, released in any
        case)."""
        if not locking:
            yield
            return
        lock = await self._cluster_lock_of(cluster, holder)
        async with HeldLock(lock, break_lock=self.break_lock, reset=self._reset) as held:
            for message in held.broken:
                self.emit(None, "lock", EventKind.WARN, message)
                self.report.messages.append(message)
            self.lock = held
            yield

    def _reset(self) -> Collection[str]:
        """The nodes this run has reset so far (a Lease kept through one went with it)."""
        return () if self.run_ctx is None else self.run_ctx.state.reset

    async def _cluster_lock_of(self, cluster: ClusterFacts | None, holder: Holder) -> RunLock:
        """The Lease once the cluster exists and its API answers (and the playbook does not ask
        for the lock files), else the lock files on every reachable control plane."""
        lease = cluster is not None and cluster.initialised and not (
            cluster.through_ssh or self.playbook.lock_files)
        return await cluster_lock(
            lease=lease,
            primary=cluster.primary if cluster is not None else "",
            control_planes=[n.name for n in self.inventory.control_planes
                            if n.name not in self.cluster.unreachable],
            connect=self.cluster.connect,
            holder=holder,
        )

    @contextlib.asynccontextmanager
    async def _signals(self) -> AsyncIterator[None]:
        """Ctrl-C and SIGTERM ask the executor to stop now (executor.py: waits end, the cleanup
        and the ``always`` stages run; a second one cuts those too). SIGTERM is what
        ``timeout``, systemd and cron's wrappers send, and they follow it with SIGKILL within
        seconds: it is a stop, not a request to finish the running steps."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._on_interrupt, "interrupted (Ctrl-C)")
            loop.add_signal_handler(signal.SIGTERM, self._on_interrupt, "terminated (SIGTERM)")
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)

    @contextlib.contextmanager
    def _prompting(self) -> Iterator[None]:
        """Ctrl-C as Python's own while the operator is asked: it ends a prompt (which blocks
        the loop, so the run's handler would never get to run), then the run's again."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, self._on_interrupt, "interrupted (Ctrl-C)")

    def _on_interrupt(self, why: str) -> None:
        self.interrupted = True
        self.interrupted_by = self.interrupted_by or why
        if self.executor is not None:
            self.executor.request_stop(why)
