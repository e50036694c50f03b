"""The command line: parse flags, load the inventory, pick a playbook, hand over, print the result.

Nothing here talks to a node. Every input is validated (inventory, playbook, flags) before the
first connection; errors exit 2 with file:line. Exit codes: 0 done, 1 some node failed, 2 bad
usage or input, 3 could not start (unreachable, locked, host key refused), 130 interrupted.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from k8slk_ops import __version__, kubeadm
from k8slk_ops.context import RunOptions
from k8slk_ops.errors import EXIT_USAGE, OpsError, UsageError
from k8slk_ops.events import RunReport
from k8slk_ops.inventory import Inventory, InventoryError, load_inventory
from k8slk_ops.operation import Operation, new_run_id
from k8slk_ops.playbook import Playbook, load_builtin, load_playbook
from k8slk_ops.redact import Redactor
from k8slk_ops.report import configure_logging, make_reporter
from k8slk_ops.ssh import raise_nofile_limit

app = typer.Typer(
    name="k8slk-ops",
    help="Create, grow, inspect and take apart Kubernetes clusters of LinuxKit nodes over SSH.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
inventory_app = typer.Typer(help="Inventory tools.", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")

InventoryArg = Annotated[Path, typer.Argument(help="Inventory file (YAML, or Ansible INI).")]
ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", "-c", min=1, help="Nodes worked on at once.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON report on stdout.")]
LogFileOpt = Annotated[
    Path | None, typer.Option("--log-file", help="Append a detailed, redacted log here.")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="More detail.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=1, help="Seconds one kubeadm run may take on a node.")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")]
NodeOpt = Annotated[
    list[str] | None, typer.Option("--node", help="Only this node (repeatable).")
]
BreakLockOpt = Annotated[
    bool, typer.Option("--break-lock", help="Remove a stale cluster lock left by a dead run.")
]


def main() -> None:
    """Console entry point."""
    app()


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        typer.echo(f"k8slk-ops {__version__}")
        raise typer.Exit(0)


def _load_inventory(path: Path) -> Inventory:
    try:
        return load_inventory(path)
    except InventoryError as exc:
        raise UsageError(str(exc)) from None


def _run(
    command: str,
    playbook: Playbook,
    inventory_path: Path,
    *,
    json_out: bool,
    log_file: Path | None,
    verbose: bool,
    options: dict[str, Any],
    break_lock: bool = False,
) -> None:
    """Validate, run one operation, print the report, exit with its code."""
    redactor = Redactor()
    configure_logging(verbose, log_file, redactor)
    reporter = make_reporter(json=json_out, log_file=log_file, verbose=verbose, redactor=redactor)
    code = EXIT_USAGE
    try:
        inventory = _load_inventory(inventory_path)
        run_options = RunOptions(run_id=new_run_id(), **options)
        raise_nofile_limit()
        op = Operation(
            playbook,
            inventory,
            run_options,
            reporter,
            redactor.add,
            command=command,
            break_lock=break_lock,
        )
        report = asyncio.run(op.run())
        if run_options.dry_run and not json_out:
            reporter.show_text(str(report.data.get("planText", "")))
        reporter.finish(report)
        code = report.exit_code
    except OpsError as exc:
        reporter.error(str(exc))
        failed = RunReport(command=command, cluster="", inventory=str(inventory_path))
        failed.exit_code = exc.exit_code
        failed.messages.append(str(exc))
        if json_out:
            reporter.finish(failed)
        code = exc.exit_code
    except KeyboardInterrupt:
        reporter.error("interrupted")
        code = 130
    finally:
        reporter.close()
    raise typer.Exit(code)


@app.command()
def bootstrap(
    inventory: InventoryArg,
    concurrency: ConcurrencyOpt = 64,
    json_out: JsonOpt = False,
    log_file: LogFileOpt = None,
    verbose: VerboseOpt = False,
    timeout: TimeoutOpt = 600.0,
    kubeconfig_out: Annotated[
        Path | None,
        typer.Option("--kubeconfig-out", help="Where to write the admin kubeconfig (0600)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail nodes below the image's CPU/memory minimums.")
    ] = False,
    dry_run: DryRunOpt = False,
    break_lock: BreakLockOpt = False,
) -> None:
    """Create a cluster: init the first control plane, join the rest, wait until all are Ready."""
    _run(
        "bootstrap",
        load_builtin("bootstrap"),
        inventory,
        json_out=json_out,
        log_file=log_file,
        verbose=verbose,
        break_lock=break_lock,
        options={
            "concurrency": concurrency,
            "timeout": timeout,
            "strict": strict,
            "dry_run": dry_run,
            "kubeconfig_out": str(kubeconfig_out) if kubeconfig_out else None,
        },
    )


@app.command("add-node")
def add_node(
    inventory: InventoryArg,
    node: NodeOpt = None,
    concurrency: ConcurrencyOpt = 64,
    json_out: JsonOpt = False,
    log_file: LogFileOpt = None,
    verbose: VerboseOpt = False,
    timeout: TimeoutOpt = 600.0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail nodes below the image's CPU/memory minimums.")
    ] = False,
    dry_run: DryRunOpt = False,
    break_lock: BreakLockOpt = False,
) -> None:
    """Join the inventory's nodes that are not in the cluster yet (or only those named)."""
    _run(
        "add-node",
        load_builtin("add-node"),
        inventory,
        json_out=json_out,
        log_file=log_file,
        verbose=verbose,
        break_lock=break_lock,
        options={
            "concurrency": concurrency,
            "timeout": timeout,
            "strict": strict,
            "dry_run": dry_run,
            "selected": tuple(node or ()),
        },
    )


