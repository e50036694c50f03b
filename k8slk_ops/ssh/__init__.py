"""SSH to LinuxKit nodes: one checked, kept-alive connection per node, shared by the whole run.

Nodes run OpenSSH as root, key only, with no SFTP subsystem and host keys that change at every
boot. This package is the only place that knows asyncssh; the node layer sees ``SSHTarget``,
``Connection``, ``CommandResult``, ``SSHPool`` and the errors below.
"""

from k8slk_ops.ssh.connection import Connection
from k8slk_ops.ssh.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyError,
    HostKeyMismatch,
    HostKeyUnknown,
    SSHError,
    Unreachable,
    next_step,
)
from k8slk_ops.ssh.hostkeys import fingerprint
from k8slk_ops.ssh.limits import raise_nofile_limit
from k8slk_ops.ssh.pool import PoolStats, RetryPolicy, SSHPool, prepare_asyncssh
from k8slk_ops.ssh.target import CommandResult, HostKeyPolicy, JumpHost, SSHTarget

__all__ = [
    "AuthenticationFailed",
    "CommandResult",
    "CommandTimeout",
    "Connection",
    "ConnectionLost",
    "HostKeyError",
    "HostKeyMismatch",
    "HostKeyPolicy",
    "HostKeyUnknown",
    "JumpHost",
    "PoolStats",
    "RetryPolicy",
    "SSHError",
    "SSHPool",
    "SSHTarget",
    "Unreachable",
    "fingerprint",
    "next_step",
    "prepare_asyncssh",
    "raise_nofile_limit",
]
