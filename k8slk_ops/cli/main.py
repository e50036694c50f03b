"""The command line: parse flags, load the inventory, pick a playbook, hand over, print the result.

Nothing here talks to a node. Every input is validated (inventory, playbook, flags) before the
first connection; errors exit 2 with file:line. Exit codes: 0 done, 1 some node failed, 2 bad
usage or input, 3 could not start (unreachable, locked, host key refused), 130 interrupted.

The flags every command shares are declared once (``cliutil.SHARED``); ``command`` adds the
ones a command takes to its signature and hands the command one ``SharedOptions``. Each command
turns its flags into one ``RunOptions`` and calls ``_run`` (``cliutil``, shared with the
commands in ``commands/``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from k8slk_ops import __version__
from k8slk_ops.base.errors import UsageError
from k8slk_ops.cli.cliutil import (
    CHANGING,
    OUTPUT,
    PREPARED,
    PRUNE,
    InventoryArg,
    MetricsFileOpt,
    NodeOpt,
    RefusingCommand,
    StrictOpt,
    _load_inventory,
    _load_playbook,
    _run,
    _write_metrics,
    app,
    command,
    confirm,
    duration,
    flag,
    inventory_app,
    refuse,
)
from k8slk_ops.cli.gctune import spare_the_last_collections
from k8slk_ops.engine.options import RunOptions, SharedOptions
from k8slk_ops.engine.playbook import load_builtin, load_playbook
from k8slk_ops.inventory.summary import at_a_glance
from k8slk_ops.output import metrics
from k8slk_ops.output.events import RunReport
from k8slk_ops.steps import STEPS


def main() -> None:
    """Console entry point."""
    try:
        app()
    finally:
        spare_the_last_collections()


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"k8slk-ops {__version__}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, metavar="",
            help="Print the version and exit.",
        ),
    ] = None,
) -> None:
    """Create, grow, inspect and take apart Kubernetes clusters of LinuxKit nodes over SSH."""


@command(shared=CHANGING)
def bootstrap(
    inventory: InventoryArg,
    kubeconfig_out: Annotated[
        Path | None,
        typer.Option("--kubeconfig-out", help="Where to write the admin kubeconfig (0600)."),
    ] = None,
    strict: StrictOpt = False,
    *,
    shared: SharedOptions,
) -> None:
    """Create a cluster: init the first control plane, join the rest, wait until all are Ready."""
    options = RunOptions.for_command(shared, strict=strict, kubeconfig_out=kubeconfig_out)
    _run("bootstrap", load_builtin("bootstrap", STEPS), inventory, shared, options)


@command("add-node", shared=CHANGING)
def add_node(
    inventory: InventoryArg, node: NodeOpt = None, strict: StrictOpt = False, *,
    shared: SharedOptions,
) -> None:
    """Join the inventory's nodes that are not in the cluster yet (or only those named)."""
    options = RunOptions.for_command(shared, selected=node or (), strict=strict)
    _run("add-node", load_builtin("add-node", STEPS), inventory, shared, options)


@command(shared=("concurrency", *OUTPUT))
def status(inventory: InventoryArg, *, shared: SharedOptions) -> None:
    """A row per node: reachable, host key, kubelet, kubeadm state, versions, Ready, certs."""
    _run("status", load_builtin("status", STEPS), inventory, shared, RunOptions.for_command(shared))


@command(shared=("concurrency", *OUTPUT))
def drift(inventory: InventoryArg, *, shared: SharedOptions) -> None:
    """Compare the running cluster with the inventory: each difference, where, what fixes it.

    Read-only (no lock): exit 0 when there is none, 1 when there is any."""
    _run("drift", load_builtin("drift", STEPS), inventory, shared, RunOptions.for_command(shared))


@command()
def kubeconfig(
    inventory: InventoryArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: beside the inventory).")
    ] = None,
    merge: Annotated[
        bool, flag("--merge", help="Merge into OUTPUT, keeping its other contexts.")
    ] = False,
    *,
    shared: SharedOptions,
) -> None:
    """Fetch admin.conf, point it at the control plane endpoint, write it 0600."""
    options = RunOptions.for_command(shared, kubeconfig_out=output, merge_kubeconfig=merge)
    _run("kubeconfig", load_builtin("kubeconfig", STEPS), inventory, shared, options)


@command("remove-node", shared=(*OUTPUT, "dry_run", "break_lock"))
def remove_node(
    inventory: InventoryArg,
    names: Annotated[list[str], typer.Argument(help="Nodes to remove.")],
    force: Annotated[
        int,
        typer.Option(
            "--force",
            "-f",
            count=True,
            help="Remove even if the drain fails or the node is unreachable; twice: even the "
            "last control plane (the cluster ends with it) or past etcd quorum.",
        ),
    ] = 0,
    drain_timeout: Annotated[
        float | None,
        typer.Option(
            "--drain-timeout",
            metavar="DURATION",
            parser=duration,
            help="How long kubectl drain may take per node (a Go duration; default 5m).",
        ),
    ] = None,
    yes: Annotated[
        bool, flag("--yes", "-y", help="Do not ask for confirmation before removing a control "
                   "plane.")
    ] = False,
    *,
    shared: SharedOptions,
) -> None:
    """Cordon, drain, reset and delete nodes (control planes leave etcd first)."""
    if not yes and not shared.dry_run:
        _confirm_control_planes_leave(inventory, names, shared)
    options = RunOptions.for_command(
        shared, selected=names, force=force, drain_timeout=drain_timeout
    )
    _run("remove-node", load_builtin("remove-node", STEPS), inventory, shared, options)


