"""asyncssh asks its logger whether a level is enabled *before* it formats a message.

asyncssh turns every log call's arguments into text first (about 30 calls per connection, a
few microseconds each) and formats a line for every packet sent or received whatever its debug
level (about 50 per connection): at a thousand nodes, a tenth of the client's CPU for lines
nobody reads. Wrapped here, behaviour unchanged when the levels are enabled.

Replaces ``SSHLogger.log`` and ``SSHPacketLogger._log_packet`` (every asyncssh logger of the
process, clients and servers alike): it relies on every log call going through the one and every
packet line through the other, and on ``_debug_level`` being the packet lines' debug level.
"""

from __future__ import annotations

import logging
from typing import Any

from k8slk_ops.ssh.patches.base import Patch, Replacement

# asyncssh releases this was checked against (tests/unit/test_ssh_logging.py passed on each).
CHECKED = frozenset({"2.24.1"})


def _make() -> list[Replacement]:
    # asyncssh's internal modules, imported only on a release this was checked against.
    from asyncssh import logging as ssh_logging
    from asyncssh import packet as ssh_packet

    logger_cls: Any = ssh_logging.SSHLogger
    packet_logger_cls: Any = ssh_packet.SSHPacketLogger
    original_log = logger_cls.log
    original_packet = packet_logger_cls._log_packet

    def log(self: Any, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.logger.isEnabledFor(level):
            original_log(self, level, msg, *args, **kwargs)

    def log_packet(self: Any, *args: Any, **kwargs: Any) -> None:
        logger = self.logger
        if logger._debug_level >= 3 and logger.logger.isEnabledFor(logging.DEBUG):
            original_packet(self, *args, **kwargs)

    return [Replacement(logger_cls, "log", log),
            Replacement(packet_logger_cls, "_log_packet", log_packet)]


PATCH = Patch(
    name="quiet-logs",
    purpose="asyncssh's disabled log lines are not formatted",
    checked=CHECKED,
    make=_make,
)
