"""etcd-snapshot and etcd-status: the cluster's etcd, read through its static pods.

``etcd-snapshot`` runs on one healthy control plane (the primary): ``etcdctl snapshot save``
inside the etcd container into the data directory, the file streamed back over the exec
channel into a ``.part`` file, size and SHA-256 checked against the node's copy, read by
etcdctl (the operator's own if installed, else the pod's), renamed to ``.db``; the node's copy
is deleted whatever happened, and the newest N of the cluster's snapshots are kept.
With ``--pki`` the cluster's CAs and service-account keys go beside it (``pkiarchive``).
The same step with ``beforeChange: true`` opens ``upgrade`` and ``certs renew``: a verified
snapshot (into ``snapshots/`` beside the inventory by default) before anything changes; it is
not due when nothing else in the plan changes, or with ``--no-snapshot``, and when it fails the
run stops there, saying how to go on.
``etcd-status`` asks each control plane's member for its status, the member list and its
health; a member that is not healthy fails its node, with the reason. Members that no reachable
node of the inventory accounts for are listed as stale, with the command that removes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from k8slk_ops.base import localfile
from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster import etcdctl, etcdmembers, pkiarchive, snapshot
from k8slk_ops.cluster.etcdpod import EtcdPod, EtcdPodError
from k8slk_ops.cluster.snapshot import (
    IncomingSnapshot,
    SnapshotError,
    SnapshotResult,
    check_status,
    prune,
    snapshot_name,
    verify_local,
)
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.node import paths
from k8slk_ops.node.linuxkit import LinuxKitNode, NodeCommandError
from k8slk_ops.output.events import EventKind

# What a member that has no leader means: fewer than a majority of the members can reach each
# other (or an election is under way this very second).
NO_LEADER = "quorum lost: the member has no leader (a majority of members is down or unreachable)"


# Where a snapshot taken before a change goes unless --snapshot-dir says otherwise.
BEFORE_CHANGE_DIR = "snapshots"
NO_SNAPSHOT_HINT = (
    "Nothing was changed. Put that right (`k8slk-ops etcd status` shows etcd's health) and run "
    "again, or pass --no-snapshot to go on without a snapshot, knowingly: there is then no way "
    "back to the cluster's state before this change"
)
# etcd refusing the client certificate the tool uses (kubeadm's etcd healthcheck-client): all
# certificates expired. No snapshot can be taken through etcd until they are renewed.
EXPIRED_HINT = (
    "etcd refuses certificates that have expired, its own included: no snapshot can be taken "
    "until they are renewed. Run `certs renew --no-snapshot`, then `etcd snapshot` at once"
)


class SnapshotOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # True: the snapshot that guards a change (upgrade, certs renew): its own directory by
    # default, skipped with --no-snapshot or when nothing else changes, the run stops on failure.
    before_change: bool = Field(default=False, alias="beforeChange")


def snapshot_dir(ctx: PlanContext, before_change: bool = False) -> Path:
    """``-o DIR`` / ``--snapshot-dir DIR``, else the inventory's directory (``snapshots/`` in it
    for a snapshot taken before a change, so that those pile up apart from the inventory)."""
    if ctx.options.snapshot_dir is not None:
        return ctx.options.snapshot_dir.expanduser()
    base = ctx.inventory.source.parent
    return base / BEFORE_CHANGE_DIR if before_change else base


def _remote_name(ctx: RunContext) -> str:
    return f"k8slk-snapshot-{ctx.options.run_id or 'run'}.db"


def _failure(message: str, before_change: bool) -> str:
    """The step's failure, with what to do next when it guarded a change."""
    if not before_change:
        return message
    hint = NO_SNAPSHOT_HINT
    if etcdctl.TLS_REFUSED in message:
        hint = f"{EXPIRED_HINT}. {hint}"
    return f"no snapshot before the change: {message}. {hint}"


EXPIRED_OUTAGE = (
    "No API answers and etcd gives no snapshot (expired certificates: it refuses the tool, and "
    "its members refuse each other): renewing them is what brings both back, so the run goes "
    "on without a snapshot. Take `k8slk-ops etcd snapshot` once it is done"
)


def _api_outage(ctx: RunContext) -> bool:
    """The bad day a snapshot cannot guard: the run goes through SSH alone (no API answers,
    ``certs renew``). etcd then refuses the tool's expired client certificate, or, with every
    member's peer certificate expired too, has no quorum and does not answer in time (measured
    on the lab with the real etcd). Refusing here would refuse the one command that ends the
    outage; renewing certificates leaves etcd's data as it is."""
    return ctx.plan.cluster.through_ssh


