"""What every command shares: the Typer app, the shared flags and ``command``, which adds
them to a command, and ``_run``, which loads the inventory, runs one operation, prints its
report, writes the metrics and exits with its code; ``refuse`` and ``confirm``.

It is its own module so that the commands in ``main.py`` and in ``commands/`` both import it
and neither imports the other (``main.py`` imports ``commands/`` to register them): the import
contract (tests/unit/test_import_contract.py) allows no cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import typer.core

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import (
    EXIT_INTERRUPTED,
    EXIT_NODE_FAILED,
    EXIT_USAGE,
    OpsError,
    UsageError,
)
from k8slk_ops.base.localfile import UnsafeTarget
from k8slk_ops.cli import depwarnings
from k8slk_ops.cli.gctune import lean_gc
from k8slk_ops.engine.operation import Operation, new_run_id
from k8slk_ops.engine.options import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, RunOptions, SharedOptions
from k8slk_ops.engine.plan import Plan
from k8slk_ops.engine.playbook import Playbook
from k8slk_ops.inventory import Inventory, InventoryError, load_inventory
from k8slk_ops.output import metrics
from k8slk_ops.output.events import RunReport
from k8slk_ops.output.redact import Redactor
from k8slk_ops.output.report import Reporter, configure_logging, make_reporter, release_logging
from k8slk_ops.ssh import prepare_asyncssh, raise_nofile_limit


class RefusingGroup(typer.core.TyperGroup):
    """A command name that does not exist (a typo in a crontab) still writes the
    ``--metrics-file`` its arguments name, labelled with the name as given, before the
    parser's own message and exit 2. No command means no flags to read: ``--metrics-file F``
    and ``--metrics-file=F`` are picked out of the arguments as they are."""

    # ``ctx`` is the parser's own context class, which Typer does not export: hence Any.
    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except Exception as exc:
            target = _metrics_file_in(args)
            if getattr(exc, "exit_code", None) == EXIT_USAGE and target is not None and args:
                # Most commands take the inventory first: its cluster names the series, if
                # the next argument is one.
                first = args[1] if len(args) > 1 and not args[1].startswith("-") else None
                _write_metrics(SharedOptions(metrics_file=target), _failed_report(
                    " ".join([*_command_names(ctx), args[0]]),
                    Path(first) if first else None, EXIT_USAGE, _parser_message(exc)))
            raise


class RefusingCommand(typer.core.TyperCommand):
    """A command whose flags the parser rejects (an unknown option, a bad value, a missing
    argument) still writes its ``--metrics-file`` before the parser's own message and exit 2.

    The rejection happens before the command's code runs, so the flags are read again leniently
    (the parser's resilient mode, unknown options and extra arguments let through: what it
    cannot read it leaves unset) to find ``--metrics-file`` and the inventory. When
    ``--metrics-file`` itself is what could not be read (given without a value), there is no
    file to write.
    """

    # ``ctx`` is the parser's own context class, which Typer does not export (``typer.Context``
    # is a subclass of it): hence Any.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if ctx.resilient_parsing:
            return super().parse_args(ctx, args)
        given = list(args)  # the parser consumes the list it is handed
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:
            if getattr(exc, "exit_code", None) == EXIT_USAGE:
                self._record_rejection(ctx, given, exc)
            raise

    def _record_rejection(self, ctx: Any, given: list[str], exc: Exception) -> None:
        try:
            lenient = self.make_context(
                ctx.info_name, given, parent=ctx.parent, resilient_parsing=True,
                ignore_unknown_options=True, allow_extra_args=True,
            )
        except Exception:  # not even leniently readable: nothing to write to
            return
        # Typer makes Paths of them only when it calls the command: here they are still text.
        target = lenient.params.get("metrics_file")
        if not isinstance(target, str | Path) or not str(target):
            return
        inventory = lenient.params.get("inventory")
        why = _parser_message(exc)
        _write_metrics(SharedOptions(metrics_file=Path(target)), _failed_report(
            " ".join(_command_names(ctx)),
            Path(inventory) if isinstance(inventory, str | Path) and str(inventory) else None,
            EXIT_USAGE, why))


def _parser_message(exc: Exception) -> str:
    """What the parser says of a rejection (its exception's message, without the usage)."""
    format_message = getattr(exc, "format_message", None)
    return str(format_message()) if callable(format_message) else str(exc)


def _metrics_file_in(args: list[str]) -> Path | None:
    """The last ``--metrics-file`` among raw arguments (as the parser takes the last one)."""
    found = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--metrics-file" and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--metrics-file="):
            found = arg.partition("=")[2]
    return Path(found) if found else None


