"""etcd-verify-restore: the snapshot this run just kept, restored and read back on the node.

Runs after ``etcd-snapshot`` on the same control plane, with ``etcd snapshot
--verify-restore`` (see :mod:`k8slk_ops.cluster.restorecheck` for where things go and why): the kept
file is uploaded into a scratch directory (its SHA-256 checked there: what is verified is the
file the operator has, not a copy of it), restored with the node's etcd image in a one-off
container, served by a throwaway etcd in a detached container of the same image, and read: the
number of keys and the Node names. The container and the directory are removed whatever
happens (a failure, a lost connection, Ctrl-C); what could not be removed is named with the
commands that remove it by hand. A failed check fails the node (exit 1): the snapshot stays,
as it passed its own checks and may still be fine, and the message says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.cluster import etcdrestore, restorecheck
from k8slk_ops.cluster.restorecheck import CheckError, RestoreCheck
from k8slk_ops.cluster.snapshot import SnapshotResult
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.node import paths
from k8slk_ops.node.facts import TaskState
from k8slk_ops.node.linuxkit import LinuxKitNode, NodeCommandError, certain_read
from k8slk_ops.output.events import EventKind
from k8slk_ops.ssh import CommandResult
from k8slk_ops.steps.certs import backoff
from k8slk_ops.steps.etcdrestore import one_off

PHASE = "verify-restore"
LOG_LINES = 5  # of the throwaway etcd's log, in a failure's log tail
# How much longer than etcdctl's own dial and command timeouts its exec may take.
EXEC_SLACK = 45.0


AGAIN = ("Run `etcd snapshot --verify-restore` again; if it fails the same way, keep an "
         "earlier snapshot until a new one verifies, and look at etcd with `etcd status`")
DISK = ("Check the node's disk (`df /var/node` in its shell), then run `etcd snapshot "
        "--verify-restore` again")
SERVE = ("Its last log lines are below: if the node is short of memory or disk (/var/node), "
         "free some and run `etcd snapshot --verify-restore` again; if it fails the same way, "
         "keep an earlier snapshot until a new one verifies")


class VerifyFailed(Exception):
    """The check failed: what failed, what to do about it, and the throwaway etcd's last log
    lines when it got that far."""

    def __init__(self, message: str, hint: str = AGAIN, log_tail: list[str] | None = None):
        super().__init__(message)
        self.hint = hint
        self.log_tail = list(log_tail or [])


def kept_hint(snap: SnapshotResult) -> str:
    """What the operator is told of the snapshot whenever the check fails."""
    return (f"The snapshot {snap.path} is kept: it passed its own checks (size, SHA-256, "
            "`snapshot status`) and may still be fine, but it is not shown to restore")


class EtcdVerifyRestore(Step[NoOptions]):
    name = "etcd-verify-restore"
    phase = PHASE
    changes = False
    read_only = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        if ctx.spec(node).role != "control-plane":
            return skip("not a control plane")
        if not ctx.options.snapshot_verify_restore:
            return skip("no --verify-restore")
        scratch = restorecheck.scratch_dir(ctx.options.run_id or "RUN")
        return do(Action(
            f"upload the new snapshot into {scratch}, restore it there with the node's etcd "
            f"image, serve it with a throwaway etcd on {restorecheck.CLIENT_URL} in a container "
            "of its own, read its keys and Node names, then remove the container and "
            "the directory",
            {"scratch": scratch, "client": restorecheck.CLIENT_URL},
        ))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        snap = ctx.state.snapshot
        if snap is None:  # the snapshot step failed: this node never gets here
            raise NodeError("no snapshot was kept to verify", phase=self.phase)
        lk = await ctx.node(node)
        run_id = ctx.options.run_id or "run"
        failed: VerifyFailed | None = None
        check: RestoreCheck | None = None
        try:
            check = await _verify(ctx, lk, node, snap, run_id)
        except VerifyFailed as exc:
            failed = exc
        except NodeCommandError as exc:  # a read or write on the node itself failed
            failed = VerifyFailed(str(exc))
        finally:  # also when cancelled or the connection is lost: then said as a cleanup error
            left = await _clean(lk, run_id)
            if left:
                ctx.state.cleanup_errors.append(f"{node}: {left}")
                ctx.emit(node, self.phase, EventKind.WARN, left)
        if failed is not None:
            ctx.state.restore_check = RestoreCheck(node, False, error=str(failed))
            tail = [left] if left else []
            raise NodeError(f"restore check failed: {failed}. {kept_hint(snap)}. "
                            f"{failed.hint}", phase=self.phase, log_tail=[*failed.log_tail, *tail])
        assert check is not None
        ctx.state.restore_check = check
        if left:
            raise NodeError(f"{check.line()}, but {left}", phase=self.phase)
        ctx.emit(node, self.phase, EventKind.PROGRESS, check.line())
        return False


async def _verify(
    ctx: RunContext, lk: LinuxKitNode, node: str, snap: SnapshotResult, run_id: str
) -> RestoreCheck:
    image = await _etcd_image(lk)
    scratch = restorecheck.scratch_dir(run_id)
    await _shell(lk, ["sh", "-c", 'umask 077 && mkdir -p "$1" && chmod 700 "$1"', "sh",
                      scratch], "creating the scratch directory", 60)
    await _upload(lk, snap, restorecheck.snapshot_path(scratch))
    try:
        await one_off(lk, image, restorecheck.restore_argv(image), ctx.options.timeout,
                      mount=scratch)
    except NodeError as exc:
        raise VerifyFailed(f"it does not restore: {exc}", DISK) from None
    ctx.emit(node, PHASE, EventKind.PROGRESS, f"restored with {image}")
    await _shell(lk, restorecheck.server_argv(image, run_id),
                 "starting the throwaway etcd (ctr run -d)", 120)
    keys = await _first_read(lk, run_id, scratch)
    result = await certain_read(
        lambda: lk.shell(restorecheck.nodes_argv(run_id, _exec_id(run_id)),
                         timeout=10 + 30 + EXEC_SLACK),
        what="reading the Node keys of the throwaway etcd")
    if result.exit_status != 0:
        raise VerifyFailed(f"the restored etcd did not answer for its Node keys: {_said(result)}")
    try:
        nodes = restorecheck.parse_node_names(result.stdout.decode(errors="replace"))
    except CheckError as exc:
        raise VerifyFailed(str(exc)) from None
    if keys <= 0:
        raise VerifyFailed("the restored etcd holds no keys")
    if not nodes:
        raise VerifyFailed(f"the restored etcd holds no Node ({restorecheck.NODES_PREFIX} is "
                           "empty): not a snapshot of a Kubernetes cluster's etcd")
    return RestoreCheck(node, True, keys, nodes)


def _exec_id(run_id: str) -> str:
    return f"{restorecheck.container_id(run_id)}-{uuid.uuid4().hex[:8]}"


async def _etcd_image(lk: LinuxKitNode) -> str:
    """The image the node runs etcd from (kubeadm's manifest): its binaries restore and serve."""
    where = f"{paths.MANIFESTS}/etcd.yaml"
    text = await lk.read_file(where)
    if text is None:
        raise VerifyFailed(f"{lk.name} has no {where}: no etcd image to restore with")
    try:
        return etcdrestore.parse_manifest(text.decode(errors="replace")).image
    except etcdrestore.RestoreRefused as exc:
        raise VerifyFailed(f"{where}: {exc}") from None


async def _shell(lk: LinuxKitNode, argv: list[str], what: str, timeout: float) -> str:
    result = await lk.shell(argv, timeout=timeout)
    if result.exit_status != 0:
        raise VerifyFailed(f"{what} on {lk.name} failed: {_said(result)}")
    return result.stdout.decode(errors="replace")


def _said(result: CommandResult) -> str:
    return kubeadm.failure_summary((result.stderr + b"\n" + result.stdout).decode(errors="replace"))


async def _upload(lk: LinuxKitNode, snap: SnapshotResult, target: str) -> None:
    """The kept file, as it is on this machine now, onto the node; both ends hashed."""
    try:
        data = snap.path.read_bytes()
    except OSError as exc:
        raise VerifyFailed(f"cannot read {snap.path} for the upload: {exc.strerror or exc}") \
            from None
    if hashlib.sha256(data).hexdigest() != snap.sha256:
        raise VerifyFailed(f"{snap.path} changed since it was written (its SHA-256 differs)")
    try:
        await lk.write_file(target, data, 0o600)
        size, sha256 = await lk.file_digest(target)
    except NodeCommandError as exc:
        raise VerifyFailed(f"the upload to {lk.name} failed: {exc}", DISK) from None
    if (size, sha256) != (len(data), snap.sha256):
        raise VerifyFailed(f"the copy on {lk.name} differs from {snap.path} ({size} bytes, "
                           f"SHA-256 {sha256})", DISK)


async def _first_read(lk: LinuxKitNode, run_id: str, scratch: str) -> int:
    """The key count, which is also the wait: each read's dial blocks until the throwaway etcd
    serves (``ATTEMPT_DIAL``); between two that found it not serving, its task is looked at, so
    an etcd that died at start fails the check at once, with its last log lines. Bounded by
    ``START_TIMEOUT``; pauses only when a read failed without waiting its dial out."""
    deadline = time.monotonic() + restorecheck.START_TIMEOUT
    pauses = backoff()
    while True:
        began = time.monotonic()
        result = await lk.shell(restorecheck.count_argv(run_id, _exec_id(run_id)),
                                timeout=restorecheck.ATTEMPT_DIAL + 30 + EXEC_SLACK)
        if result.exit_status == 0 and result.stdout.strip():
            try:
                return restorecheck.parse_count(result.stdout.decode(errors="replace"))
            except CheckError as exc:
                raise VerifyFailed(str(exc)) from None
        listed = await lk.shell(restorecheck.tasks_argv(), timeout=60)
        state = restorecheck.task_state(listed.stdout.decode(errors="replace"), run_id)
        if state in (TaskState.STOPPED, TaskState.MISSING):
            raise await _failed(lk, "the throwaway etcd exited before it answered"
                                + (f" ({_said(result)})" if result.exit_status else ""), scratch)
        if time.monotonic() > deadline:
            raise await _failed(lk, f"the restored etcd did not answer within "
                                f"{restorecheck.START_TIMEOUT:.0f}s: {_said(result)}", scratch)
        if time.monotonic() - began < restorecheck.ATTEMPT_DIAL / 2:
            await asyncio.sleep(next(pauses))


async def _failed(lk: LinuxKitNode, why: str, scratch: str) -> VerifyFailed:
    """The failure with the throwaway etcd's last log lines (its own words say why)."""
    tail: list[str] = []
    with contextlib.suppress(NodeCommandError):
        text = await lk.read_file(restorecheck.log_path(scratch))
        if text:
            tail = restorecheck.log_excerpt(text.decode(errors="replace"), LOG_LINES)
    return VerifyFailed(why, SERVE, tail)


async def _clean(lk: LinuxKitNode, run_id: str) -> str:
    """Remove the throwaway etcd and the scratch directory, even while the run is being
    cancelled; '' when nothing is left, else what is left and how to remove it by hand."""
    try:
        result = await asyncio.shield(lk.shell(restorecheck.cleanup_argv(run_id), timeout=120))
    except Exception as exc:  # a lost connection: nothing is known to be removed
        return (f"could not remove the throwaway etcd and its directory ({exc}); on "
                f"{lk.name} run {restorecheck.cleanup_by_hand(run_id)}")
    if result.exit_status != 0:
        return (f"{_said(result)}; on {lk.name} run {restorecheck.cleanup_by_hand(run_id)}")
    return ""
