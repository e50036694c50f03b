"""reboot and wait-ssh: boot a node into the image its boot server serves now, and get it back.

The reboot leaves a mark in the node's /run (a tmpfs): a node that answers SSH without the
mark has booted since. A LinuxKit node makes new host keys at every boot, so the first dial
after the reboot meets a key known_hosts does not know: ``ssh.hostKeyAfterReboot`` says whether
the run stops there (``refuse``, the default) or trusts that key and replaces the old entry
(``accept``). Once back, the node's facts are read again: it must run the target kubeadm.

Before the reboot the run writes its record on the Node (``rebootrecord.py``: the run and the
boot ID it saw), so that the next run still knows the reboot was the tool's own when this one
stops before the node comes back; the new key is accepted only once the node's boot ID has
changed, read over a connection pinned to the presented key and before known_hosts is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time

from pydantic import BaseModel, ConfigDict

from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, Duration, Step, StepPlan, do
from k8slk_ops.kubeadm import failure_summary
from k8slk_ops.kubeadm.errors import VersionError
from k8slk_ops.kubeadm.versions import KubeVersion
from k8slk_ops.node.linuxkit import LinuxKitNode, NodeCommandError
from k8slk_ops.node.rebootrecord import RebootRecord, annotate_args
from k8slk_ops.output.events import EventKind
from k8slk_ops.ssh import HostKeyMismatch, SSHError
from k8slk_ops.ssh.hostkeys import replace_host_key
from k8slk_ops.steps.upgrade import not_due, target_version

REBOOT_MARK = "/run/k8slk-ops-rebooting"  # tmpfs: gone once the node has booted again
REBOOT_COMMAND_TIMEOUT = 60.0


def booted_target(ctx: PlanContext, node: str) -> bool:
    """The node already runs the target image (a run that stopped after its reboot)."""
    facts = ctx.facts.get(node)
    if facts is None or not facts.kubeadm_version:
        return False
    try:
        return KubeVersion.parse(facts.kubeadm_version) == target_version(ctx)
    except VersionError:
        return False


def reboot_due(ctx: PlanContext, node: str) -> StepPlan | None:
    skipped = not_due(ctx, node)
    if skipped is not None:
        return skipped
    if booted_target(ctx, node):
        return StepPlan(skip_reason=f"already booted the {target_version(ctx)} image")
    return None


class RebootOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reboot(Step[RebootOptions]):
    """``cluster.reboot.command`` in the node's shell, or ``cluster.reboot.local`` on this
    machine with ``{name}`` and ``{address}`` filled in (shell-quoted)."""

    name = "reboot"
    disrupts = True
    phase = "reboot"

    def plan(self, options: RebootOptions, ctx: PlanContext, node: str) -> StepPlan:
        skipped = reboot_due(ctx, node)
        if skipped is not None:
            return skipped
        spec = ctx.inventory.cluster.reboot
        if spec.local:
            return do(Action(f"run locally: {local_command(spec.local, ctx, node)}"))
        return do(Action(f"run on the node: {spec.command}"))

    async def apply(self, options: RebootOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        await record_reboot(ctx, lk)
        # Never empty: an empty write has no stdin to end, and `cat >` would wait for it.
        await lk.write_file(REBOOT_MARK, f"{ctx.options.run_id or 'rebooting'}\n".encode(), 0o644)
        spec = ctx.inventory.cluster.reboot
        ctx.state.rebooted.add(node)
        if spec.local:
            await run_local(local_command(spec.local, ctx.plan, node))
            return True
        try:
            result = await lk.shell(["sh", "-c", spec.command], timeout=REBOOT_COMMAND_TIMEOUT)
        except SSHError:
            return True  # the reboot took the connection with it
        if result.exit_status not in (0, -1):
            text = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise NodeError(f"{spec.command!r} failed: {text[-300:]}", phase=self.phase)
        return True


async def record_reboot(ctx: RunContext, lk: LinuxKitNode) -> None:
    """The record on the Node, before the reboot: no record, no reboot (a run that stopped
    while the node was down could not tell its new host key from an impostor's)."""
    try:
        boot_id = await lk.boot_id()
    except NodeCommandError as exc:
        raise NodeError(f"{exc}: the reboot is not recorded, so it is not made",
                        phase="reboot") from None
    record = RebootRecord(ctx.options.run_id or "unknown", boot_id)
    primary = await ctx.node(ctx.plan.cluster.primary)
    result = await primary.kubectl(*annotate_args(lk.name, record))
    if result.exit_status != 0:
        why = failure_summary(result.stderr or result.stdout)
        raise NodeError(
            f"recording the reboot on the Node failed ({why}); the node was not rebooted. "
            "Check the API from the primary, then run upgrade again",
            phase="reboot",
        )
    ctx.state.boot_ids[lk.name] = boot_id


def local_command(template: str, ctx: PlanContext, node: str) -> str:
    address = ctx.inventory.node(node).address
    return template.format(name=shlex.quote(node), address=shlex.quote(address))


async def run_local(command: str) -> None:
    """Run the local reboot command in a process group of its own: at its timeout, or when
    the run is stopped, the whole group is ended (``ipmitool`` and whatever else the shell
    started), not just the shell, which would leave them running after the tool exits."""
    proc = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), REBOOT_COMMAND_TIMEOUT)
    except TimeoutError:
        await _end_group(proc)
        raise NodeError(
            f"{command!r} did not end within {REBOOT_COMMAND_TIMEOUT:.0f} s and was ended with "
            "what it started: check the power controller, power the node on by hand if it is "
            "off, and run the command again",
            phase="reboot",
        ) from None
    except asyncio.CancelledError:
        await asyncio.shield(_end_group(proc))
        raise
    if proc.returncode != 0:
        text = out.decode(errors="replace").strip()[-300:]
        raise NodeError(f"{command!r} exited {proc.returncode}: {text}", phase="reboot")


