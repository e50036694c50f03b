"""``k8slk-ops etcd snapshot``, ``etcd status`` and ``etcd restore``: the cluster's etcd.

Snapshot and status are read-only playbooks (``etcd-snapshot``, ``etcd-status``) and take no
cluster lock. The snapshot is taken on the primary control plane; ``--keep N`` deletes this
cluster's older snapshots in the directory once the new one has passed every check (and their
``.pki.tar``); ``--pki`` writes the cluster's CAs and service-account keys beside the new one.
``restore`` checks the file here first (a refusal touches nothing), asks (``--yes`` without a
terminal), then runs ``etcd-restore`` under the lock files of the control planes; with
``--pki FILE`` (the archive ``snapshot --pki`` wrote) it runs ``etcd-rebuild`` instead: the
cluster made again on control planes that are all blank (docs/etcd-restore.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from k8slk_ops.cli import cliutil
from k8slk_ops.cluster import etcdctl, etcdrestore, pkiarchive
from k8slk_ops.cluster import snapshot as snapshot_mod
from k8slk_ops.engine.options import RunOptions, SharedOptions
from k8slk_ops.engine.playbook import load_builtin
from k8slk_ops.steps import STEPS

etcd_app = typer.Typer(help="The cluster's etcd: snapshots and member health.", no_args_is_help=True,
                       cls=cliutil.RefusingGroup)
cliutil.app.add_typer(etcd_app, name="etcd")


@cliutil.command("snapshot", shared=("concurrency", *cliutil.OUTPUT), group=etcd_app)
def snapshot(
    inventory: cliutil.InventoryArg,
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
        cliutil.flag("--pki", help="Also write <name>.pki.tar beside it (0600): the cluster's CAs "
                 "and service-account keys, what a restore onto blank machines needs."),
    ] = False,
    verify_restore: Annotated[
        bool,
        cliutil.flag("--verify-restore", help="Then restore it on the control plane into a scratch "
                 "directory, start a throwaway etcd on it and read its keys and Node names back "
                 "(all removed after)."),
    ] = False,
    *,
    shared: SharedOptions,
) -> None:
    """Take an etcd snapshot on a healthy control plane, fetch it, verify it, keep it as .db."""
    options = dataclasses.replace(
        RunOptions.for_command(shared), snapshot_dir=output, snapshot_keep=keep,
        snapshot_pki=pki, snapshot_verify_restore=verify_restore,
    )
    cliutil._run("etcd snapshot", load_builtin("etcd-snapshot", STEPS), inventory, shared, options)


@cliutil.command("status", shared=("concurrency", *cliutil.OUTPUT), group=etcd_app)
def status(inventory: cliutil.InventoryArg, *, shared: SharedOptions) -> None:
    """Members, leader, DB size and health of etcd, per control plane."""
    cliutil._run("etcd status", load_builtin("etcd-status", STEPS), inventory, shared,
             RunOptions.for_command(shared))


@cliutil.command("restore", shared=tuple(k for k in cliutil.CHANGING if k != "concurrency"),
             group=etcd_app)
def restore(
    inventory: cliutil.InventoryArg,
    snapshot_file: Annotated[
        Path, typer.Argument(metavar="SNAPSHOT", help="A .db file written by `etcd snapshot`.")
    ],
    skip_hash_check: Annotated[
        bool, cliutil.flag("--skip-hash-check", help="Restore a file without a recorded SHA-256 "
                       "or etcd's integrity hash (one copied out of a data directory).")
    ] = False,
    yes: Annotated[bool, cliutil.flag("--yes", "-y", help="Do not ask for confirmation.")] = False,
    pki: Annotated[
        Path | None,
        typer.Option("--pki", metavar="FILE", help="The .pki.tar `etcd snapshot --pki` wrote "
                     "beside SNAPSHOT: rebuild the cluster onto control planes that are all "
                     "blank (every one lost and replaced)."),
    ] = None,
    *,
    shared: SharedOptions,
) -> None:
    """Replace etcd on every control plane with SNAPSHOT; writes made after it are lost."""
    try:
        checked = etcdrestore.verify_file(snapshot_file, skip_hash_check)
        status = _local_status(checked.path)
        keys = None if pki is None else pkiarchive.load(pki)
    except (etcdrestore.RestoreRefused, pkiarchive.PkiError) as exc:
        cliutil.refuse("etcd restore", inventory, shared, f"{exc}; nothing was touched")
    seen = f" (revision {status.revision}, {status.total_keys} keys)" if status else ""
    if not yes and not shared.dry_run:
        question = (
            f"Stop etcd and the API server on every control plane and replace etcd with "
            f"{checked.path}{seen}? Everything written since it was taken is lost"
        ) if keys is None else (
            f"Make the cluster again on its blank control planes from {checked.path}{seen} and "
            f"the keys in {keys.path}? Everything written since the snapshot is lost"
        )
        cliutil.confirm("etcd restore", inventory, shared, question)
    options = dataclasses.replace(
        RunOptions.for_command(shared), restore=checked, skip_hash_check=skip_hash_check,
        restore_pki=keys,
    )
    playbook = load_builtin("etcd-restore" if keys is None else "etcd-rebuild", STEPS)
    cliutil._run("etcd restore", playbook, inventory, shared, options)


def _local_status(path: Path) -> etcdctl.SnapshotStatus | None:
    """``etcdctl snapshot status`` with the operator's own etcdctl, when installed (a foreign
    file is refused before anyone is asked); the nodes read it with their etcd image anyway."""
    binary = snapshot_mod.local_etcdctl()
    if binary is None:
        return None
    try:
        status = asyncio.run(snapshot_mod.verify_local(binary, path))
    except snapshot_mod.SnapshotError as exc:
        raise etcdrestore.RestoreRefused(f"{path}: {exc}") from None
    return status
