"""Log in with a public key in one round trip instead of three.

asyncssh's client, like ssh(1), logs in with three request/answer pairs: a ``none`` request to
learn which methods the server takes, a public-key *query* (is this key acceptable?), and only
then the request signed with that key. RFC 4252 lets a client send the signed request at once
(section 7: the query is optional) and start with any method (section 5.2: ``none`` merely lists
the methods). A LinuxKit node takes a public key and nothing else, so both questions have known
answers: here the first request is the signed one. Each pair saved is two packets encrypted,
sent, received and decrypted on both ends, and a round trip of wall time at a distant site.

The query exists so that a key is not *used* before the server says it would take it, which
matters when using it is costly or visible: a key held by ssh-agent (one agent round trip per
signature, perhaps a confirmation prompt), a security key (a touch per signature), a key
decrypted on first use, a PKCS#11 token. Those are still queried first, exactly as before; only
a software key already in memory (``SSHLocalKeyPair`` signing inline) signs straight away. A key
the server refuses costs one signature and is followed by the next key, as after a refused
query; when no key is taken the error is the same "Permission denied". A refusing server learns
that the key is held, not only offered; the signature covers this session's exchange hash, so
it cannot be replayed to another server or session.

Replaces ``SSHClientConnection.try_next_auth`` and ``_ClientPublicKeyAuth._start`` (the client
only): it relies on asyncssh's order of methods starting from ``none``, and on how its public-key
method sends a query and a signed request.
"""

from __future__ import annotations

from typing import Any

import asyncssh

from k8slk_ops.ssh.patches.base import Patch, Replacement

# asyncssh releases this was checked against (tests/unit/test_ssh_direct_auth.py passed on each).
CHECKED = frozenset({"2.24.1"})


def signs_inline(keypair: object) -> bool:
    """A software key in this process whose signature costs only CPU (no agent, token,
    touch or passphrase), so signing before the server says it would take it costs nothing."""
    from asyncssh.public_key import SSHLocalKeyPair  # an internal class: imported where used

    return type(keypair) is SSHLocalKeyPair and not keypair.use_executor


def _make() -> list[Replacement]:
    """Start client logins with a public key, signed at once when ``signs_inline``."""
    # asyncssh's internal modules, imported only on a release this was checked against.
    from asyncssh import auth as ssh_auth
    from asyncssh.packet import Boolean, String

    conn_cls: Any = asyncssh.SSHClientConnection
    original_next = conn_cls.try_next_auth
    pubkey_cls: Any = ssh_auth._ClientPublicKeyAuth

    def try_next_auth(self: Any, *, next_method: bool = False) -> None:
        # asyncssh begins with "none" to learn the methods; a refused public key brings the
        # same list back, and asyncssh goes on from it as it would have from "none".
        if self._auth is None and self._auth_methods == [b"none"] and self._public_key_auth:
            self._auth_methods = [b"publickey"]
        original_next(self, next_method=next_method)

    async def start(self: Any) -> None:
        conn = self._conn
        keypair = await conn.public_key_auth_requested()
        if keypair is None:
            conn.try_next_auth(next_method=True)
            return
        self._keypair = keypair
        if not signs_inline(keypair):
            self.logger.debug1("Trying public key auth with %s key", keypair.algorithm)
            await self.send_request(
                Boolean(False),
                String(keypair.algorithm),
                String(keypair.public_data),
            )
            return
        await self._send_signed_request()

    return [Replacement(conn_cls, "try_next_auth", try_next_auth),
            Replacement(pubkey_cls, "_start", start)]


PATCH = Patch(
    name="direct-auth",
    purpose="a login in one signed public-key request",
    checked=CHECKED,
    make=_make,
)
