"""Local files the tool writes are its own: no link followed, created 0600, clear refusals."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from k8slk_ops.errors import CannotStart, UsageError
from k8slk_ops.events import Event, EventKind
from k8slk_ops.lock import Holder, LocalLock
from k8slk_ops.redact import Redactor
from k8slk_ops.report import LogFileReporter, configure_logging


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
