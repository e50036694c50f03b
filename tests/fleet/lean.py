"""asyncssh's server side as the fleet runs it: a simulated node should cost what sshd costs.

asyncssh sends an SSH_MSG_IGNORE packet before every packet once the keys are exchanged (an
extra encryption, send and, on the other side, decryption per packet: an eighth of the
fleet's CPU at 5,000 nodes). OpenSSH's sshd sends none on exec sessions, so the fleet's nodes
send none either: what a client sees of a node is unchanged, and the fleet, which shares the
machine's cores with the client under measurement, takes less of them. Applied once, to the
server connection class only; clients in the same process are untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asyncssh.connection import SSHServerConnection, SSHServerConnectionOptions
from asyncssh.constants import MSG_IGNORE


def serve_like_sshd() -> None:
    """Make every asyncssh server connection of this process skip the IGNORE packets."""
    cls: Any = SSHServerConnection
    if getattr(cls.send_packet, "_fleet_lean", False):
        return
    original = cls.send_packet

    def send_packet(self: Any, pkttype: int, *args: bytes, **kwargs: Any) -> None:
        if pkttype == MSG_IGNORE:
            return
        original(self, pkttype, *args, **kwargs)

    send_packet._fleet_lean = True  # type: ignore[attr-defined]
    cls.send_packet = send_packet


def quiet_logs() -> None:
    """asyncssh formats each log line (one per packet, too) before asking whether its level is
    on; the tool's guard for that (``k8slk_ops/ssh/patches/quiet_logs.py``, applied with the
    tool's other patches where checked) applies to the fleet's process."""
    from k8slk_ops.ssh import prepare_asyncssh

    prepare_asyncssh()


def options_in_the_loop() -> None:
    """Build server connection options in the event loop, not the default thread pool.

    asyncssh builds a listener's options, and again each connection's once its user has logged
    in (so that ``Match`` blocks of a server config file can apply), in a thread: the build may
    read files. The fleet's listeners name no config file and hold their keys in memory, so
    nothing is read; in a thread the build costs a hop there and back per login and holds the
    GIL the event loop needs (a tenth of the fleet's CPU at 5,000 logins). What a client sees
    is unchanged.
    """
    cls: Any = SSHServerConnectionOptions
    if getattr(cls.construct, "_fleet_lean", False):
        return

    async def construct(klass: Any, options: Any = None, **kwargs: Any) -> Any:
        return klass(options, loop=asyncio.get_running_loop(), **kwargs)

    construct._fleet_lean = True  # type: ignore[attr-defined]
    cls.construct = classmethod(construct)
