"""Client keys and connection options, built once and shared by every connection that needs them.

Loading a private key costs real CPU (about 90 ms for RSA) and asyncssh would otherwise load the
default keys again at every connect, so keys are read once per distinct identity file and one
``SSHClientConnectionOptions`` is built per distinct set of settings. Per-connection values
(host, port, tunnel, host-key algorithms, the host-key checker) are passed as overrides at
connect time, which asyncssh layers over the shared options without reloading anything.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.config import SSHClientConfig
from asyncssh.encryption import get_default_encryption_algs
from asyncssh.public_key import load_default_keypairs

from k8slk_ops.ssh.errors import AuthenticationFailed
from k8slk_ops.ssh.patches.derived_options import mark_file_free
from k8slk_ops.ssh.target import SSHTarget

# known_hosts as "no trusted keys": asyncssh then asks our client object about every key.
NO_TRUSTED_KEYS: tuple[list[Any], list[Any], list[Any]] = ([], [], [])

# AES-GCM first, then asyncssh's defaults. OpenSSH prefers chacha20-poly1305, which is fast in C
# but costs asyncssh a cipher set-up per packet in Python: with AES-GCM (hardware AES, one call
# per packet) a thousand-node bootstrap spends a third less CPU in the client (29 s to 19 s).
# Only when the inventory names no ssh_config file: a ``Ciphers`` line there is the operator's.
# Written out as the whole list (AES-GCM, then asyncssh's defaults in their order), not as the
# pattern "^aes128-gcm@openssh.com,...": asyncssh expands a pattern against every cipher it
# knows each time it builds a connection's options (32 glob matches a connection).
_FIRST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
PREFERRED_CIPHERS: list[str] = [
    *_FIRST_CIPHERS,
    *(name for alg in get_default_encryption_algs() if (name := alg.decode()) not in _FIRST_CIPHERS),
]


# A LinuxKit node takes a public key and nothing else, and no command here wants a terminal:
# asyncssh is told so once, rather than offering GSS, keyboard-interactive, passwords and
# host-based logins it would try (and pay for) on every connection.
KEY_ONLY: dict[str, Any] = {
    "x509_trusted_certs": None,
    "gss_kex": False,
    "gss_auth": False,
    "kbdint_auth": False,
    "password_auth": False,
    "host_based_auth": False,
    "request_pty": False,
}

@dataclass(frozen=True)
class ClientSettings:
    """Everything shared options depend on; targets with equal settings share one object."""

    user: str
    identity_file: Path | None
    config_file: Path | None
    connect_timeout: float
    keepalive_interval: float

    @classmethod
    def of(cls, target: SSHTarget, user: str | None = None) -> ClientSettings:
        return cls(
            user=user or target.user,
            identity_file=target.identity_file.expanduser() if target.identity_file else None,
            config_file=target.config_file.expanduser() if target.config_file else None,
            connect_timeout=target.connect_timeout,
            keepalive_interval=target.keepalive_interval,
        )

    def config_paths(self) -> list[str]:
        """The config files to read; never an implicit ~/.ssh/config."""
        return [str(self.config_file)] if self.config_file else []


def _load_keys(identity_file: Path | None) -> list[asyncssh.SSHKeyPair]:
    if identity_file is None:
        # Like ssh(1) without -i: the default key files (ssh-agent is used as well).
        return list(load_default_keypairs())
    try:
        return list(asyncssh.load_keypairs([str(identity_file)]))
    except (OSError, asyncssh.KeyImportError) as exc:
        raise AuthenticationFailed(
            f"cannot use identity file {identity_file}: {exc}. Give an unencrypted key, or load "
            "it into ssh-agent and leave identityFile unset."
        ) from exc


def _config_identities(settings: ClientSettings, host: str, port: int) -> list[Path]:
    """IdentityFile entries the config file gives for ``host`` (``~`` and ``%`` expanded)."""
    assert settings.config_file is not None
    config = SSHClientConfig.load(
        None,
        [str(settings.config_file)],
        False,
        False,
        False,
        getpass.getuser(),
        settings.user,
        host,
        port,
    )
    found = config.get("IdentityFile", [])
    paths = [Path(str(p)).expanduser() for p in found] if isinstance(found, list) else []
    return [p for p in paths if p.exists()]  # like ssh(1): a missing IdentityFile is skipped


def config_proxy_jump(config_file: Path, user: str, host: str, port: int) -> str | None:
    """The ProxyJump the config file gives for ``host``, if any (``none`` is none).

    The connection pool dials a jump host itself, with the inventory's known_hosts file and
    host-key policy; left to asyncssh, a ProxyJump read from the config would be dialled with
    its defaults (``~/.ssh/known_hosts``, no policy of ours). So the target carries it instead.
    """
    config = SSHClientConfig.load(
        None, [str(config_file)], False, False, False, getpass.getuser(), user, host, port
    )
    jump = config.get("ProxyJump")
    if not isinstance(jump, str) or not jump.strip() or jump.strip().lower() == "none":
        return None
    return jump.strip()


class OptionsCache:
    """Keys per identity file and options per settings, each built once (in a worker thread)."""

    def __init__(self) -> None:
        self._keys: dict[Path | None, asyncio.Task[list[asyncssh.SSHKeyPair]]] = {}
        self._options: dict[ClientSettings, asyncio.Task[asyncssh.SSHClientConnectionOptions]] = {}
        self.keys_loaded = 0
        self.options_built = 0

    async def keys(self, identity_file: Path | None) -> list[asyncssh.SSHKeyPair]:
        task = self._keys.get(identity_file)
        if task is None or (task.done() and task.exception() is not None):
            self.keys_loaded += 1
            task = asyncio.ensure_future(asyncio.to_thread(_load_keys, identity_file))
            self._keys[identity_file] = task
        return await asyncio.shield(task)

    async def options(self, settings: ClientSettings) -> asyncssh.SSHClientConnectionOptions:
        task = self._options.get(settings)
        if task is None or (task.done() and task.exception() is not None):
            self.options_built += 1
            task = asyncio.ensure_future(self._build(settings))
            self._options[settings] = task
        return await asyncio.shield(task)

    async def keys_for(
        self, settings: ClientSettings, host: str, port: int
    ) -> list[asyncssh.SSHKeyPair]:
        """The client keys for one host: the identity file, else the config file's
        IdentityFile for that host, else the default keys; each set loaded once."""
        if settings.identity_file is not None or settings.config_file is None:
            return await self.keys(settings.identity_file)
        paths = await asyncio.to_thread(_config_identities, settings, host, port)
        if not paths:
            return await self.keys(None)
        loaded = [await self.keys(path) for path in paths]
        return [key for keys in loaded for key in keys]

    async def _build(self, settings: ClientSettings) -> asyncssh.SSHClientConnectionOptions:
        keys = await self.keys_for(settings, "", 22)
        extra: dict[str, Any] = {}
        if settings.config_file is None:
            extra["encryption_algs"] = PREFERRED_CIPHERS
        options = await asyncio.to_thread(
            functools.partial(asyncssh.SSHClientConnectionOptions, **extra),
            username=settings.user,
            client_keys=keys,
            agent_identities=None,  # offer every agent key; do not read ~/.ssh/*.pub each time
            known_hosts=NO_TRUSTED_KEYS,
            config=settings.config_paths(),
            connect_timeout=settings.connect_timeout,
            keepalive_interval=settings.keepalive_interval,
            keepalive_count_max=3,
            **KEY_ONLY,
        )
        if settings.config_file is None:
            mark_file_free(options)  # rebuilt per connection without reading a file
        return options

    def clear(self) -> None:
        for task in [*self._keys.values(), *self._options.values()]:
            task.cancel()
        self._keys.clear()
        self._options.clear()
