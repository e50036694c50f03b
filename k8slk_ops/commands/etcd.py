"""``k8slk-ops etcd snapshot`` and ``k8slk-ops etcd status``: the cluster's etcd, from cron too.

Both are read-only playbooks (``etcd-snapshot``, ``etcd-status``) and take no cluster lock. The
snapshot is taken on the primary control plane; ``--keep N`` deletes this cluster's older
snapshots in the directory once the new one has passed every check (and their ``.pki.tar``);
``--pki`` writes the cluster's CAs and service-account keys beside the new one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from k8slk_ops import cli
from k8slk_ops.options import RunOptions, SharedOptions
from k8slk_ops.playbook import load_builtin

etcd_app = typer.Typer(help="The cluster's etcd: snapshots and member health.", no_args_is_help=True,
                       cls=cli.RefusingGroup)
cli.app.add_typer(etcd_app, name="etcd")


@cli.command("snapshot", shared=("concurrency", *cli.OUTPUT), group=etcd_app)
def snapshot(
    inventory: cli.InventoryArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Directory for the snapshot (default: beside the "
                     "inventory)."),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=1, help="Keep the newest N snapshots of this cluster in the "
                     "directory; delete older ones."),
    ] = None,
    pki: Annotated[
        bool,
        cli.flag("--pki", help="Also write <name>.pki.tar beside it (0600): the cluster's CAs "
                 "and service-account keys, what a restore onto blank machines needs."),
    ] = False,
    *,
    shared: SharedOptions,
) -> None:
    """Take an etcd snapshot on a healthy control plane, fetch it, verify it, keep it as .db."""
    options = dataclasses.replace(
        RunOptions.for_command(shared), snapshot_dir=output, snapshot_keep=keep,
        snapshot_pki=pki,
    )
    cli._run("etcd snapshot", load_builtin("etcd-snapshot"), inventory, shared, options)


@cli.command("status", shared=("concurrency", *cli.OUTPUT), group=etcd_app)
def status(inventory: cli.InventoryArg, *, shared: SharedOptions) -> None:
    """Members, leader, DB size and health of etcd, per control plane."""
    cli._run("etcd status", load_builtin("etcd-status"), inventory, shared,
             RunOptions.for_command(shared))
