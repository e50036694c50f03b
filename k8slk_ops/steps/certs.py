"""certs-check and certs-renew: kubeadm's certificates on each control plane.

Both read ``kubeadm certs check-expiration`` (``kubeadm alpha certs`` before v1.20) through
:func:`read_certs`, the one reader ``status`` uses too, and record the rows in
``RunState.certs`` and the node's report row (the earliest certificate, the CA).

``certs-renew`` renews with ``kubeadm certs renew <name>`` what expires within the run's
``cert_days`` (every certificate for None), then restarts the control-plane static pods the way
kubeadm documents it: the manifests leave ``/etc/kubernetes/manifests``, the kubelet stops the
pods (the API stops answering and crictl lists none of their containers), the manifests come
back, and the step waits until the API serves the certificate now on disk. The CA is never
renewed; its expiry is reported loudly. With ``restart: false`` the restart is left to a later
``certs-restart`` stage: the built-in playbook renews every control plane first, since etcd's
members refuse each other's expired peer certificates until all have new ones.

When no API answered at the start (``ClusterFacts.through_ssh``: certificates that expired stop
the API), kubeadm cannot read the cluster's configuration from the ``kubeadm-config``
ConfigMap and would fall back to its defaults: it is handed the configuration the init
rendered from the inventory instead (``--config``, a 0600 file in the node's tmpfs, removed
after use), so that nothing but the certificates changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from cryptography import x509
from pydantic import BaseModel, ConfigDict

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.kubeadm import CertExpiry, NodeCerts
from k8slk_ops.node import paths
from k8slk_ops.node.linuxkit import LinuxKitNode
from k8slk_ops.node.uncut import uncut
from k8slk_ops.output.events import EventKind
from k8slk_ops.output.rows import CertsRow, ServedCertificate
from k8slk_ops.ssh import CommandResult
from k8slk_ops.steps import render

# Looks at the API while it restarts: soon at first, then less often (the API takes seconds to
# stop and, with etcd to reach, tens of seconds to come back); the run's --timeout bounds it.
POLL_FIRST = 0.5
POLL_MAX = 5.0
# Prints the certificate the API serves at ADDRESS PORT; exits 3 when nothing answers there.
# Run with the kubelet container's python3 (the SSH shell has none).
SERVED_CERT = """
import socket, ssl, sys
socket.setdefaulttimeout(5)
try:
    print(ssl.get_server_certificate((sys.argv[1], int(sys.argv[2]))))
except OSError as exc:
    print("down:", exc)
    sys.exit(3)
"""
# The containers of kubeadm's control-plane static pods (crictl's --name is a regular expression).
CONTROL_PLANE_PODS = "^(kube-apiserver|kube-controller-manager|kube-scheduler|etcd)$"
_PARK = 'set -e; mkdir -p "$2"; for f in "$1"/*.yaml; do [ -e "$f" ] && mv "$f" "$2"/; done; true'
_UNPARK = ('set -e; [ -d "$2" ] || exit 0; '
           'for f in "$2"/*.yaml; do [ -e "$f" ] && mv "$f" "$1"/ && echo "$f"; done; rmdir "$2"')


def backoff() -> Iterator[float]:
    """The pauses between looks: doubling from POLL_FIRST up to POLL_MAX."""
    delay = POLL_FIRST
    while True:
        yield delay
        delay = min(delay * 2, POLL_MAX)


async def read_certs(ctx: RunContext, node: str, config: tuple[str, ...] = ()) -> NodeCerts:
    """The node's certificates, as kubeadm reports them; recorded in ``RunState.certs``.
    ``config``: the ``--config`` argument when the cluster's own configuration is handed over."""
    lk = await ctx.node(node)
    sub = kubeadm.certs_command(ctx.facts(node).kubeadm_version or "v1.31.0")
    result = await lk.kubeadm(*sub, "check-expiration", *config, timeout=60)
    if result.exit_status != 0:
        raise NodeError(
            f"kubeadm {' '.join(sub)} check-expiration failed: "
            f"{kubeadm.failure_summary(_output(result))}",
            phase="certs", log_tail=kubeadm.failure_tail(_output(result)),
        )
    certs = NodeCerts.parse(result.stdout.decode(errors="replace"))
    if not certs.rows:
        raise NodeError("kubeadm check-expiration printed no certificates", phase="certs")
    ctx.state.certs[node] = certs
    return certs


