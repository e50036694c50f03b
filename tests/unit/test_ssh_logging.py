"""asyncssh's log calls are skipped when their level is disabled, and still logged when not."""

from __future__ import annotations

import logging

import pytest
from asyncssh.logging import SSHLogger

from k8slk_ops.ssh.pool import _skip_disabled_asyncssh_logs


def test_an_enabled_level_is_logged_and_a_disabled_one_is_not_formatted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _skip_disabled_asyncssh_logs()
    _skip_disabled_asyncssh_logs()  # once is enough; twice changes nothing
    logger = SSHLogger().get_child("conn", context="conn=1")

    class Loud:
        def __str__(self) -> str:
            raise AssertionError("formatted though its level is disabled")

    with caplog.at_level(logging.WARNING, logger="asyncssh"):
        logger.info("Command: %s", Loud())
    with caplog.at_level(logging.INFO, logger="asyncssh"):
        logger.info("Command: %s", b"echo hi")
    assert [r.getMessage() for r in caplog.records] == ["[conn=1] Command: echo hi"]
