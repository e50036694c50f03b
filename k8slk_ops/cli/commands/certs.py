"""``k8slk-ops certs check`` and ``certs renew``: kubeadm's certificates on the control planes.

``check`` lists every certificate of every control plane (and the CAs) and exits 1 when one
expires within ``--warn-days``; ``renew`` renews those expiring within ``--within-days`` one
control plane at a time and restarts its static pods. Both are meant for cron: ``renew`` needs
``--yes`` when there is no terminal to confirm on (exit 2, nothing touched). Before renewing,
``renew`` takes and verifies an etcd snapshot (``--snapshot-dir``, ``--no-snapshot``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from k8slk_ops.cli.cliutil import (
    CHANGING,
    NO_SNAPSHOT,
    OUTPUT,
    SNAPSHOT_DIR,
    InventoryArg,
    RefusingGroup,
    _run,
    app,
    command,
    confirm,
    flag,
)
from k8slk_ops.engine.options import DEFAULT_CERT_DAYS, RunOptions, SharedOptions
from k8slk_ops.engine.playbook import load_builtin
from k8slk_ops.steps import STEPS

certs_app = typer.Typer(help="kubeadm's certificates on the control planes.",
                        no_args_is_help=True, cls=RefusingGroup)
app.add_typer(certs_app, name="certs")


def within_days(value: str) -> str:
    """``--within-days``: a whole number of days (0 or more) or ``all``."""
    if value == "all":
        return value
    try:
        days = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a number of days nor 'all'") from None
    if days < 0:
        raise typer.BadParameter(f"{days} is negative")
    return str(days)


@command("check", shared=("concurrency", *OUTPUT), group=certs_app)
def check(
    inventory: InventoryArg,
    warn_days: Annotated[
        int,
        typer.Option("--warn-days", min=0, metavar="N",
                     help="Exit 1 when a certificate expires within N days."),
    ] = DEFAULT_CERT_DAYS,
    *,
    shared: SharedOptions,
) -> None:
    """A row per certificate and control plane: expiry and days left, the CAs' too."""
    options = RunOptions.for_command(shared, cert_days=warn_days)
    _run("certs check", load_builtin("certs-check", STEPS), inventory, shared, options)


@command("renew", shared=tuple(k for k in CHANGING if k != "concurrency"), group=certs_app)
def renew(
    inventory: InventoryArg,
    within: Annotated[
        str,
        typer.Option("--within-days", metavar="N|all", parser=within_days,
                     help="Renew what expires within N days (0: nothing; all: everything)."),
    ] = str(DEFAULT_CERT_DAYS),
    yes: Annotated[bool, flag("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool,
        flag("--force", help="Go on when etcd has a member that is not healthy (warned)."),
    ] = False,
    snapshot_dir: Annotated[Path | None, SNAPSHOT_DIR] = None,
    no_snapshot: Annotated[bool, NO_SNAPSHOT] = False,
    *,
    shared: SharedOptions,
) -> None:
    """Renew expiring certificates and restart each control plane's static pods, one at a time."""
    if not yes and not shared.dry_run:
        confirm("certs renew", inventory, shared,
                "Renew certificates and restart each control plane's API server, controller "
                "manager, scheduler and etcd in turn?")
    days = None if within == "all" else int(within)
    options = dataclasses.replace(
        RunOptions.for_command(shared, cert_days=days), etcd_unhealthy_ok=force,
        snapshot_dir=snapshot_dir, no_snapshot=no_snapshot,
    )
    _run("certs renew", load_builtin("certs-renew", STEPS), inventory, shared, options)
