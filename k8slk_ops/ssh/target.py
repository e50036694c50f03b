"""Plain data of the SSH layer: where a node is and what a command returned.

These types are what the node layer sees; they carry no asyncssh objects so the layers above
stay free of the SSH library.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

HostKeyPolicy = Literal["strict", "accept-new", "pinned"]


@dataclass(frozen=True)
class SSHTarget:
    """One node and everything needed to reach it, built from the inventory."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    identity_file: Path | None = None
    known_hosts: Path | None = None
    host_key_policy: HostKeyPolicy = "strict"
    host_key_fingerprint: str | None = None  # "SHA256:..." for pinned
    jump_host: str | None = None  # [user@]host[:port]
    connect_timeout: float = 10.0
    keepalive_interval: float = 15.0
    config_file: Path | None = None  # ~/.ssh/config style; honoured when given

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def login_command(self) -> str:
        """The ``ssh`` command that reaches this node by hand, as the run dials it."""
        words = ["ssh", "-p", str(self.port)]
        if self.identity_file is not None:
            words += ["-i", str(self.identity_file)]
        if self.jump_host is not None:
            words += ["-J", self.jump_host]
        return shlex.join([*words, f"{self.user}@{self.address}"])


@dataclass(frozen=True)
class JumpHost:
    """A parsed ``[user@]host[:port]`` (IPv6 as ``[addr]:port``)."""

    host: str
    port: int = 22
    user: str | None = None

    @classmethod
    def parse(cls, spec: str) -> JumpHost:
        text = spec.strip()
        user: str | None = None
        if "@" in text:
            user, text = text.rsplit("@", 1)
            if not user:
                raise ValueError(f"bad jump host {spec!r}: empty user")
        port = 22
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep:
                raise ValueError(f"bad jump host {spec!r}: unclosed '['")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"bad jump host {spec!r}")
                port = _port(rest[1:], spec)
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = _port(port_text, spec)
        else:
            host = text
        if not host or any(c.isspace() for c in host):
            raise ValueError(f"bad jump host {spec!r}: no host")
        return cls(host=host, port=port, user=user)


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad jump host {spec!r}: port must be 1-65535")
    return int(text)


def command_line(command: str | Sequence[str]) -> str:
    """The remote command line: a string as given, an argv quoted word by word."""
    if isinstance(command, str):
        return command
    argv = list(command)
    if not argv:
        raise ValueError("empty command")
    return shlex.join(argv)


def command_label(command: str | Sequence[str], words: int = 3) -> str:
    """A short name for a command in messages and logs (its first few words)."""
    parts = command.split() if isinstance(command, str) else [str(w) for w in command]
    label = " ".join(parts[:words])
    return label + (" ..." if len(parts) > words else "")


@dataclass(frozen=True)
class CommandResult:
    """What a remote command returned. ``exit_status`` is -1 when it died of a signal."""

    exit_status: int
    stdout: bytes
    stderr: bytes
    # Bytes of each stream dropped past the cap on what is kept (``connection.MAX_KEPT``);
    # the kept text says where they were cut.
    stdout_cut: int = 0
    stderr_cut: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def text(self, errors: str = "replace") -> str:
        """stdout decoded as UTF-8."""
        return self.stdout.decode("utf-8", errors)

    def lines(self) -> list[str]:
        return self.text().splitlines()