def _command_names(ctx: Any) -> list[str]:
    """``certs renew`` of a context: the names below the program's own."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return names[::-1]


app = typer.Typer(
    name="k8slk-ops",
    cls=RefusingGroup,
    help="Create, grow, inspect and take apart Kubernetes clusters of LinuxKit nodes over SSH.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
inventory_app = typer.Typer(help="Inventory tools.", no_args_is_help=True, cls=RefusingGroup)
app.add_typer(inventory_app, name="inventory")


def duration(value: str | float) -> float:
    """A Go duration (``90s``, ``10m``, ``1h30m``) or a bare number of seconds, as a flag."""
    try:
        return kubeadm.parse_timeout(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} (a Go duration such as 90s, 10m or 1h30m)") from None


def flag(*names: str, help: str) -> Any:
    """A boolean flag: shown without a value in help, because it takes none."""
    return typer.Option(*names, metavar="", help=help)


InventoryArg = Annotated[Path, typer.Argument(help="Inventory file (YAML, or Ansible INI).")]
# apply and plan apply: the addons taken out of cluster.addons are deleted.
PRUNE = flag("--prune", help="Delete the objects of the addons taken out of cluster.addons "
             "(known from the cluster's addon record); without it they are left, and said.")
NodeOpt = Annotated[
    list[str] | None, typer.Option("--node", help="Only this node (repeatable).")
]
# upgrade and certs renew: the etcd snapshot taken before anything changes.
SNAPSHOT_DIR = typer.Option(
    "--snapshot-dir", help="Directory for the etcd snapshot taken before the change "
    "(default: snapshots/ beside the inventory, made 0700)."
)
NO_SNAPSHOT = flag("--no-snapshot", help="Change the cluster without taking an etcd snapshot "
                   "first (no way back if the change goes wrong).")
StrictOpt = Annotated[
    bool, flag("--strict", help="Fail nodes below the image's CPU/memory minimums.")
]

MetricsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        help="Write the run's metrics here (Prometheus text, for node_exporter's textfile "
        "collector), also when it fails.",
    ),
]

# The flags every command shares: declared once, picked per command by name.
SHARED: dict[str, tuple[Any, Any]] = {
    "concurrency": (
        Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Nodes worked on at once.")],
        DEFAULT_CONCURRENCY,
    ),
    "json_out": (Annotated[bool, flag("--json", help="Print a JSON report on stdout.")], False),
    "log_file": (
        Annotated[
            Path | None, typer.Option("--log-file", help="Append a detailed, redacted log here.")
        ],
        None,
    ),
    "verbose": (Annotated[bool, flag("--verbose", "-v", help="More detail.")], False),
    "timeout": (
        Annotated[
            float,
            typer.Option(
                "--timeout",
                metavar="DURATION",
                parser=duration,
                help="How long one kubeadm run may take on a node (a Go duration such as 10m, "
                "or seconds).",
            ),
        ],
        DEFAULT_TIMEOUT,
    ),
    "dry_run": (
        Annotated[bool, flag("--dry-run", help="Show the plan; change nothing.")], False
    ),
    "break_lock": (
        Annotated[
            int,
            typer.Option(
                "--break-lock", count=True, metavar="",
                help="Remove a stale cluster lock left by a dead run (twice: even one still "
                "being renewed, or held by a live process of this host).",
            ),
        ],
        0,
    ),
    "metrics_file": (MetricsFileOpt, None),
}
# Taken by every command, whatever its ``shared=`` says.
EVERY = ("metrics_file",)
OUTPUT = ("json_out", "log_file", "verbose")
CHANGING = ("concurrency", *OUTPUT, "timeout", "dry_run", "break_lock")


def command(
    name: str | None = None, *, shared: tuple[str, ...] = OUTPUT, group: typer.Typer | None = None
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a command whose last parameter is ``shared: SharedOptions``.

    The shared flags named in ``shared`` (and those in ``EVERY``, which every command takes)
    are appended to the command's own parameters (Typer reads the signature), collected into one
    ``SharedOptions`` and passed as ``shared``. ``group``: a sub-command group (``certs``)
    to register on instead of the top level.
    """

    picked_keys = (*shared, *(k for k in EVERY if k not in shared))

    def register(func: Callable[..., None]) -> Callable[..., None]:
        own = [
            p for p in inspect.signature(func, eval_str=True).parameters.values()
            if p.name != "shared"
        ]
        added = [
            inspect.Parameter(
                key, inspect.Parameter.KEYWORD_ONLY, annotation=SHARED[key][0],
                default=SHARED[key][1],
            )
            for key in picked_keys
        ]

        @functools.wraps(func)
        def invoke(**kwargs: Any) -> None:
            picked = {key: kwargs.pop(key) for key in picked_keys}
            func(**kwargs, shared=SharedOptions(**picked))

        params = [*own, *added]
        invoke.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        invoke.__annotations__ = {p.name: p.annotation for p in params}
        (group or app).command(name, cls=RefusingCommand)(invoke)
        return func

    return register