class EtcdSnapshot(Step[SnapshotOptions]):
    name = "etcd-snapshot"
    phase = "snapshot"
    changes = False
    read_only = True

    def plan(self, options: SnapshotOptions, ctx: PlanContext, node: str) -> StepPlan:
        if ctx.spec(node).role != "control-plane":
            return skip("not a control plane")
        if options.before_change and ctx.options.no_snapshot:
            return skip("--no-snapshot: no etcd snapshot before the change")
        target = (snapshot_dir(ctx, options.before_change)
                  / f"{ctx.inventory.cluster.name}-<UTC time>.db")
        keep = ctx.options.snapshot_keep
        kept = f", keep the newest {keep}" if keep else ""
        pki = ", the CAs and service-account keys beside it (.pki.tar)" \
            if ctx.options.snapshot_pki else ""
        when = "before any change: " if options.before_change else ""
        return do(Action(
            f"{when}etcdctl snapshot save in the etcd pod, stream it to {target}, check size, "
            f"SHA-256 and etcdctl snapshot status{kept}{pki}",
            {"local": str(target), "keep": keep, "pki": ctx.options.snapshot_pki,
             "beforeChange": options.before_change},
        ))

    def only_guards_a_change(self, options: SnapshotOptions) -> bool:
        return options.before_change

    async def apply(self, options: SnapshotOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        remote = _remote_name(ctx)
        shell_path = f"{paths.ETCD_DATA}/{remote}"
        directory = snapshot_dir(ctx.plan, options.before_change)
        try:
            pod = await EtcdPod.find(lk)
            await _require_healthy(pod)
            taken = await _free_second(directory, ctx.inventory.cluster.name)
            await pod.etcdctl(
                "snapshot", "save", f"{paths.ETCD_CONTAINER_DATA}/{remote}",
                timeout=ctx.options.timeout,
            )
            ctx.emit(node, self.phase, EventKind.PROGRESS, "snapshot saved on the node")
            result = await _fetch(ctx, lk, pod, directory, shell_path, remote, taken)
        except (EtcdPodError, SnapshotError, NodeCommandError, etcdctl.EtcdctlError) as exc:
            if options.before_change and _api_outage(ctx):
                ctx.emit(node, self.phase, EventKind.WARN, f"no snapshot before the change: "
                         f"{exc}. {EXPIRED_OUTAGE}")
                return False
            raise NodeError(_failure(str(exc), options.before_change), phase=self.phase) from None
        finally:
            await _remove_remote(ctx, lk, shell_path, node)
        keep = ctx.options.snapshot_keep
        if keep:
            pruned = prune(result.path.parent, ctx.inventory.cluster.name, keep, result.path)
            for old in pruned.deleted:  # an archive goes with its snapshot
                pkiarchive.archive_path(old).unlink(missing_ok=True)
            result = dataclasses.replace(
                result, pruned=pruned.deleted, dated_later=pruned.dated_later
            )
        ctx.state.snapshot = result
        if ctx.options.snapshot_pki:
            await _write_pki(ctx, lk, result)
        return False


async def _write_pki(ctx: RunContext, lk: LinuxKitNode, result: SnapshotResult) -> None:
    """The CAs and SA keys beside the snapshot; the snapshot is kept (and reported) if not."""
    try:
        files = await pkiarchive.read_from(lk)
        archive = pkiarchive.write(result.path, files, result.taken)
    except (pkiarchive.PkiError, NodeCommandError, localfile.UnsafeTarget, OSError) as exc:
        raise NodeError(
            f"snapshot {result.path} kept, but no PKI archive written: {exc}", phase="snapshot"
        ) from None
    ctx.state.snapshot = dataclasses.replace(result, pki=archive)


async def _free_second(directory: Path, cluster: str) -> datetime:
    """Now, once no snapshot of the cluster in ``directory`` is named after this second.

    Names have a one-second resolution: a run right after another (a ``certs renew`` that
    found nothing due, run again) would otherwise find its name taken. Waiting for the next
    second keeps every name the true time of its snapshot."""
    for _ in range(3):
        now = datetime.now(UTC)
        if not (directory / snapshot_name(cluster, now)).exists():
            return now
        await asyncio.sleep(1 - now.microsecond / 1_000_000)
    return datetime.now(UTC)  # still taken: IncomingSnapshot says so


async def _endpoint_status(pod: EtcdPod) -> etcdctl.EndpointStatus:
    return etcdctl.parse_endpoint_status(await pod.etcdctl("endpoint", "status", "-w", "json"))


async def _check_quorum(pod: EtcdPod, status: etcdctl.EndpointStatus) -> None:
    """EtcdPodError unless the member is part of a quorum. A member that knows it has no leader
    says so at once (``endpoint status``, answered locally); only then is ``endpoint health``
    (a quorum read, which waits its timeout without one) asked."""
    if not status.leader_id:
        raise EtcdPodError(NO_LEADER)
    await pod.etcdctl("endpoint", "health", "-w", "json")


async def _require_healthy(pod: EtcdPod) -> None:
    """Refuse a member without quorum: its snapshot could be stale (a minority's view)."""
    try:
        await _check_quorum(pod, await _endpoint_status(pod))
    except (EtcdPodError, etcdctl.EtcdctlError) as exc:
        raise EtcdPodError(f"etcd is not healthy, no snapshot taken: {exc}") from None


async def _fetch(
    ctx: RunContext, lk: LinuxKitNode, pod: EtcdPod, directory: Path, shell_path: str,
    remote: str, taken: datetime,
) -> SnapshotResult:
    """Stream the node's copy into a part file, check it, keep it; the part goes on failure."""
    size, sha256 = await lk.file_digest(shell_path)
    incoming = IncomingSnapshot(directory, snapshot_name(ctx.inventory.cluster.name, taken))
    try:
        await lk.copy_file_out(shell_path, incoming.write)
        incoming.check(size, sha256)
        binary = snapshot.local_etcdctl()  # looked up per run (tests replace it)
        if binary is not None:
            status, by = await verify_local(binary, incoming.part), "local etcdctl"
        else:
            status = check_status(
                await pod.snapshot_status(f"{paths.ETCD_CONTAINER_DATA}/{remote}")
            )
            by = f"etcdctl on {lk.name}"
        final = incoming.keep()
    except BaseException:
        incoming.discard()
        raise
    return SnapshotResult(final, lk.name, size, sha256, status, taken, by)


async def _remove_remote(ctx: RunContext, lk: LinuxKitNode, path: str, node: str) -> None:
    """Delete the node's copy (it holds every secret of the cluster), even when cancelled."""
    try:
        await asyncio.shield(lk.remove_file(path))
    except Exception as exc:  # reported, never masking the snapshot's own result
        ctx.emit(node, "snapshot", EventKind.WARN, f"could not delete {path}: {exc}")
        ctx.state.cleanup_errors.append(f"{node}: could not delete {path}: {exc}")


class EtcdStatus(Step[NoOptions]):
    name = "etcd-status"
    phase = "etcd"
    changes = False
    read_only = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        if ctx.spec(node).role != "control-plane":
            return skip("not a control plane")
        return do(Action("etcdctl endpoint status, member list and endpoint health in the etcd pod"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        health = await member_health(await ctx.node(node))
        ctx.state.etcd[node] = health
        for stale in etcdmembers.stale_members(
            health.members, ctx.inventory, ctx.plan.node_ips, ctx.plan.unreachable
        ):
            ctx.state.etcd_stale.setdefault(stale.member.member_id, stale)
        if not health.healthy:
            raise NodeError(health.error, phase=self.phase)
        return False


async def member_health(lk: LinuxKitNode) -> etcdctl.MemberHealth:
    """Status, members and health of one control plane's member; why not, when unhealthy."""
    try:
        pod = await EtcdPod.find(lk)
    except EtcdPodError as exc:
        return etcdctl.MemberHealth(lk.name, False, str(exc))
    status: etcdctl.EndpointStatus | None = None
    members: tuple[etcdctl.MemberInfo, ...] = ()
    try:
        status = await _endpoint_status(pod)
        members = tuple(etcdctl.parse_member_list(await pod.etcdctl("member", "list", "-w", "json")))
        await _check_quorum(pod, status)
    except (EtcdPodError, etcdctl.EtcdctlError) as exc:
        return etcdctl.MemberHealth(lk.name, False, str(exc), status, members)
    return etcdctl.MemberHealth(lk.name, True, "", status, members)


async def cluster_view(lk: LinuxKitNode) -> etcdctl.ClusterView:
    """Every member's status and health, asked through ``lk``'s etcd pod alone: etcdctl's
    ``--cluster`` dials each listed member's client URL from there. The three questions go out
    together on the node's one connection. EtcdPodError or EtcdctlError when this pod cannot
    answer for the cluster (the caller then asks each control plane itself)."""
    pod = await EtcdPod.find(lk)
    listed, statuses, health = await asyncio.gather(
        pod.etcdctl("member", "list", "-w", "json"),
        pod.etcdctl_rows("endpoint", "status", "--cluster", "-w", "json"),
        pod.etcdctl_rows("endpoint", "health", "--cluster", "-w", "json"),
    )
    return etcdctl.ClusterView(
        through=lk.name,
        members=tuple(etcdctl.parse_member_list(listed)),
        statuses=tuple(etcdctl.parse_endpoint_statuses(statuses)),
        health=tuple(etcdctl.parse_endpoint_health(health)),
    )