async def kubelet_cert_expiry(ctx: RunContext, node: str) -> datetime | None:
    """When the node's kubelet client certificate expires (recorded in
    ``RunState.kubelet_certs``); None when it cannot be read. openssl reads it inside the kubelet
    container: the file holds the private key too, which never leaves the node."""
    lk = await ctx.node(node)
    result = await lk.kubelet_exec(
        ["openssl", "x509", "-noout", "-enddate", "-in", paths.CONTAINER_KUBELET_CLIENT_CERT],
        timeout=30,
    )
    if result.exit_status != 0:
        return None
    expires = kubeadm.parse_openssl_enddate(result.stdout.decode(errors="replace"))
    if expires is not None:
        ctx.state.kubelet_certs[node] = expires
    return expires


def _days(r: CertExpiry, now: datetime) -> str:
    return "missing" if r.expires is None else f"{kubeadm.days_left(r.expires, now)}d"


def _control_plane_plan(ctx: PlanContext, node: str, what: str) -> StepPlan:
    if ctx.spec(node).role != "control-plane":
        return skip("not a control plane")
    if not ctx.facts[node].admin_conf:
        return skip("not initialised (no admin.conf)")
    return do(Action(what))


class CertsCheck(Step[NoOptions]):
    """Read the certificates; fail the node when one expires within ``cert_days``."""

    name = "certs-check"
    phase = "certs"
    changes = False
    read_only = True

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return _control_plane_plan(ctx, node, "kubeadm certs check-expiration")

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        now = datetime.now(UTC)
        certs = await read_certs(ctx, node)
        ctx.state.certs_rows[node] = CertsRow.of(certs, now)
        days = ctx.options.cert_days
        limit = 0 if days is None else days
        due = [r for r in certs.rows if r.missing or r.expires_within(limit, now)]
        if due:
            listed = ", ".join(f"{r.name} ({_days(r, now)})" for r in due)
            raise NodeError(f"{len(due)} certificate(s) expire within {limit} days: {listed}",
                            phase=self.phase)
        earliest = certs.earliest
        if earliest is not None:
            ctx.emit(node, self.phase, EventKind.PROGRESS,
                     f"earliest: {earliest.name} in {_days(earliest, now)}")
        return False


class RenewOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # False: renew the files only and leave the restart to a later ``certs-restart`` stage.
    # When every control plane's certificates have expired, etcd's members refuse each other's
    # peer certificates: no control plane's API can come back before all have renewed theirs.
    restart: bool = True