def _confirm_control_planes_leave(inventory: Path, names: list[str], shared: SharedOptions) -> None:
    """Ask before a control plane is removed (it leaves etcd: the cluster loses a member it
    may need for quorum); a worker's removal is not asked about. An inventory that cannot be
    read is left to the run, which reports it (exit 2) as for any command."""
    try:
        inv = _load_inventory(inventory)
    except UsageError:
        return
    control_planes = {n.name for n in inv.control_planes}
    leaving = [n for n in names if n in control_planes]
    if leaving:
        which = ", ".join(leaving)
        confirm("remove-node", inventory, shared,
                f"Remove control plane {which} from {inv.cluster.name} (drain, leave etcd, "
                "kubeadm reset -f)?")


@command(shared=(*OUTPUT, "dry_run", "break_lock"))
def reset(
    inventory: InventoryArg,
    node: NodeOpt = None,
    yes: Annotated[bool, flag("--yes", "-y", help="Do not ask for confirmation.")] = False,
    *,
    shared: SharedOptions,
) -> None:
    """Take the cluster apart: workers first, then control planes, the primary last."""
    if not yes and not shared.dry_run:
        what = ", ".join(node) if node else "every node of the cluster"
        confirm("reset", inventory, shared,
                f"Reset {what} (kubeadm reset -f)? Workloads will stop")
    # Taking the cluster apart goes on past a failed drain: the node is reset anyway.
    options = RunOptions.for_command(shared, selected=node or (), force=1)
    _run("reset", load_builtin("reset", STEPS), inventory, shared, options)


@command(shared=("concurrency", *OUTPUT))
def plan(
    command_name: Annotated[
        str, typer.Argument(metavar="COMMAND", help="The command to plan, e.g. bootstrap.")
    ],
    inventory: InventoryArg,
    node: NodeOpt = None,
    prune: Annotated[bool, PRUNE] = False,
    *,
    shared: SharedOptions,
) -> None:
    """Show the ordered actions per node that COMMAND would take; change nothing."""
    label = f"plan {command_name}"
    prepare = PREPARED.get(command_name)
    if prune and command_name != "apply":
        refuse(label, inventory, shared, f"--prune is apply's; {command_name} has none")
    if prepare is not None:
        if node:
            refuse(label, inventory, shared,
                   f"{command_name} works on the whole inventory: drop --node")
        playbook, options = prepare(inventory, shared, label, prune)
        options = dataclasses.replace(options, dry_run=True)
        _run(label, playbook, inventory, shared, options)
        return
    playbook = _load_playbook(label, inventory, shared, lambda: load_builtin(command_name, STEPS))
    options = RunOptions.for_command(shared, dry_run=True, selected=node or ())
    _run(label, playbook, inventory, shared, options)


@command("run", shared=CHANGING)
def run_playbook(
    playbook: Annotated[Path, typer.Argument(help="A playbook file.")],
    inventory: InventoryArg,
    node: NodeOpt = None,
    *,
    shared: SharedOptions,
) -> None:
    """Run a playbook of your own (copy one from playbooks/ and adapt it)."""
    label = f"run {playbook}"
    book = _load_playbook(label, inventory, shared, lambda: load_playbook(playbook, STEPS))
    options = RunOptions.for_command(shared, selected=node or ())
    _run(label, book, inventory, shared, options)


@inventory_app.command("check", cls=RefusingCommand)
def inventory_check(
    inventory: InventoryArg,
    metrics_file: MetricsFileOpt = None,
) -> None:
    """Validate an inventory; print every problem with file:line."""
    shared = SharedOptions(metrics_file=metrics_file)
    if metrics_file is not None and (why := metrics.check_target(metrics_file)):
        refuse("inventory check", inventory, shared, why)
    try:
        inv = _load_inventory(inventory)
    except UsageError as exc:
        refuse("inventory check", inventory, shared, str(exc), prefix="")
    for warning in inv.warnings:
        typer.echo(f"warning: {warning}", err=True)
    addon_warnings = [w for addon in inv.addon_manifests for w in addon.warnings]
    for text in addon_warnings:
        typer.echo(text, err=True)
    noted = len(inv.warnings) + len(addon_warnings)
    typer.echo(f"{inventory}: ok" + (f" ({noted} warning{'s' * (noted != 1)})" if noted else ""))
    for line in at_a_glance(inv):
        typer.echo(line)
    _write_metrics(shared, RunReport(command="inventory check", cluster=inv.cluster.name,
                                     inventory=str(inventory)))


from k8slk_ops.cli.commands import apply as _apply  # noqa: E402,F401
from k8slk_ops.cli.commands import certs as _certs  # noqa: E402,F401
from k8slk_ops.cli.commands import etcd as _etcd  # noqa: E402,F401
from k8slk_ops.cli.commands import upgrade as _upgrade  # noqa: E402,F401
