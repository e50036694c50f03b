"""mint-credentials and revoke-credentials: the join credentials of one run.

On the primary: a dedicated bootstrap token (short TTL, described with the run's ID), the CA
pin computed from the cluster CA certificate (and checked against what init printed), and, when
a control plane will join, a fresh certificate key from ``init phase upload-certs``. They live in
the run's memory only and are registered as secrets. The tokens are deleted when the run ends,
whether it succeeded or not.
"""

from __future__ import annotations

import secrets
import time

from pydantic import BaseModel, ConfigDict

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import JoinCredentials, PlanContext, RunContext
from k8slk_ops.engine.step import Action, Duration, NoOptions, Step, StepPlan, do, skip
from k8slk_ops.node import paths
from k8slk_ops.node.linuxkit import LinuxKitNode, NodeCommandError
from k8slk_ops.node.uncut import uncut
from k8slk_ops.output.events import EventKind
from k8slk_ops.steps.init import ADMIN_API, new_token

PHASE = "credentials"


class MintOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl: Duration | None = None  # seconds; a run's join token always expires


def joining_nodes(ctx: PlanContext) -> list[str]:
    """Nodes of the selection that are not in the cluster and will need to join."""
    selected = set(ctx.options.selected) or {n.name for n in ctx.inventory.nodes}
    return [
        n.name
        for n in ctx.inventory.nodes
        if n.name in selected
        and n.name != ctx.cluster.primary
        and not ctx.cluster.is_member(n.name)
        and n.name in ctx.facts
    ]


class MintCredentials(Step[MintOptions]):
    name = "mint-credentials"
    phase = PHASE
    # Beside init in bootstrap: the token and the certificate key need only its API.
    awaits = ADMIN_API
    # Short-lived tokens, revoked when the run ends: the primary itself is left as it was.
    changes = False

    def plan(self, options: MintOptions, ctx: PlanContext, node: str) -> StepPlan:
        joining = joining_nodes(ctx)
        if not joining:
            return skip("no node needs to join")
        ttl = options.ttl or ctx.options.token_ttl
        actions = [
            Action(
                f"kubeadm token create --ttl {kubeadm.format_duration(ttl)} "
                f"(for {len(joining)} joining node(s))"
            ),
            Action(f"compute the CA pin from {paths.CA_CERT}"),
        ]
        if any(ctx.spec(n).role == "control-plane" for n in joining):
            actions.append(Action("kubeadm init phase upload-certs --upload-certs"))
        return do(*actions)

    async def apply(self, options: MintOptions, ctx: RunContext, node: str) -> bool:
        ttl = options.ttl or ctx.options.token_ttl
        async with ctx.state.credentials_lock:
            joining = joining_nodes(ctx.plan)
            upload = any(ctx.plan.spec(n).role == "control-plane" for n in joining)
            ctx.state.credentials = await _mint(ctx, node, ttl, upload=upload)
        return False


async def fresh_credentials(ctx: RunContext, *, control_plane: bool) -> JoinCredentials:
    """This run's credentials, minted again first if they would expire during a join.

    A bootstrap of many nodes can outlast a token: waves of workers, each allowed
    ``--timeout`` seconds. Rather than hand a node a token that dies during its 5 s settle
    and discovery (its kubeadm then fails for good: the image never runs it twice), the
    primary mints a new token (and, for a control plane, uploads the certificates again)
    once less than ``refresh_margin`` of their life is left. Concurrent joins wait for one
    refresh and share its result.
    """
    async with ctx.state.credentials_lock:
        creds = ctx.state.credentials
        if creds is None:
            raise NodeError("no join credentials were minted in this run", phase="join")
        # Minted while init was finishing, before it printed its pin: checked now.
        _check_pin(creds.ca_cert_hash, ctx.state.init_ca_hashes)
        now = time.monotonic()
        margin = refresh_margin(creds.ttl)
        stale_token = creds.token_expires - now < margin
        stale_key = control_plane and creds.key_expires - now < refresh_margin(CERTS_TTL)
        if stale_token or stale_key:
            ctx.state.credentials = creds = await _mint(
                ctx, creds.primary, creds.ttl, upload=stale_key, previous=creds
            )
        return creds


# kubeadm deletes the uploaded certificates (the kubeadm-certs Secret) after two hours.
CERTS_TTL = 7200.0