async def _end_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the command's process group (its session, started for it) and reap the shell."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


class WaitSSHOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: Duration = 600.0


class WaitSSH(Step[WaitSSHOptions]):
    """Waits until the node has booted again and answers SSH, then checks that it runs the
    target kubeadm (else the boot server still serves the old image)."""

    name = "wait-ssh"
    phase = "boot"
    changes = False

    def plan(self, options: WaitSSHOptions, ctx: PlanContext, node: str) -> StepPlan:
        skipped = reboot_due(ctx, node)
        if skipped is not None:
            return skipped
        return do(Action("wait until the node is back over SSH, running the target kubeadm"))

    async def apply(self, options: WaitSSHOptions, ctx: RunContext, node: str) -> bool:
        deadline = time.monotonic() + options.timeout
        await booted(ctx, node, deadline)
        # The cluster lock is a Lease in the cluster's store: the primary's reboot keeps it.
        fresh = await ctx.refresh([node])
        facts = fresh.get(node)
        if facts is None:
            raise NodeError("the node answered, then its facts could not be read", phase=self.phase)
        target = target_version(ctx.plan)
        if facts.kubeadm_version != str(target):
            raise NodeError(
                f"the node came back with {facts.kubeadm_version or 'no kubeadm'}, not {target}: "
                "is the new image served?",
                phase=self.phase,
            )
        return False


async def booted(ctx: RunContext, node: str, deadline: float) -> LinuxKitNode:
    """Dial until the node answers without the reboot mark; the host key decided by policy."""
    pause = 0.5
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            lk = await ctx.redial(node)
            if await lk.read_file(REBOOT_MARK) is None:
                return lk
            last = "it has not gone down yet"
        except HostKeyMismatch as exc:
            return await new_host_key(ctx, node, exc)
        except (SSHError, OSError) as exc:
            last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 5.0)
    raise NodeError(f"the node did not come back over SSH: {last}", phase="boot")


async def new_host_key(ctx: RunContext, node: str, exc: HostKeyMismatch) -> LinuxKitNode:
    """The node presents a new host key after the reboot this run made. Under ``accept`` the
    node is asked, over a connection pinned to that key, whether it really booted (no mark,
    a new boot ID) before known_hosts is rewritten; under ``refuse`` it is never asked."""
    settings = ctx.inventory.ssh_for(node)
    if settings.host_key_after_reboot != "accept" or node not in ctx.state.rebooted:
        raise NodeError(
            f"{exc}\nThe node made new host keys at its reboot; ssh.hostKeyAfterReboot is "
            "refuse. Check the new key, accept it as above, then run upgrade again",
            phase="boot",
            next_step=exc.next_step(ctx.again or ctx.rerun(node).join),
        ) from None
    presented = str(getattr(exc, "presented", "") or "")
    lk = await ctx.redial(node, host_key_policy="pinned", host_key_fingerprint=presented)
    before = ctx.state.boot_ids.get(node, "")
    try:
        now = await lk.boot_id()
        marked = await lk.read_file(REBOOT_MARK) is not None
    except NodeCommandError as exc2:
        raise NodeError(f"a new host key, and {exc2}: known_hosts left as it was",
                        phase="boot") from None
    if marked or not before or now == before:
        raise NodeError(
            f"a new host key ({presented}) but the node did not reboot (boot ID {now}, "
            f"{before or 'none'} before the reboot): known_hosts left as it was. Someone may be "
            "intercepting the connection: check the key on the node's console",
            phase="boot",
        )
    kind, blob = await lk.conn.server_host_key()
    spec = ctx.inventory.node(node)
    old = replace_host_key(settings.known_hosts, spec.address, settings.port, kind, blob)
    ctx.emit(
        node, "boot", EventKind.WARN,
        f"new host key after the reboot accepted (hostKeyAfterReboot: accept): "
        f"{', '.join(old) or 'none'} -> {presented}; known_hosts updated",
    )
    return lk