@app.command()
def status(
    inventory: InventoryArg,
    concurrency: ConcurrencyOpt = 64,
    json_out: JsonOpt = False,
    log_file: LogFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """A row per node: reachable, host key, kubelet, kubeadm state, versions, Ready, certs."""
    _run(
        "status",
        load_builtin("status"),
        inventory,
        json_out=json_out,
        log_file=log_file,
        verbose=verbose,
        options={"concurrency": concurrency},
    )


@app.command()
def kubeconfig(
    inventory: InventoryArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: beside the inventory).")
    ] = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="Merge into OUTPUT, keeping its other contexts.")
    ] = False,
    json_out: JsonOpt = False,
    log_file: LogFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fetch admin.conf, point it at the control plane endpoint, write it 0600."""
    _run(
        "kubeconfig",
        load_builtin("kubeconfig"),
        inventory,
        json_out=json_out,
        log_file=log_file,
        verbose=verbose,
        options={
            "kubeconfig_out": str(output) if output else None,
            "extra": {"merge_kubeconfig": merge},
        },
    )


def _check_duration(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        seconds = kubeadm.parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} (a Go duration such as 90s or 5m)") from None
    if seconds <= 0:
        raise typer.BadParameter("must be positive")
    return value


@app.command("remove-node")
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
        str | None,
        typer.Option(
            "--drain-timeout",
            metavar="DURATION",
            help="How long kubectl drain may take per node (a Go duration; default 5m).",
            callback=_check_duration,
        ),
    ] = None,
    json_out: JsonOpt = False,
    log_file: LogFileOpt = None,
    verbose: VerboseOpt = False,
    dry_run: DryRunOpt = False,
    break_lock: BreakLockOpt = False,
) -> None:
    """Cordon, drain, reset and delete nodes (control planes leave etcd first)."""
    extra: dict[str, object] = {"force": force}
    if drain_timeout is not None:
        extra["drain_timeout"] = drain_timeout
    _run(
        "remove-node",
        load_builtin("remove-node"),
        inventory,
        json_out=json_out,
        log_file=log_file,
        verbose=verbose,
        break_lock=break_lock,
        options={"dry_run": dry_run, "selected": tuple(names), "extra": extra},
    )


@app.command()
def reset(
    inventory: InventoryArg,
    node: NodeOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_out: JsonOpt = False,
    log_file: LogFileOpt = None,
    verbose: VerboseOpt = False,
    dry_run: DryRunOpt = False,
    break_lock: BreakLockOpt = False,
) -> None:
    """Take the cluster apart: workers first, then control planes, the primary last."""
    if not yes and not dry_run:
        if not sys.stdin.isatty():
            typer.echo("error: reset needs --yes when there is no terminal to confirm on", err=True)
            raise typer.Exit(EXIT_USAGE)
        what = ", ".join(node) if node else "every node of the cluster"
        typer.confirm(f"Reset {what} (kubeadm reset -f)? Workloads will stop", abort=True)
    _run(
        "reset",
        load_builtin("reset"),
        inventory,
        json_out=json_out,
        log_file=log_file,
        verbose=verbose,
        break_lock=break_lock,
        options={"dry_run": dry_run, "selected": tuple(node or ()), "extra": {"force": 1}},
    )


@app.command()
def plan(
    command: Annotated[str, typer.Argument(help="The command to plan, e.g. bootstrap.")],
    inventory: InventoryArg,
    json_out: JsonOpt = False,
    concurrency: ConcurrencyOpt = 64,
    log_file: LogFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show the ordered actions per node that COMMAND would take; change nothing."""
    try:
        playbook = load_builtin(command)
    except UsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    _run(
        f"plan {command}",
        playbook,
        inventory,
        json_out=json_out,
        log_file=log_file,
        verbose=verbose,
        options={"concurrency": concurrency, "dry_run": True},
    )


@app.command("run")
def run_playbook(
    playbook: Annotated[Path, typer.Argument(help="A playbook file.")],
    inventory: InventoryArg,
    concurrency: ConcurrencyOpt = 64,
    json_out: JsonOpt = False,
    log_file: LogFileOpt = None,
    verbose: VerboseOpt = False,
    timeout: TimeoutOpt = 600.0,
    dry_run: DryRunOpt = False,
    node: NodeOpt = None,
    break_lock: BreakLockOpt = False,
) -> None:
    """Run a playbook of your own (copy one from playbooks/ and adapt it)."""
    try:
        book = load_playbook(playbook)
    except UsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    _run(
        f"run {playbook}",
        book,
        inventory,
        json_out=json_out,
        log_file=log_file,
        verbose=verbose,
        break_lock=break_lock,
        options={
            "concurrency": concurrency,
            "timeout": timeout,
            "dry_run": dry_run,
            "selected": tuple(node or ()),
        },
    )


@inventory_app.command("check")
def inventory_check(inventory: InventoryArg) -> None:
    """Validate an inventory; print every problem with file:line."""
    try:
        inv = _load_inventory(inventory)
    except UsageError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    cps = ", ".join(n.name for n in inv.control_planes)
    workers = ", ".join(n.name for n in inv.workers) or "none"
    typer.echo(f"{inventory}: ok")
    typer.echo(f"  cluster:        {inv.cluster.name}")
    typer.echo(f"  endpoint:       {inv.endpoint}")
    typer.echo(f"  control planes: {cps}")
    typer.echo(f"  workers:        {workers}")
    if sys.stdout.isatty():
        typer.echo(f"  nodes:          {len(inv.nodes)}")
