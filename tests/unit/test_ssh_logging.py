"""asyncssh's log calls and packet lines are skipped when nobody would read them, and still
logged when someone would; without the patch (``K8SLK_OPS_STOCK_ASYNCSSH=1``) asyncssh makes
them first, and logs the same lines."""

from __future__ import annotations

import logging

import pytest
from asyncssh.logging import SSHLogger
from asyncssh.packet import SSHPacketLogger

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


class _LoudPacket(bytes):
    """A packet that fails the test when asyncssh measures it for a log line."""

    def __len__(self) -> int:
        raise AssertionError("a packet line was made though nobody reads it")


class _Packets(SSHPacketLogger):
    """Logs packets as a connection does, to an asyncssh logger at a given debug level."""

    def __init__(self, debug_level: int) -> None:
        self._logger = SSHLogger().get_child("conn", context="conn=1")
        self._logger.set_debug_level(debug_level)

    @property
    def logger(self) -> SSHLogger:
        return self._logger


def test_a_packet_line_is_made_only_when_debug_level_3_is_logged(
    caplog: pytest.LogCaptureFixture, asyncssh_mode: AsyncsshMode
) -> None:
    with caplog.at_level(logging.DEBUG, logger="asyncssh"):
        quiet = _Packets(debug_level=1)
        if "quiet-logs" in asyncssh_mode.applied:
            quiet.log_sent_packet(94, 7, _LoudPacket(b"data"))
        else:
            with pytest.raises(AssertionError, match="packet line"):
                quiet.log_sent_packet(94, 7, _LoudPacket(b"data"))
        _Packets(debug_level=3).log_sent_packet(94, 8, b"data")
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("[conn=1, pktid=8] Sent packet type 94, 4 bytes\n")
