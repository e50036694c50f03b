"""asyncssh's log calls are skipped when their level is disabled, and still logged when not;
without the patch (``K8SLK_OPS_STOCK_ASYNCSSH=1``) asyncssh turns their arguments into text
first, and logs the same lines."""

from __future__ import annotations

import logging

import pytest
from asyncssh.logging import SSHLogger

from tests.conftest import AsyncsshMode


class _LoudBytes(bytes):
    """An argument that fails the test when asyncssh turns it into text."""

    def decode(self, *args: object, **kwargs: object) -> str:
        raise AssertionError("formatted though its level is disabled")


def test_an_enabled_level_is_logged_and_a_disabled_one_is_not_formatted(
    caplog: pytest.LogCaptureFixture, asyncssh_mode: AsyncsshMode
) -> None:
    logger = SSHLogger().get_child("conn", context="conn=1")
    with caplog.at_level(logging.WARNING, logger="asyncssh"):
        if "quiet-logs" in asyncssh_mode.applied:
            logger.info("Command: %s", _LoudBytes(b"echo secret"))
        else:
            with pytest.raises(AssertionError, match="formatted"):
                logger.info("Command: %s", _LoudBytes(b"echo secret"))
    with caplog.at_level(logging.INFO, logger="asyncssh"):
        logger.info("Command: %s", b"echo hi")
    assert [r.getMessage() for r in caplog.records] == ["[conn=1] Command: echo hi"]