class CertsRenew(Step[RenewOptions]):
    """Renew what expires within ``cert_days``, restart the static pods, wait for the API."""

    name = "certs-renew"
    phase = "renew"

    def plan(self, options: RenewOptions, ctx: PlanContext, node: str) -> StepPlan:
        days = ctx.options.cert_days
        if days == 0:
            return skip("--within-days 0: nothing to renew")
        which = "every certificate" if days is None else f"certificates expiring within {days} days"
        then = (", restart the control-plane static pods, wait until the API serves the new "
                "certificate") if options.restart else " (the restart comes later)"
        return _control_plane_plan(ctx, node, f"kubeadm certs renew {which}{then}")

    async def apply(self, options: RenewOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        back = await _shell(lk, _UNPARK, "moving back manifests an earlier run left parked")
        if back:
            ctx.emit(node, self.phase, EventKind.WARN,
                     f"an earlier run left the static pod manifests out; moved back: {back}")
        async with _own_config(ctx, node, lk) as config:
            return await self._renew(ctx, node, lk, config, restart=options.restart)

    async def _renew(
        self, ctx: RunContext, node: str, lk: LinuxKitNode, config: tuple[str, ...], *,
        restart: bool,
    ) -> bool:
        """True once the due certificates are renewed, False when none was due."""
        now = datetime.now(UTC)
        certs = await read_certs(ctx, node, config)
        _warn_ca(ctx, node, certs, now)
        due = certs.due(ctx.options.cert_days, now)
        row = CertsRow.of(certs, now)
        row.renewed = list(due)
        ctx.state.certs_rows[node] = row
        if not due:
            ctx.emit(node, self.phase, EventKind.PROGRESS, "nothing to renew")
            return False
        sub = kubeadm.certs_command(ctx.facts(node).kubeadm_version or "v1.31.0")
        for name in due:
            ctx.emit(node, self.phase, EventKind.PROGRESS, f"renewing {name}")
            with uncut():  # each renewal ends whole, even when a stop request arrives
                result = await lk.kubeadm(*sub, "renew", name, *config, timeout=120)
            if result.exit_status != 0:
                raise NodeError(
                    f"kubeadm certs renew {name} failed: "
                    f"{kubeadm.failure_summary(_output(result))}",
                    phase=self.phase, log_tail=kubeadm.failure_tail(_output(result)),
                )
        if restart:
            await restart_control_plane(ctx, node, lk)
        else:
            ctx.state.certs_renewed.add(node)
        after = await read_certs(ctx, node, config)
        row.read(after, datetime.now(UTC))
        if "admin.conf" in due:
            await _refresh_kubeconfig(ctx, node)
        return True


@asynccontextmanager
async def _own_config(ctx: RunContext, node: str, lk: LinuxKitNode) -> AsyncIterator[tuple[str, ...]]:
    """``("--config", FILE)`` with the cluster's own configuration when the run goes through
    SSH alone (kubeadm cannot read it from the silent API), else nothing; the file (which
    names the cluster's addresses, no secret) is removed whatever happens."""
    if not ctx.plan.cluster.through_ssh:
        yield ()
        return
    text = render.cluster_config(ctx.plan, node)
    await lk.write_file(paths.CERTS_CONFIG, text.encode(), 0o600)
    ctx.emit(node, "renew", EventKind.PROGRESS,
             "no API to read the kubeadm-config ConfigMap from: kubeadm is given the cluster's "
             "configuration rendered from the inventory")
    try:
        yield ("--config", paths.CONTAINER_CERTS_CONFIG)
    finally:
        await lk.remove_file(paths.CERTS_CONFIG)


class CertsRestart(Step[NoOptions]):
    """After ``certs-renew {restart: false}`` on every control plane: restart the static pods of
    this one and wait until its API serves the certificate on disk, when this run renewed its
    certificates or its API serves another certificate than the one on disk (an earlier run
    renewed and did not get to restart)."""

    name = "certs-restart"
    phase = "restart"

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        if ctx.options.cert_days == 0:
            return skip("--within-days 0: nothing renewed")
        return _control_plane_plan(
            ctx, node,
            "restart the control-plane static pods if certificates were renewed (or the API "
            "serves another certificate than the one on disk), wait until the API serves it",
        )

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        if node not in ctx.state.certs_renewed:
            where = await _api_address(lk)
            served = await _served(lk, where)
            on_disk = await lk.read_file(paths.APISERVER_CERT)
            if served is None or on_disk is None or _same(
                    served, x509.load_pem_x509_certificate(on_disk)):
                ctx.emit(node, self.phase, EventKind.PROGRESS, "nothing to restart")
                return False
            ctx.emit(node, self.phase, EventKind.WARN, "the API serves another certificate "
                     "than the one on disk (renewed earlier, never loaded): restarting")
        await restart_control_plane(ctx, node, lk)
        ctx.state.certs_renewed.discard(node)
        return True


def _same(a: x509.Certificate, b: x509.Certificate) -> bool:
    return (a.serial_number, a.not_valid_after_utc) == (b.serial_number, b.not_valid_after_utc)


async def _api_address(lk: LinuxKitNode) -> tuple[str, int]:
    """Where the node's API serves, from its kube-apiserver manifest."""
    manifest = await lk.read_file(f"{paths.MANIFESTS}/kube-apiserver.yaml")
    where = kubeadm.apiserver_address(manifest.decode(errors="replace")) if manifest else None
    if where is None:
        raise NodeError("cannot tell where the API serves: no --advertise-address in "
                        f"{paths.MANIFESTS}/kube-apiserver.yaml", phase="restart")
    return where


def _warn_ca(ctx: RunContext, node: str, certs: NodeCerts, now: datetime) -> None:
    """The CAs are never renewed here: say when they expire, as a warning within a year."""
    dated = [ca for ca in certs.authorities if ca.expires is not None]
    if not dated:
        return
    soonest = min(kubeadm.days_left(ca.expires, now) for ca in dated if ca.expires)
    listed = ", ".join(f"{ca.name} {ca.expires:%Y-%m-%d}" for ca in dated)
    kind = EventKind.WARN if soonest <= max(ctx.options.cert_days or 0, 365) else EventKind.PROGRESS
    ctx.emit(node, "renew", kind,
             f"certificate authorities expire {listed} ({soonest} days left at the soonest); "
             "k8slk-ops never renews them")


async def restart_control_plane(ctx: RunContext, node: str, lk: LinuxKitNode) -> None:
    """Move the static pod manifests out, wait for the API to stop, move them back, wait until
    it serves the certificate on disk. The manifests go back whatever happens."""
    where = await _api_address(lk)
    deadline = time.monotonic() + ctx.options.timeout
    try:
        await stop_static_pods(ctx, node, lk, paths.PARKED_MANIFESTS, where, deadline)
    finally:
        await _shell(lk, _UNPARK, "moving the static pod manifests back")
    ctx.emit(node, "restart", EventKind.PROGRESS, "manifests back; waiting for the API")
    wanted = await lk.read_file(paths.APISERVER_CERT)
    if wanted is None:
        raise NodeError(f"{paths.APISERVER_CERT} is missing", phase="restart")
    expected = x509.load_pem_x509_certificate(wanted)
    pauses = backoff()
    while True:
        served = await _served(lk, where)
        if served is not None and _same(served, expected):
            break
        _check_deadline(deadline, ctx, "the API to serve the new certificate")
        await asyncio.sleep(next(pauses))
    row = ctx.state.certs_rows.get(node)
    if row is not None:
        row.served = ServedCertificate(format(expected.serial_number, "x"),
                                       expected.not_valid_after_utc)
    ctx.emit(node, "restart", EventKind.PROGRESS,
             f"the API serves the new certificate (serial {expected.serial_number:x})")


async def stop_static_pods(
    ctx: RunContext, node: str, lk: LinuxKitNode, parked: str,
    where: tuple[str, int] | None, deadline: float,
) -> None:
    """Move the static pod manifests into ``parked`` and wait until the kubelet has stopped
    their containers and (``where``) the API no longer answers. Moving them back is the
    caller's: a restart does it at once, an etcd restore once the data is in place."""
    ctx.emit(node, "restart", EventKind.PROGRESS, "moving the static pod manifests out")
    await _shell(lk, _PARK, "parking the static pod manifests", parked)
    pauses = backoff()
    # An API that was silent already (expired certificates) says nothing about the pods:
    # the kubelet must be seen to have stopped them, or they are never started anew.
    while (where is not None and await _served(lk, where) is not None) or await _pods_running(lk):
        _check_deadline(deadline, ctx, "the control-plane static pods to stop")
        await asyncio.sleep(next(pauses))


async def start_static_pods(lk: LinuxKitNode, parked: str) -> str:
    """Move the manifests parked in ``parked`` back (none there: nothing to do); their names."""
    return await _shell(lk, _UNPARK, "moving the static pod manifests back", parked)


async def _shell(
    lk: LinuxKitNode, script: str, what: str, parked: str = paths.PARKED_MANIFESTS
) -> str:
    """One of the manifest moves; what it printed (the manifests moved back), on one line."""
    result = await lk.shell(["sh", "-c", script, "sh", paths.MANIFESTS, parked])
    if result.exit_status != 0:
        raise NodeError(f"{what} failed: {kubeadm.failure_summary(_output(result))}",
                        phase="restart")
    return ", ".join(line.rsplit("/", 1)[-1] for line in result.lines() if line.strip())


async def _pods_running(lk: LinuxKitNode) -> bool:
    """Whether a container of the control-plane static pods still runs (``crictl ps``)."""
    result = await lk.kubelet_exec(["crictl", "ps", "-q", "--name", CONTROL_PLANE_PODS],
                                   timeout=30)
    if result.exit_status != 0:
        raise NodeError(f"crictl ps failed on {lk.name}: {kubeadm.failure_summary(_output(result))}"
                        "; the static pod manifests are moved back; see the kubelet's log",
                        phase="restart")
    return bool(result.stdout.strip())


async def _served(lk: LinuxKitNode, where: tuple[str, int]) -> x509.Certificate | None:
    """The certificate the API serves now, or None while nothing answers."""
    result = await lk.kubelet_exec(["python3", "-c", SERVED_CERT, where[0], str(where[1])],
                                   timeout=30)
    if result.exit_status != 0:
        return None
    try:
        return x509.load_pem_x509_certificate(result.stdout)
    except ValueError:
        return None


def _output(result: CommandResult) -> str:
    return (result.stdout + b"\n" + result.stderr).decode(errors="replace")


def _check_deadline(deadline: float, ctx: RunContext, what: str) -> None:
    if time.monotonic() > deadline:
        raise NodeError(f"timed out after {ctx.options.timeout:.0f}s waiting for {what}",
                        phase="restart")


async def _refresh_kubeconfig(ctx: RunContext, node: str) -> None:
    """admin.conf has a new client certificate: the local kubeconfig taken from it is rewritten
    (its other contexts kept), when there is one."""
    from k8slk_ops.steps.kubeconfig import FetchKubeconfig, KubeconfigOptions, kubeconfig_path

    if kubeconfig_path(ctx.plan).exists():
        await FetchKubeconfig().apply(KubeconfigOptions(merge=True), ctx, node)
