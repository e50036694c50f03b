"""Errors of the SSH layer, worded for the operator who has to act on them.

Each one names the node and its address; the host-key errors also explain that LinuxKit nodes
make new host keys at every boot, and give the exact commands that resolve the situation once
the new key has been checked on the node's console.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from k8slk_ops.base.nextstep import NextStep


class SSHError(Exception):
    """Anything that went wrong reaching a node or running a command on it."""


def host_entry_name(address: str, port: int) -> str:
    """The name known_hosts uses: ``addr`` on port 22, ``[addr]:port`` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


def forget_key_command(address: str, port: int, known_hosts: Path | None) -> str:
    """``ssh-keygen -R ENTRY -f KNOWN_HOSTS``: removes the node's old key lines."""
    kh = str(known_hosts) if known_hosts is not None else "~/.ssh/known_hosts"
    return f"ssh-keygen -R {shlex.quote(host_entry_name(address, port))} -f {kh}"


def _host_key_advice(address: str, port: int, known_hosts: Path | None, presented: str) -> str:
    return (
        "LinuxKit nodes generate new SSH host keys at every boot, so a reboot or a re-image "
        "changes this key; a changed key can also mean someone is intercepting the connection.\n"
        "Check the presented fingerprint on the node's console "
        "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then either:\n"
        f"  - forget the old key: `{forget_key_command(address, port, known_hosts)}` and re-run with "
        "hostKeyPolicy: accept-new, or\n"
        f"  - pin the new key: hostKeyPolicy: pinned, hostKeyFingerprint: {presented}"
    )


class HostKeyError(SSHError):
    """The node's host key was refused; never retried."""

    def __init__(
        self,
        message: str,
        *,
        node: str,
        address: str,
        port: int,
        presented: str,
        expected: tuple[str, ...],
        known_hosts: Path | None,
    ) -> None:
        super().__init__(message)
        self.node = node
        self.address = address
        self.port = port
        self.presented = presented
        self.expected = expected
        self.known_hosts = known_hosts

    def next_step(self, rerun: str) -> NextStep:
        """Check the new key, forget the old one, accept the new one once: a run with
        ``accept-new`` records the key it meets and checks it from then on. A run that reboots
        nodes itself (upgrade) accepts their new keys with ``ssh.hostKeyAfterReboot: accept``."""
        forget = forget_key_command(self.address, self.port, self.known_hosts)
        return NextStep(
            "check on the node's console that its key is the one presented "
            f"(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints {self.presented}); "
            f"forget the old key: `{forget}`; then accept the new key once: run `{rerun}` with "
            "ssh.hostKeyPolicy: accept-new for this node in the inventory (it records the key "
            "and checks it from then on; reboots a run makes itself: "
            "ssh.hostKeyAfterReboot: accept)",
            forget,
        )


class HostKeyMismatch(HostKeyError):
    """The node presented a host key other than the one we trust for it."""

    @classmethod
    def build(
        cls,
        *,
        node: str,
        address: str,
        port: int,
        presented: str,
        expected: tuple[str, ...],
        known_hosts: Path | None,
        source: str,
        label: str | None = None,
    ) -> HostKeyMismatch:
        want = ", ".join(expected) or "(none)"
        message = (
            f"Host key of {label or 'node ' + node} ({address}:{port}) does not match {source}.\n"
            f"  expected:  {want}\n"
            f"  presented: {presented}\n" + _host_key_advice(address, port, known_hosts, presented)
        )
        return cls(
            message,
            node=node,
            address=address,
            port=port,
            presented=presented,
            expected=expected,
            known_hosts=known_hosts,
        )


class HostKeyUnknown(HostKeyError):
    """Policy ``strict`` and known_hosts has no entry for the node."""

    @classmethod
    def build(
        cls,
        *,
        node: str,
        address: str,
        port: int,
        presented: str,
        known_hosts: Path | None,
        label: str | None = None,
    ) -> HostKeyUnknown:
        entry = host_entry_name(address, port)
        message = (
            f"Host key of {label or 'node ' + node} ({address}:{port}) is unknown: {known_hosts} has no entry "
            f"for {entry} and hostKeyPolicy is strict.\n"
            f"  presented: {presented}\n" + _host_key_advice(address, port, known_hosts, presented)
        )
        return cls(
            message,
            node=node,
            address=address,
            port=port,
            presented=presented,
            expected=(),
            known_hosts=known_hosts,
        )


class AuthenticationFailed(SSHError):
    """The node refused every key we offered; never retried."""


class Unreachable(SSHError):
    """No SSH session after every attempt; ``cause`` is the last underlying error."""

    def __init__(self, message: str, *, cause: BaseException, attempts: int) -> None:
        super().__init__(message)
        self.cause = cause
        self.attempts = attempts


class CommandTimeout(SSHError):
    """A command did not finish in time; its channel was closed and the process signalled."""

    def __init__(self, message: str, *, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


class ConnectionLost(SSHError):
    """An established connection broke while a command ran (the node rebooted or vanished)."""


def next_step(exc: SSHError, *, login: str, rerun: str) -> NextStep:
    """What to do about a node the run could not reach or lost (``login`` is the ``ssh``
    command that reaches it by hand, ``rerun`` the tool's command to run afterwards)."""
    if isinstance(exc, HostKeyError):
        return exc.next_step(rerun)
    if isinstance(exc, AuthenticationFailed):
        return NextStep.then(
            "the node refused the keys offered: check ssh.identityFile in the inventory and the "
            f"node's authorized keys (`{login}` must log in)", rerun)
    if isinstance(exc, CommandTimeout | ConnectionLost):
        return NextStep.then(
            f"the node stopped answering mid-command (rebooted, or its network dropped): check "
            f"it is up and `{login}` logs in", rerun)
    return NextStep.then(
        f"bring the node up (powered on, sshd and network answering: `{login}` must log in)",
        rerun)