def refresh_margin(ttl: float | str) -> float:
    """How much life left makes credentials too old to hand out: 2 min, at most half the TTL
    (seconds, or a Go duration)."""
    seconds = kubeadm.parse_duration(ttl) if isinstance(ttl, str) else ttl
    return min(120.0, seconds / 2) if seconds > 0 else 0.0


async def mint(ctx: RunContext, node: str, ttl: float, *, upload: bool) -> JoinCredentials:
    """New credentials on ``node`` for the joins of a run whose own step decides who joins
    (``etcd restore --pki``: the control planes of a cluster made again)."""
    return await _mint(ctx, node, ttl, upload=upload)


async def _mint(
    ctx: RunContext,
    node: str,
    ttl: float,
    *,
    upload: bool,
    previous: JoinCredentials | None = None,
) -> JoinCredentials:
    """A token (and with ``upload`` a certificate key) on ``node``; ``previous`` is a refresh."""
    lk = await ctx.node(node)
    description = f"k8slk-ops run {ctx.options.run_id}"
    started = time.monotonic()
    shown_ttl = kubeadm.format_duration(ttl)
    token = new_token()
    ctx.add_secret(token)
    token_id = token.split(".")[0]
    with uncut():  # a token created is a token recorded, so that the run deletes it
        await _create_token(lk, token, shown_ttl, description)
        ctx.state.tokens.append(token_id)
    token_expires = started + ttl if ttl > 0 else float("inf")

    pin = previous.ca_cert_hash if previous is not None else await _ca_pin(ctx, lk)
    cert_key = previous.certificate_key if previous is not None else None
    key_expires = previous.key_expires if previous is not None else float("inf")
    if upload:
        cert_key = await _upload_certs(ctx, lk)
        key_expires = started + CERTS_TTL
    if previous is None:
        message = f"token {token_id} minted (ttl {shown_ttl}); CA pin {pin}"
    else:
        message = (
            f"token {previous.token_id} is close to expiry: minted token {token_id} "
            f"(ttl {shown_ttl})"
            + ("; certificates uploaded again" if upload else "")
        )
    ctx.emit(node, PHASE, EventKind.PROGRESS, message)
    return JoinCredentials(
        endpoint=ctx.inventory.endpoint,
        token=token,
        ca_cert_hash=pin,
        certificate_key=cert_key,
        token_id=token_id,
        primary=node,
        ttl=ttl,
        token_expires=token_expires,
        key_expires=key_expires,
    )


async def _ca_pin(ctx: RunContext, lk: LinuxKitNode) -> str:
    """The CA pin from the cluster CA certificate, checked against what init printed."""
    pem = await lk.read_file(paths.CA_CERT)
    if pem is None:
        raise NodeError(f"{paths.CA_CERT} is missing on the primary", phase=PHASE)
    pin = kubeadm.ca_cert_hash(pem)
    _check_pin(pin, ctx.state.init_ca_hashes)
    return pin


def _check_pin(pin: str, printed: tuple[str, ...]) -> None:
    """The pin must be one kubeadm init printed in this run, when it ran in this run."""
    if printed and pin not in printed:
        raise NodeError(
            f"the CA pin computed from {paths.CA_CERT} ({pin}) differs from the one kubeadm "
            f"init printed ({', '.join(printed)}): refusing to hand it to joining nodes",
            phase=PHASE,
        )


async def _create_token(lk: LinuxKitNode, token: str, ttl: str, description: str) -> None:
    """``kubeadm token create`` of a token we chose, checked rather than repeated blindly.

    ``ctr tasks exec`` may exit 0 with its output lost: a create that does not print the
    token is looked for in ``kubeadm token list`` (by its ID and this run's description) and
    made again only when the list, which answered, does not hold it.
    """
    token_id = token.split(".")[0]
    for _ in range(CREATE_ATTEMPTS):
        result = await lk.kubeadm("token", "create", token, "--ttl", ttl, "--description",
                                  description)
        if result.exit_status != 0:
            raise NodeError(_fail("kubeadm token create", result.stderr), phase=PHASE)
        if token in result.stdout.decode(errors="replace"):
            return
        try:
            listed = await lk.kubelet_read(["kubeadm", "token", "list"],
                                           what="kubeadm token list")
        except NodeCommandError as exc:
            raise NodeError(f"kubeadm token create printed nothing and {exc}", phase=PHASE) from exc
        if listed.exit_status != 0:
            raise NodeError(_fail("kubeadm token list", listed.stderr), phase=PHASE)
        ours = [t for t in kubeadm.parse_token_list(listed.stdout.decode(errors="replace"))
                if t.token.split(".")[0] == token_id and t.description == description]
        if ours:
            return
    raise NodeError(
        f"kubeadm token create exited 0 {CREATE_ATTEMPTS} times and token {token_id} is not in "
        "kubeadm token list",
        phase=PHASE,
    )


