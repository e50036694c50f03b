"""The steps of ``etcd restore SNAPSHOT --pki FILE``: the cluster made again on blank control
planes (docs/etcd-restore.md, "Every control plane lost").

- ``etcd-rebuild-prepare`` (primary): refuses, while planning, a control plane that is not blank
  (nor carries this snapshot's marker); on the node: the snapshot uploaded and read with the
  node's etcd image, the CAs and service-account keys written into ``/etc/kubernetes/pki``, the
  snapshot restored into ``/var/lib/etcd`` as the one member kubeadm init will run there.
- ``etcd-rebuild-init`` (primary): bootstrap's init, on those files, with the one preflight
  check that refuses an etcd data directory made a warning; the marker written first.
- ``etcd-rebuild-credentials`` (primary): a token and a certificate key for the joins.
- ``etcd-rebuild-join`` (the other control planes, one at a time): the stale Node object the
  snapshot holds for the node deleted, the marker, then bootstrap's join as a new member.
- ``etcd-rebuild-check`` (primary): every member healthy, every node of the inventory Ready;
  then the rebuild's directories go.

A run cut short is run again with the same files: a control plane whose kubeadm was triggered
by an earlier run carries the marker of this snapshot and is taken as done; the others are
still blank and are done now.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError, UsageError
from k8slk_ops.cluster import etcdctl, etcdrebuild, etcdrestore
from k8slk_ops.cluster.etcdrebuild import ControlPlaneSeen
from k8slk_ops.cluster.etcdrestore import RestoreRefused, SnapshotFile
from k8slk_ops.cluster.membership import MembershipUnavailable, list_members
from k8slk_ops.cluster.pkiarchive import PkiFiles
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.node import paths
from k8slk_ops.node.linuxkit import LinuxKitNode
from k8slk_ops.output.events import EventKind
from k8slk_ops.steps.certs import backoff
from k8slk_ops.steps.credentials import MintCredentials, MintOptions, mint
from k8slk_ops.steps.etcd import member_health
from k8slk_ops.steps.etcdrestore import one_off, upload_snapshot
from k8slk_ops.steps.init import Init, InitOptions
from k8slk_ops.steps.join import Join, JoinOptions
from k8slk_ops.steps.render import node_ip

PHASE = "restore"


def _inputs(ctx: PlanContext) -> tuple[SnapshotFile, PkiFiles]:
    snap, pki = ctx.options.restore, ctx.options.restore_pki
    if snap is None or pki is None:
        raise NodeError("no snapshot or PKI archive given to rebuild from", phase=PHASE)
    return snap, pki


def _check_blank(ctx: PlanContext) -> None:
    """The refusal, while planning: nothing has been written anywhere yet (exit 2)."""
    snap, _ = _inputs(ctx)
    seen = [ControlPlaneSeen(cp.name, ctx.facts.get(cp.name), ctx.unreachable.get(cp.name, ""))
            for cp in ctx.inventory.control_planes]
    problems = etcdrebuild.refusals(seen, snap.sha256)
    if problems:
        raise UsageError("etcd restore --pki refused; nothing was changed:\n  "
                         + "\n  ".join(problems))


def _joining(ctx: PlanContext) -> list[str]:
    """The control planes still to join: the blank ones but the first."""
    return [cp.name for cp in ctx.inventory.control_planes
            if cp.name != ctx.cluster.primary and cp.name in ctx.facts
            and etcdrebuild.blank(ctx.facts[cp.name])]


async def _run(lk: LinuxKitNode, argv: list[str], what: str, timeout: float) -> str:
    result = await lk.shell(argv, timeout=timeout)
    if result.exit_status != 0:
        said = (result.stderr + b"\n" + result.stdout).decode(errors="replace")
        raise NodeError(f"{what} on {lk.name} failed: {kubeadm.failure_summary(said)}",
                        phase=PHASE)
    return result.stdout.decode(errors="replace")


async def _mark(lk: LinuxKitNode, sha256: str, stage: etcdrebuild.Stage) -> None:
    await _run(lk, ["sh", "-c", 'mkdir -p "$1" && chmod 700 "$1"', "sh", etcdrebuild.REBUILD_DIR],
               "creating the rebuild directory", 60)
    await lk.write_file(etcdrebuild.MARKER, etcdrebuild.marker_text(sha256, stage).encode())


class EtcdRebuildPrepare(Step[NoOptions]):
    name = "etcd-rebuild-prepare"
    phase = PHASE

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        snap, pki = _inputs(ctx)
        _check_blank(ctx)
        if ctx.cluster.initialised:
            return skip(f"the cluster was made again on {ctx.cluster.primary} by an earlier run "
                        "of this rebuild")
        return do(
            Action(f"write the {len(pki.files)} files of {pki.path.name} into "
                   "/etc/kubernetes/pki (keys 0600)"),
            Action(f"upload {snap.path.name} ({snap.size} bytes), check its SHA-256 and snapshot "
                   "status with the node's etcd image"),
            Action(f"restore it into {paths.ETCD_DATA} as the one member {node}, whatever "
                   "was there kept under a dated name"),
        )

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        snap, pki = _inputs(ctx.plan)
        lk = await ctx.node(node)
        image = etcdrebuild.pick_etcd_image(await _run(
            lk, ["ctr", "--namespace", etcdrestore.CTR_NAMESPACE, "images", "ls", "-q"],
            "listing the images", 60))
        if image is None:
            raise NodeError(
                f"{node} has no etcd image in containerd's {etcdrestore.CTR_NAMESPACE} "
                "namespace, and the restore runs etcd's own tools from it: pull the one "
                "`kubeadm config images list` names (`ctr --namespace k8s.io images pull "
                "registry.k8s.io/etcd:TAG`), then run again", phase=self.phase)
        await _run(lk, ["sh", "-c", 'mkdir -p "$1" && chmod 700 "$1"', "sh",
                        etcdrebuild.REBUILD_DIR], "creating the rebuild directory", 60)
        await upload_snapshot(lk, snap, etcdrebuild.SNAPSHOT, self.phase)
        out = await one_off(lk, image, etcdrestore.status_argv(image), ctx.options.timeout,
                            mount=etcdrebuild.REBUILD_DIR)
        try:
            status = etcdrestore.check_status(etcdctl.parse_snapshot_status(out))
        except (etcdctl.EtcdctlError, RestoreRefused) as exc:
            raise NodeError(f"snapshot status on {node}: {exc}", phase=self.phase) from None
        ctx.state.etcd_rebuild.status = status
        ctx.emit(node, self.phase, EventKind.PROGRESS,
                 f"snapshot checked with {image}: revision {status.revision}")
        await _run(lk, ["mkdir", "-p", f"{paths.PKI_DIR}/etcd"], "creating the PKI directory", 60)
        for member, data in pki.files.items():
            await lk.write_file(f"{paths.PKI_DIR}/{member}", data, pki.mode(member))
        ctx.emit(node, self.phase, EventKind.PROGRESS,
                 f"the cluster's CAs and service-account keys written ({len(pki.files)} files)")
        one = etcdrebuild.member(node, node_ip(ctx.plan, node), image)
        await _run(lk, ["rm", "-rf", etcdrebuild.STAGING], "removing an old staging directory",
                   120)
        await one_off(lk, image, etcdrebuild.restore_argv(one, snap.sha256,
                                                          ctx.options.skip_hash_check),
                      ctx.options.timeout, mount=etcdrebuild.REBUILD_DIR)
        kept = etcdrestore.kept_name(paths.ETCD_DATA, datetime.now(UTC))
        moved = await _run(lk, ["sh", "-c", 'set -e; if [ -e "$1" ]; then mv "$1" "$2"; '
                                'echo "$2"; fi; mv "$3" "$1"', "sh", paths.ETCD_DATA, kept,
                                etcdrebuild.STAGING],
                           "moving the restored data directory into place", 120)
        if moved.strip():
            ctx.state.etcd_rebuild.kept[node] = kept
        ctx.emit(node, self.phase, EventKind.PROGRESS,
                 f"data restored as the one member {one.name}={one.peer_url}")
        return True


class EtcdRebuildInit(Init):
    """bootstrap's init on the first control plane, on the restored files."""

    name = "etcd-rebuild-init"

    def plan(self, options: InitOptions, ctx: PlanContext, node: str) -> StepPlan:
        planned = super().plan(options, ctx, node)
        if not planned.due:
            return planned
        return do(Action(f"write the marker {etcdrebuild.MARKER}"), *planned.actions)

    def spec(self, ctx: RunContext, node: str, token: str) -> kubeadm.InitSpec:
        spec = super().spec(ctx, node, token)
        return dataclasses.replace(spec, overrides=etcdrebuild.init_overrides(spec.overrides))

    async def apply(self, options: InitOptions, ctx: RunContext, node: str) -> bool:
        snap, _ = _inputs(ctx.plan)
        if ctx.facts(node).not_waiting("init") is None:
            await _mark(await ctx.node(node), snap.sha256, "init")
        return await super().apply(options, ctx, node)