def _load_inventory(path: Path) -> Inventory:
    try:
        return load_inventory(path)
    except InventoryError as exc:
        raise UsageError(str(exc)) from None
    except MemoryError:
        raise UsageError(f"{path}: {OUT_OF_MEMORY}") from None


OUT_OF_MEMORY = (
    "what this file describes does not fit in memory (too many nodes, hosts or values); "
    "nothing was contacted"
)


def _load_playbook(
    command_name: str, inventory_path: Path, shared: SharedOptions, load: Callable[[], Playbook]
) -> Playbook:
    """A playbook, or refused (exit 2) with its file:line errors."""
    try:
        return load()
    except UsageError as exc:
        refuse(command_name, inventory_path, shared, str(exc))
    except MemoryError:
        refuse(command_name, inventory_path, shared, f"the playbook: {OUT_OF_MEMORY}")


def _run(
    command_name: str,
    playbook: Playbook,
    inventory_path: Path,
    shared: SharedOptions,
    options: RunOptions,
    on_plan: Callable[[Reporter, Plan], None] | None = None,
) -> None:
    """Validate, run one operation, print the report, write the metrics, exit with its code.
    ``on_plan`` hears the plan before it runs (apply: printed, and asked about); it may end
    the run through ``confirm``, which says why and writes the metrics itself."""
    if shared.metrics_file is not None and (why := metrics.check_target(shared.metrics_file)):
        refuse(command_name, inventory_path, shared, why)
    redactor = Redactor()
    try:
        configure_logging(shared.verbose, shared.log_file, redactor)
        depwarnings.release()
        reporter = make_reporter(
            json=shared.json_out, log_file=shared.log_file, verbose=shared.verbose,
            redactor=redactor,
        )
    except UsageError as exc:  # a --log-file that cannot be opened safely
        refuse(command_name, inventory_path, shared, str(exc))
    code = EXIT_USAGE
    final: RunReport | None = None
    settled = False  # ended at a confirmation, which wrote the metrics
    try:
        inventory = _load_inventory(inventory_path)
        for warning in inventory.warnings:
            logging.getLogger(__name__).warning("%s", warning)
        run_options = dataclasses.replace(options, run_id=new_run_id())
        raise_nofile_limit()
        prepare_asyncssh()  # patches asyncssh where checked (K8SLK_OPS_STOCK_ASYNCSSH=1: none)
        op = Operation(
            playbook, inventory, run_options, reporter, redactor.add,
            command=command_name, break_lock=shared.break_lock,
        )
        if on_plan is not None:
            op.on_plan = functools.partial(on_plan, reporter)
        # The inventory and the modules are not scanned again and again, nor, while the report
        # is built, everything the run left behind (5,000 nodes: 0.8 s of full collections).
        with lean_gc():
            report = asyncio.run(op.run())
            if run_options.dry_run and not shared.json_out:
                reporter.show_text(str(report.data.get("planText", "")))
            reporter.finish(report)
        code = report.exit_code
        final = report
    except OpsError as exc:
        reporter.error(str(exc))
        final = _failed_report(command_name, inventory_path, exc.exit_code, str(exc))
        if shared.json_out:
            reporter.finish(final)
        code = exc.exit_code
    except KeyboardInterrupt:
        reporter.error("interrupted")
        code = EXIT_INTERRUPTED
    except typer.Exit as exc:  # refused or interrupted at a confirmation: nothing was changed
        code, settled = exc.exit_code, True
    finally:
        reporter.close()
        if final is None:  # interrupted, or crashed: the metrics still say the run failed
            ended = code if code == EXIT_INTERRUPTED else EXIT_NODE_FAILED
            final = _failed_report(command_name, inventory_path, ended, "the run did not finish")
        if not settled:
            _write_metrics(shared, final)
        release_logging()
    raise typer.Exit(code)