# How many times a token create that printed nothing and is not listed is made again.
CREATE_ATTEMPTS = 3


async def _upload_certs(ctx: RunContext, lk: LinuxKitNode) -> str:
    """A fresh certificate key, chosen here: the control plane certificates uploaded under it.

    Choosing the key makes the upload safe to check: a success whose output was lost
    (``ctr tasks exec`` exits 0 without it) still uploaded under the key we hold, and a
    repeat with the same key uploads the same Secret again.
    """
    cert_key = secrets.token_hex(32)
    ctx.add_secret(cert_key)
    with uncut():  # an upload that happened is recorded, so that the run deletes the Secret
        up = await lk.kubeadm("init", "phase", "upload-certs", "--upload-certs",
                              "--certificate-key", cert_key)
        if up.exit_status == 0:
            ctx.state.certs_uploaded = True
    if up.exit_status != 0:
        raise NodeError(_fail("kubeadm upload-certs", up.stdout + up.stderr), phase=PHASE)
    printed = up.stdout.decode(errors="replace")
    if printed.strip() and kubeadm.parse_certificate_key(printed) != cert_key:
        raise NodeError("kubeadm upload-certs used a certificate key other than ours",
                        phase=PHASE)
    return cert_key


class RevokeCredentials(Step[NoOptions]):
    name = "revoke-credentials"
    phase = "cleanup"
    changes = False

    def plan(self, options: NoOptions, ctx: PlanContext, node: str) -> StepPlan:
        return do(Action("delete the bootstrap tokens and uploaded certificates this run made, "
                         "if any"))

    async def apply(self, options: NoOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        problems = []
        if ctx.state.tokens:
            problems += await self._delete_tokens(ctx, lk, node)
        if ctx.state.certs_uploaded:
            result = await lk.kubectl(
                "delete", "secret", CERTS_SECRET, "-n", "kube-system", "--ignore-not-found"
            )
            if result.exit_status != 0:
                problems.append(_fail(f"deleting the {CERTS_SECRET} Secret", result.stderr))
            else:
                ctx.state.certs_uploaded = False
                ctx.emit(node, self.phase, EventKind.PROGRESS, f"deleted the {CERTS_SECRET} Secret")
        if problems:
            raise NodeError("; ".join(problems), phase=self.phase)
        return False

    async def _delete_tokens(self, ctx: RunContext, lk: LinuxKitNode, node: str) -> list[str]:
        """Delete this run's tokens that exist: a token whose init failed before kubeadm made
        it, or with no cluster at all, is not there to delete."""
        listed = await lk.kubeadm("token", "list", "-o", "json")
        token_ids = list(ctx.state.tokens)
        if listed.exit_status == 0:
            try:
                existing = {t.token.split(".")[0] for t in kubeadm.parse_token_list(
                    listed.stdout.decode(errors="replace"))}
            except kubeadm.ParseError:
                existing = set(token_ids)
            token_ids = [t for t in token_ids if t in existing]
        elif not (ctx.state.initialised or ctx.plan.cluster.initialised):
            token_ids = []  # no cluster came up: it holds no token
        if not token_ids:
            ctx.state.tokens.clear()
            return []
        result = await lk.kubeadm("token", "delete", *token_ids)
        if result.exit_status != 0:
            return [_fail("kubeadm token delete", result.stdout + result.stderr)]
        ctx.state.tokens.clear()
        ctx.emit(node, self.phase, EventKind.PROGRESS, f"deleted token(s) {', '.join(token_ids)}")
        return []


CERTS_SECRET = "kubeadm-certs"


def _fail(what: str, output: bytes) -> str:
    return f"{what} failed: {kubeadm.failure_summary(output)}"