class EtcdRebuildCredentials(MintCredentials):
    """A token and a certificate key for the control planes that join the rebuilt cluster."""

    name = "etcd-rebuild-credentials"

    def plan(self, options: MintOptions, ctx: PlanContext, node: str) -> StepPlan:
        joining = _joining(ctx)
        if not joining:
            return skip("no control plane needs to join")
        ttl = options.ttl or ctx.options.token_ttl
        return do(
            Action(f"kubeadm token create --ttl {kubeadm.format_duration(ttl)} (for "
                   f"{len(joining)} joining control plane(s))"),
            Action(f"compute the CA pin from {paths.CA_CERT}"),
            Action("kubeadm init phase upload-certs --upload-certs"),
        )

    async def apply(self, options: MintOptions, ctx: RunContext, node: str) -> bool:
        ttl = options.ttl or ctx.options.token_ttl
        async with ctx.state.credentials_lock:
            ctx.state.credentials = await mint(ctx, node, ttl, upload=True)
        return False


class EtcdRebuildJoin(Join):
    """bootstrap's join of a control plane, as a new member of the rebuilt cluster."""

    name = "etcd-rebuild-join"

    def plan(self, options: JoinOptions, ctx: PlanContext, node: str) -> StepPlan:
        if node == ctx.cluster.primary:
            return skip("primary control plane")
        if node not in _joining(ctx):
            return skip("joined by an earlier run of this rebuild")
        return do(
            Action(f"delete the Node {node} the snapshot holds (the machine it stood for is "
                   "gone)"),
            Action(f"write the marker {etcdrebuild.MARKER}"),
            Action(f"write {paths.KUBEADM_YAML} (JoinConfiguration with controlPlane; CA "
                   "pinned; mode 0600)"),
            Action(f"write 'join' to {paths.KUBEADM_RUN}", {"trigger": "join"}),
            Action(f"follow {paths.KUBEADM_LOG} until kubeadm has completed"),
        )

    async def apply(self, options: JoinOptions, ctx: RunContext, node: str) -> bool:
        snap, _ = _inputs(ctx.plan)
        if ctx.facts(node).not_waiting("join") is None:
            primary = await ctx.node(ctx.plan.cluster.primary)
            gone = await primary.kubectl("delete", "node", node, "--ignore-not-found")
            if gone.exit_status != 0:
                raise NodeError(f"deleting the stale Node {node} failed: "
                                f"{kubeadm.failure_summary(gone.stderr.decode(errors='replace'))}",
                                phase=self.phase)
            await _mark(await ctx.node(node), snap.sha256, "join")
        joined = await super().apply(options, ctx, node)
        ctx.state.etcd_rebuild.joined.append(node)
        return joined