# Commands whose playbook and options depend on the inventory (apply): ``plan NAME`` builds
# them as the command itself does. Filled in by the command's module.
# The last argument is ``--prune`` (apply's only).
PREPARED: dict[str, Callable[[Path, SharedOptions, str, bool],
                             tuple[Playbook, RunOptions]]] = {}


def refuse(
    command_name: str, inventory_path: Path | None, shared: SharedOptions, why: str,
    *, prefix: str = "error: ",
) -> NoReturn:
    """The one way a command refuses before anything connects: the reason (``why`` says what to
    do next) on stderr, the ending in ``--metrics-file``, exit 2.

    Every refusal goes through here (a bad flag our code checks, a missing ``--yes``, a broken
    playbook or inventory), because a cron job broken this way is exactly what the alert on
    exit code 2 is for: without the file, the collector would go on showing the last good run.
    ``prefix=""`` for ``inventory check``, whose problems are its output: one file:line:column
    per line, as a linter prints them.
    """
    typer.echo(f"{prefix}{why}", err=True)
    _write_metrics(shared, _failed_report(command_name, inventory_path, EXIT_USAGE, why))
    raise typer.Exit(EXIT_USAGE)


def stdin_is_terminal() -> bool:
    """Whether someone can be asked: cron, systemd timers, CI and pipes give no terminal."""
    return sys.stdin.isatty()


def confirm(command_name: str, inventory_path: Path, shared: SharedOptions, question: str) -> None:
    """Go on only if the operator says yes to ``question``; callers skip it for ``--yes`` and
    ``--dry-run``.

    Without a terminal there is no one to ask: refused (exit 2, nothing touched), so a cron
    job that lacks ``--yes`` shows in its metrics. A "no" is refused the same way; Ctrl-C or
    the end of input at the prompt ends the run as interrupted (130), in the metrics too.
    """
    if not stdin_is_terminal():
        refuse(command_name, inventory_path, shared,
               f"{command_name} needs --yes when there is no terminal to confirm on; nothing "
               "was touched")
    try:
        agreed = typer.confirm(question)
    except typer.Abort:
        typer.echo("interrupted: nothing was touched", err=True)
        _write_metrics(shared, _failed_report(command_name, inventory_path, EXIT_INTERRUPTED,
                                              "interrupted at the confirmation"))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if not agreed:
        refuse(command_name, inventory_path, shared,
               f"{command_name} was not confirmed; nothing was touched (answer y to go on, or "
               "pass --yes)")


def _failed_report(
    command_name: str, inventory_path: Path | None, code: int, why: str
) -> RunReport:
    """The report of a run that ended before it had one of its own."""
    failed = RunReport(command=command_name, cluster="",
                       inventory="" if inventory_path is None else str(inventory_path))
    failed.exit_code = code
    failed.messages.append(why)
    if inventory_path is not None:
        with contextlib.suppress(OpsError, OSError):
            failed.cluster = _load_inventory(inventory_path).cluster.name
    return failed


def _write_metrics(shared: SharedOptions, report: RunReport) -> None:
    """``--metrics-file``, whatever the run's end; a file that cannot be written is said, and
    does not change the exit code."""
    if shared.metrics_file is None:
        return
    if (why := metrics.check_target(shared.metrics_file)) is not None:
        if why not in report.messages:  # a refusal for this very reason said it already
            typer.echo(f"error: {why}", err=True)
        return
    if report.ended is None:
        report.ended = datetime.now(UTC)
    try:
        metrics.write(shared.metrics_file, report)
    except UnsafeTarget as exc:  # a link planted after the check at the start
        typer.echo(f"error: {exc}", err=True)
    except OSError as exc:
        typer.echo(f"error: writing --metrics-file {shared.metrics_file}: {exc}", err=True)
