"""The steps of ``etcd restore``: every control plane restored from the same snapshot.

In order, each stage on every control plane (docs/etcd-restore.md):

- ``etcd-restore-prepare``: read the etcd manifest (image, member name, peer URL), upload the
  snapshot into ``RESTORE_DIR`` and check its SHA-256 there, run ``snapshot status`` on it in a
  one-off container of the etcd image (the binaries the restore will use), mark the node
  ``<sha256> uploaded``. Nothing runs differently yet: a refusal here leaves the cluster as it was.
- ``etcd-restore-stop``: the static pod manifests parked, the kubelet seen to stop the pods.
- ``etcd-restore-data``: restore into a staging directory, rename the old data directory aside
  (dated), rename the staging directory into place, mark the node ``restored``.
- ``etcd-restore-start``: the manifests back, the node's API answering.
- ``etcd-restore-check`` (primary): every member healthy and listed, every node Ready, the
  snapshot copies and markers removed; the old data directories stay for the operator.

A run cut short is run again with the same snapshot: a node marked ``restored`` is not restored
twice, manifests parked by the restore are found where it parked them, and the cluster token is
derived from the snapshot's SHA-256, so members restored by two runs belong to one cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster import etcdctl, etcdrestore
from k8slk_ops.cluster.etcdrestore import EtcdManifest, RestoreRefused, SnapshotFile
from k8slk_ops.cluster.membership import MembershipUnavailable, list_members
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.node import paths
from k8slk_ops.node.linuxkit import LinuxKitNode, NodeCommandError
from k8slk_ops.output.events import EventKind
from k8slk_ops.steps import localapi
from k8slk_ops.steps.certs import backoff, start_static_pods, stop_static_pods
from k8slk_ops.steps.etcd import member_health


def _snapshot(ctx: PlanContext) -> SnapshotFile:
    snap = ctx.options.restore
    if snap is None:
        raise NodeError("no snapshot given to restore", phase="restore")
    return snap


def _control_plane(ctx: PlanContext, node: str, what: str) -> StepPlan:
    if ctx.spec(node).role != "control-plane":
        return skip("not a control plane")
    return do(Action(what))


async def _run(lk: LinuxKitNode, argv: list[str], what: str, timeout: float) -> str:
    result = await lk.shell(argv, timeout=timeout)
    if result.exit_status != 0:
        said = (result.stderr + b"\n" + result.stdout).decode(errors="replace")
        raise NodeError(f"{what} on {lk.name} failed: {kubeadm.failure_summary(said)}",
                        phase="restore")
    return result.stdout.decode(errors="replace")


async def _marker(lk: LinuxKitNode) -> tuple[str, etcdrestore.Stage] | None:
    text = await lk.read_file(etcdrestore.MARKER)
    return None if text is None else etcdrestore.parse_marker(text.decode(errors="replace"))


async def _manifest(lk: LinuxKitNode) -> EtcdManifest:
    """The etcd manifest where the kubelet runs it, else where this restore parked it."""
    for folder in (paths.MANIFESTS, etcdrestore.PARKED):
        text = await lk.read_file(f"{folder}/etcd.yaml")
        if text is not None:
            try:
                return etcdrestore.parse_manifest(text.decode(errors="replace"))
            except RestoreRefused as exc:
                raise NodeError(f"{folder}/etcd.yaml: {exc}", phase="restore") from None
    raise NodeError(
        f"{lk.name} has no etcd manifest in {paths.MANIFESTS} (nor parked by a restore): it is "
        "not a stacked-etcd control plane this tool can restore; check the node", phase="restore")


async def upload_snapshot(lk: LinuxKitNode, snap: SnapshotFile, target: str, phase: str,
                          reuse: bool = True) -> None:
    """The snapshot at ``target`` on the node (0600), checked there by size and SHA-256; with
    ``reuse``, a copy already there with its SHA-256 is not uploaded again."""
    size, sha256 = (-1, "")
    if reuse:
        with contextlib.suppress(NodeCommandError):  # not there: uploaded below
            size, sha256 = await lk.file_digest(target)
    if sha256 != snap.sha256:
        await lk.write_file(target, snap.data, 0o600)
        size, sha256 = await lk.file_digest(target)
    if (size, sha256) != (snap.size, snap.sha256):
        raise NodeError(f"the copy on {lk.name} differs from {snap.path} ({size} bytes, "
                        f"SHA-256 {sha256}): check the node's disk, then run again", phase=phase)


async def one_off(lk: LinuxKitNode, image: str, argv: list[str], timeout: float,
                  mount: str = etcdrestore.RESTORE_DIR) -> str:
    """argv in a one-off container of the etcd image, the restore directory (or ``mount``)
    mounted."""
    cid = f"k8slk-etcd-restore-{uuid.uuid4().hex[:12]}"
    return await _run(lk, etcdrestore.ctr_run_argv(image, cid, argv, mount=mount),
                      f"{argv[0]} {argv[1]} {argv[2]} in a container of {image}", timeout)


class EtcdRestorePrepare(Step[NoOptions]):
    name = "etcd-restore-prepare"
    phase = "restore"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        snap = _snapshot(ctx)
        return _control_plane(ctx, node, f"upload {snap.path.name} ({snap.size} bytes), check "
                              "its SHA-256 and snapshot status with the node's etcd image")

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        snap = _snapshot(ctx.plan)
        lk = await ctx.node(node)
        manifest = await _manifest(lk)
        if manifest.data_dir != etcdrestore.KUBEADM_DATA_DIR:
            raise NodeError(f"etcd's data directory is {manifest.data_dir}, not kubeadm's "
                            f"{etcdrestore.KUBEADM_DATA_DIR}; this tool restores only the latter",
                            phase=self.phase)
        ctx.state.etcd_restore.manifests[node] = manifest
        marker = await _marker(lk)
        if marker is not None and marker[0] != snap.sha256:
            raise NodeError(
                f"a restore of another snapshot (SHA-256 {marker[0]}) was begun on {node} and "
                "not finished: run `etcd restore` again with that snapshot, or, if it must not "
                f"be finished, remove {etcdrestore.RESTORE_DIR} on every control plane first",
                phase=self.phase)
        await _run(lk, ["sh", "-c", 'mkdir -p "$1" && chmod 700 "$1"', "sh",
                        etcdrestore.RESTORE_DIR], "creating the restore directory", 60)
        # An earlier run of this snapshot (its marker) may have uploaded it already.
        await upload_snapshot(lk, snap, etcdrestore.SNAPSHOT, self.phase,
                              reuse=marker is not None)
        out = await one_off(lk, manifest.image, etcdrestore.status_argv(manifest.image),
                            ctx.options.timeout)
        try:
            status = etcdrestore.check_status(etcdctl.parse_snapshot_status(out))
        except (etcdctl.EtcdctlError, RestoreRefused) as exc:
            raise NodeError(f"snapshot status on {node}: {exc}", phase=self.phase) from None
        ctx.state.etcd_restore.status = status
        if marker is None:
            await lk.write_file(etcdrestore.MARKER,
                                etcdrestore.marker_text(snap.sha256, "uploaded").encode())
        ctx.emit(node, self.phase, EventKind.PROGRESS,
                 f"snapshot checked with {manifest.image}: revision {status.revision}")
        return True


class EtcdRestoreStop(Step[NoOptions]):
    name = "etcd-restore-stop"
    phase = "restore"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return _control_plane(ctx, node, "park the static pod manifests; wait until the kubelet "
                              "has stopped etcd and the API server")

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        if await _marker(lk) == (_snapshot(ctx.plan).sha256, "restored"):
            ctx.emit(node, self.phase, EventKind.PROGRESS,
                     "restored by an earlier run: its etcd is not stopped again")
            return True
        await stop_static_pods(ctx, node, lk, etcdrestore.PARKED, None,
                               time.monotonic() + ctx.options.timeout)
        return True


class EtcdRestoreData(Step[NoOptions]):
    name = "etcd-restore-data"
    phase = "restore"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return _control_plane(ctx, node, f"restore the snapshot into {paths.ETCD_DATA}, the "
                              "old data directory kept under a dated name")

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        snap = _snapshot(ctx.plan)
        lk = await ctx.node(node)
        marker = await _marker(lk)
        if marker == (snap.sha256, "restored"):
            ctx.emit(node, self.phase, EventKind.PROGRESS, "restored by an earlier run")
            return True
        state = ctx.state.etcd_restore
        manifest = state.manifests[node]
        members = [state.manifests[n] for n in sorted(state.manifests)]
        await _run(lk, ["rm", "-rf", etcdrestore.STAGING], "removing an old staging directory", 120)
        await one_off(lk, manifest.image, etcdrestore.restore_argv(
            manifest.image, manifest, members, snap.sha256, ctx.options.skip_hash_check,
        ), ctx.options.timeout)
        kept = etcdrestore.kept_name(paths.ETCD_DATA, datetime.now(UTC))
        # The old directory aside (when there is one), the restored one into place: two
        # renames on one disk; the second is the point after which the node is restored.
        moved = await _run(lk, ["sh", "-c", 'set -e; if [ -e "$1" ]; then mv "$1" "$2"; echo "$2"; fi; '
                        'mv "$3" "$1"', "sh", paths.ETCD_DATA, kept, etcdrestore.STAGING],
                   "moving the restored data directory into place", 120)
        if moved.strip():
            state.kept[node] = kept
        await lk.write_file(etcdrestore.MARKER,
                            etcdrestore.marker_text(snap.sha256, "restored").encode())
        ctx.emit(node, self.phase, EventKind.PROGRESS, f"data restored as member {manifest.name}")
        return True


class EtcdRestoreStart(Step[NoOptions]):
    name = "etcd-restore-start"
    phase = "restore"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return _control_plane(ctx, node, "move the static pod manifests back; wait until the "
                              "API answers")

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        back = await start_static_pods(lk, etcdrestore.PARKED)
        ctx.emit(node, self.phase, EventKind.PROGRESS, f"manifests back: {back or 'none parked'}")
        await localapi.wait_ready(lk, ctx.options.timeout, self.phase)
        return True


class EtcdRestoreCheck(Step[NoOptions]):
    name = "etcd-restore-check"
    phase = "restore"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action("wait until every etcd member is healthy and every node Ready; "
                         "remove the snapshot copies from the control planes"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        snap = _snapshot(ctx.plan)
        state = ctx.state.etcd_restore
        cps = sorted(state.manifests)
        deadline = time.monotonic() + ctx.options.timeout
        pauses = backoff()
        why = ""
        while True:
            why = await self._why_not_done(ctx, cps)
            if not why:
                break
            if time.monotonic() > deadline:
                raise NodeError(f"the restored cluster is not healthy after "
                                f"{ctx.options.timeout:.0f}s: {why}; the old data directories "
                                "are kept; run `k8slk-ops etcd status` and see the etcd logs",
                                phase=self.phase)
            await asyncio.sleep(next(pauses))
        for name in cps:
            lk = await ctx.node(name)
            await _run(lk, ["rm", "-rf", etcdrestore.RESTORE_DIR],
                       "removing the restore's copy of the snapshot", 120)
        status = state.status
        state.result = etcdrestore.RestoreResult(
            str(snap.path), snap.sha256, status.revision if status else 0,
            status.total_keys if status else 0,
            tuple(f"{state.manifests[n].name}={state.manifests[n].peer_url}" for n in cps),
            tuple(f"{n}: {d}" for n, d in sorted(state.kept.items())),
        )
        return True

    async def _why_not_done(self, ctx: RunContext, cps: list[str]) -> str:
        """'' once every control plane's member is healthy, lists them all, and every node of
        the inventory is Ready; else what is still missing."""
        for name in cps:
            health = await member_health(await ctx.node(name))
            if not health.healthy:
                return f"etcd on {name}: {health.error}"
            if len(health.members) != len(cps):
                return f"etcd on {name} lists {len(health.members)} members, not {len(cps)}"
        try:
            members = await list_members(await ctx.node(cps[0]))
        except MembershipUnavailable as exc:
            return f"no node list: {exc}"
        for spec in ctx.inventory.nodes:
            member = members.get(spec.name)
            if member is None or not member.ready:
                return f"{spec.name} is not Ready"
        return ""