class EtcdRebuildCheck(Step[NoOptions]):
    name = "etcd-rebuild-check"
    phase = PHASE

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action("wait until every etcd member is healthy and every node of the "
                         "inventory Ready; remove the rebuild's files from the control planes"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        snap, pki = _inputs(ctx.plan)
        cps = [cp.name for cp in ctx.plan.inventory.control_planes]
        deadline = time.monotonic() + ctx.options.timeout
        pauses = backoff()
        while why := await self._why_not_done(ctx, cps):
            if time.monotonic() > deadline:
                raise NodeError(f"the rebuilt cluster is not healthy after "
                                f"{ctx.options.timeout:.0f}s: {why}; run `k8slk-ops etcd "
                                "status` and see the etcd logs, then run again", phase=self.phase)
            ctx.emit(node, self.phase, EventKind.PROGRESS, f"waiting: {why}")
            await asyncio.sleep(next(pauses))
        for name in cps:
            await _run(await ctx.node(name), ["rm", "-rf", etcdrebuild.REBUILD_DIR],
                       "removing the rebuild's files", 120)
        state = ctx.state.etcd_rebuild
        status = state.status
        state.result = etcdrebuild.RebuildResult(
            str(snap.path), snap.sha256, str(pki.path), status.revision if status else 0,
            status.total_keys if status else 0, node, tuple(state.joined),
            tuple(f"{n}: {d}" for n, d in sorted(state.kept.items())),
        )
        return True

    async def _why_not_done(self, ctx: RunContext, cps: list[str]) -> str:
        """'' once every control plane's member is healthy and lists them all, and every node
        of the inventory is Ready; else what is still missing."""
        for name in cps:
            health = await member_health(await ctx.node(name))
            if not health.healthy:
                return f"etcd on {name}: {health.error}"
            if len(health.members) != len(cps):
                return f"etcd on {name} lists {len(health.members)} members, not {len(cps)}"
        try:
            members = await list_members(await ctx.node(ctx.plan.cluster.primary))
        except MembershipUnavailable as exc:
            return f"no node list: {exc}"
        for spec in ctx.inventory.nodes:
            found = members.get(spec.name)
            if found is None or not found.ready:
                return f"{spec.name} is not Ready"
        return ""
