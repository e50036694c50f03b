"""``k8slk-ops upgrade``: roll the cluster onto the image the boot server serves now.

Safe from cron: without a terminal it needs ``--yes`` (else exit 2, nothing touched), a second
run while one holds the lock exits 3 naming the holder (the operation's cluster lock), and a
run with nothing due is a quick no-op. Before the first node changes it takes and verifies an
etcd snapshot (``--snapshot-dir``, ``--no-snapshot``): a failed one stops the run untouched.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Annotated

import typer

from k8slk_ops.base.errors import UsageError
from k8slk_ops.cli.cliutil import (
    CHANGING,
    NO_SNAPSHOT,
    SNAPSHOT_DIR,
    InventoryArg,
    _load_inventory,
    _run,
    command,
    confirm,
    flag,
    refuse,
)
from k8slk_ops.engine.options import RunOptions, SharedOptions
from k8slk_ops.engine.playbook import Playbook, load_builtin
from k8slk_ops.kubeadm.errors import VersionError
from k8slk_ops.kubeadm.versions import KubeVersion
from k8slk_ops.steps import STEPS

_UNAVAILABLE = re.compile(r"(?P<n>[1-9][0-9]*)(?P<pct>%?)")
WORKERS_STAGE = "workers"


def workers_batch(max_unavailable: str, workers: int) -> int:
    """How many workers one batch takes: N, or P% of the workers rounded down (at least 1),
    as Kubernetes reads maxUnavailable. Raises ValueError for anything else."""
    m = _UNAVAILABLE.fullmatch(max_unavailable.strip())
    if m is None or (m["pct"] and int(m["n"]) > 100):
        raise ValueError(f"--max-unavailable {max_unavailable!r}: want N (>= 1) or P% (1-100)")
    if not m["pct"]:
        return int(m["n"])
    return max(1, math.floor(workers * int(m["n"]) / 100))


def with_batch(playbook: Playbook, batch: int) -> Playbook:
    stages = tuple(
        dataclasses.replace(s, serial=batch) if s.name == WORKERS_STAGE else s
        for s in playbook.stages
    )
    return dataclasses.replace(playbook, stages=stages)


@command(shared=CHANGING)
def upgrade(
    inventory: InventoryArg,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="vX.Y.Z",
                     help="Target version (default: the inventory's cluster.kubernetesVersion)."),
    ] = None,
    max_unavailable: Annotated[
        str,
        typer.Option("--max-unavailable", metavar="N|P%",
                     help="Workers upgraded at once (a number or a percentage; default 1)."),
    ] = "1",
    yes: Annotated[bool, flag("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool,
        flag("--force", help="Go on when etcd has a member that is not healthy, or runs an etcd "
                             "kubeadm of the target cannot take (warned)."),
    ] = False,
    snapshot_dir: Annotated[Path | None, SNAPSHOT_DIR] = None,
    no_snapshot: Annotated[bool, NO_SNAPSHOT] = False,
    *,
    shared: SharedOptions,
) -> None:
    """Reboot each node into the new image and upgrade it with kubeadm, one at a time."""
    try:
        inv = _load_inventory(inventory)
    except UsageError as exc:
        refuse("upgrade", inventory, shared, str(exc))
    target = to or inv.cluster.kubernetes_version
    if not target:
        refuse("upgrade", inventory, shared,
               f"{inventory}: no target version: pass --to or set cluster.kubernetesVersion")
    try:
        target = str(KubeVersion.parse(target))
        batch = workers_batch(max_unavailable, len(inv.workers))
    except (VersionError, ValueError) as exc:
        refuse("upgrade", inventory, shared, str(exc))
    if not yes and not shared.dry_run:
        confirm("upgrade", inventory, shared,
                f"Upgrade {inv.cluster.name} to {target}, rebooting every node that is not "
                "there yet, one at a time?")
    options = dataclasses.replace(
        RunOptions.for_command(shared), upgrade_to=target, etcd_unhealthy_ok=force,
        snapshot_dir=snapshot_dir, no_snapshot=no_snapshot,
    )
    playbook = with_batch(load_builtin("upgrade", STEPS), batch)
    _run("upgrade", playbook, Path(inventory), shared, options)
