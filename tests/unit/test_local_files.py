"""Local files the tool writes are its own: no link followed, created 0600, clear refusals."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from k8slk_ops.base.errors import CannotStart, UsageError
from k8slk_ops.cluster.lock import Holder, LocalLock
from k8slk_ops.output.events import Event, EventKind, RunReport
from k8slk_ops.output.redact import Redactor
from k8slk_ops.output.report import LogFileReporter, configure_logging


def _lock(tmp_path: Path) -> LocalLock:
    return LocalLock("lab@10.0.0.11:6443", Holder.me("r1", "bootstrap"), tmp_path)


def test_the_local_lock_does_not_follow_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "precious"
    victim.write_text("keep me\n")
    lock = _lock(tmp_path)
    lock.path.parent.mkdir(parents=True)
    lock.path.symlink_to(victim)
    with pytest.raises(CannotStart, match="symbolic link"):
        lock.acquire()
    assert victim.read_text() == "keep me\n"


def test_the_local_lock_refuses_a_file_that_is_not_regular(tmp_path: Path) -> None:
    lock = _lock(tmp_path)
    lock.path.parent.mkdir(parents=True)
    os.mkfifo(lock.path)
    with pytest.raises(CannotStart, match="not a regular file"):
        lock.acquire()


def test_the_local_lock_is_created_0600_and_works(tmp_path: Path) -> None:
    lock = _lock(tmp_path)
    lock.acquire()
    try:
        assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
        assert "r1" in lock.path.read_text()
    finally:
        lock.release()


def test_a_log_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "precious"
    victim.write_text("keep me\n")
    link = tmp_path / "run.log"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        LogFileReporter(link, Redactor())
    with pytest.raises(UsageError, match="symbolic link"):
        configure_logging(False, link, Redactor())
    assert victim.read_text() == "keep me\n"


def test_an_existing_log_file_with_a_looser_mode_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_text("earlier run\n")
    os.chmod(path, 0o644)
    reporter = LogFileReporter(path, Redactor())
    reporter.emit(Event("w-1", "join", EventKind.OK))
    reporter.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("earlier run\n")


def test_a_log_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "run.log"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        LogFileReporter(fifo, Redactor())


def test_a_log_file_in_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot open the log file"):
        LogFileReporter(tmp_path / "no" / "run.log", Redactor())


def test_logging_to_the_file_escapes_and_redacts(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    configure_logging(False, path, Redactor())
    logging.getLogger("k8slk_ops.test").warning("node said \x1b[2J --token abcdef.0123456789abcdef")
    for handler in logging.getLogger("k8slk_ops").handlers:
        handler.flush()
    text = path.read_text()
    assert "\x1b" not in text and "abcdef.0123456789abcdef" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- files replaced whole: --metrics-file, kubeconfig, known_hosts (k8slk_ops.base.localfile) ---

def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "elsewhere" / "shadow"
    victim.parent.mkdir()
    victim.write_text("root secret\n")
    victim.chmod(0o600)
    return victim


def _metrics_report() -> RunReport:
    report = RunReport("certs check", "lab", "inv.yml")
    report.exit_code = 0
    return report


def test_metrics_never_write_through_a_link_planted_at_the_old_temporary_name(
    tmp_path: Path,
) -> None:
    from k8slk_ops.output import metrics

    victim = _victim(tmp_path)
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    (textfile / "k8slk.prom.tmp").symlink_to(victim)
    metrics.write(textfile / "k8slk.prom", _metrics_report())
    assert victim.read_text() == "root secret\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert stat.S_IMODE((textfile / "k8slk.prom").stat().st_mode) == 0o644
    assert "k8slk_ops_run_result" in (textfile / "k8slk.prom").read_text()
    assert sorted(p.name for p in textfile.iterdir()) == ["k8slk.prom", "k8slk.prom.tmp"]


def test_a_metrics_file_that_is_a_link_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    from k8slk_ops.base import localfile
    from k8slk_ops.output import metrics

    victim = _victim(tmp_path)
    link = tmp_path / "k8slk.prom"
    link.symlink_to(victim)
    why = metrics.check_target(link)
    assert why is not None and "symbolic link" in why and "Name the file itself" in why
    with pytest.raises(localfile.UnsafeTarget, match="refusing to write through it"):
        metrics.write(link, _metrics_report())
    assert victim.read_text() == "root secret\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert link.is_symlink()


def test_inventory_check_with_a_linked_metrics_file_exits_2_and_says_what_to_do(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from k8slk_ops.cli.main import app

    victim = _victim(tmp_path)
    inv = tmp_path / "inv.yml"
    inv.write_text("cluster: {name: lab}\nnodes:\n"
                   "  - {name: cp-1, address: 10.0.0.11, role: control-plane}\n")
    link = tmp_path / "k8slk.prom"
    link.symlink_to(victim)
    out = CliRunner().invoke(app, ["inventory", "check", str(inv), "--metrics-file", str(link)])
    assert out.exit_code == 2, out.output
    assert "is a symbolic link" in out.output and "remove the link" in out.output
    assert victim.read_text() == "root secret\n"


def test_the_metrics_of_an_earlier_run_are_not_read_through_a_link_nor_from_a_fifo(
    tmp_path: Path,
) -> None:
    from k8slk_ops.base import localfile

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(_victim(tmp_path))
    assert localfile.read_own(fifo, 1 << 20) is None  # returns at once, no writer needed
    assert localfile.read_own(link, 1 << 20) is None
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    assert localfile.read_own(big, 10) is None


def test_one_writer_for_every_replaced_file(tmp_path: Path) -> None:
    """A kubeconfig is written through a link on purpose (the link stays); a FIFO or a device
    at any target is refused; the temporary file is never left behind."""
    from k8slk_ops.base import localfile
    from k8slk_ops.cluster import kubeconfig

    real = tmp_path / "dotfiles" / "config"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "config"
    link.symlink_to(real)
    assert kubeconfig.write_private(link, "new\n") == real
    assert link.is_symlink() and real.read_text() == "new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(localfile.UnsafeTarget, match="not a regular file"):
        localfile.replace(fifo, b"x", 0o644)
    with pytest.raises(kubeconfig.KubeconfigError, match="not a regular file"):
        kubeconfig.write_private(fifo, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "dotfiles", "fifo"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["config"]
