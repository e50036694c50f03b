"""Bootstrap tokens and certificate keys as kubeadm prints them.

``kubeadm token list`` has two forms: a table, and ``-o json``, which prints one JSON object
per token, back to back (not a JSON array). ``kubeadm init phase upload-certs`` creates a
2-hour token that only keeps the ``kubeadm-certs`` secret alive: it has no usages and must never
be handed to a joining node, which :func:`join_tokens` and :func:`pick_join_token` guarantee.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from k8slk_ops.kubeadm.errors import ParseError
from k8slk_ops.kubeadm.formats import is_certificate_key, is_token, token_id
from k8slk_ops.kubeadm.logs import log_message

CERTS_PROXY_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"
NODE_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
JOIN_USAGES = frozenset({"signing", "authentication"})
_NONE = "<none>"
_ROW_RE = re.compile(r"\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*?)\s+(\S+)\s*")
_KEY_MARK = "[upload-certs] Using certificate key:"


@dataclass(frozen=True)
class TokenInfo:
    """One bootstrap token of ``kubeadm token list``.

    ``ttl`` is as printed (``23h``, ``<forever>``, ``<invalid>`` in the table; ``23h59m0s`` in
    JSON, possibly empty); ``expires`` is None for a token that never expires.
    """

    token: str
    ttl: str
    expires: datetime | None
    usages: tuple[str, ...]
    description: str
    groups: tuple[str, ...]

    @property
    def token_id(self) -> str:
        return token_id(self.token)

    @property
    def is_certs_proxy(self) -> bool:
        """The upload-certs TTL proxy: never a join token."""
        return self.description == CERTS_PROXY_DESCRIPTION or not self.usages

    def expired(self, now: datetime | None = None) -> bool:
        if self.ttl == "<invalid>":
            return True
        if self.expires is None or now is None:
            return False
        return self.expires <= now

    def remaining(self, now: datetime) -> timedelta | None:
        """Time left, or None for a token that never expires."""
        return None if self.expires is None else self.expires - now


def parse_token(stdout: str) -> str:
    """The token printed by ``kubeadm token create`` (its last non-empty line)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines or not is_token(lines[-1]):
        raise ParseError("kubeadm token create did not print a token ([a-z0-9]{6}.[a-z0-9]{16})")
    return lines[-1]


def parse_certificate_key(stdout: str) -> str:
    """The key printed by ``kubeadm init phase upload-certs --upload-certs``.

    It is the line after ``[upload-certs] Using certificate key:``; failing that, the one line
    that is 64 hex digits.
    """
    lines = [log_message(line).strip() for line in stdout.splitlines()]
    for i, line in enumerate(lines):
        if line == _KEY_MARK:
            following = next((x for x in lines[i + 1 :] if x), "")
            if is_certificate_key(following):
                return following
            raise ParseError("the line after 'Using certificate key:' is not a certificate key")
    keys = [line for line in lines if is_certificate_key(line)]
    if len(keys) == 1:
        return keys[0]
    raise ParseError("upload-certs did not print a certificate key (64 lowercase hex digits)")


def _time(value: str) -> datetime | None:
    if value in ("", "<never>", _NONE):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(f"not an RFC 3339 time: {value!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _list(value: str) -> tuple[str, ...]:
    return () if value in ("", _NONE) else tuple(v for v in value.split(",") if v)


def _from_table(stdout: str) -> list[TokenInfo]:
    tokens = []
    for raw in stdout.splitlines():
        m = _ROW_RE.fullmatch(raw.rstrip("\r"))
        if m is None or not is_token(m[1]):
            continue
        description = m[5].strip()
        try:
            expires = _time(m[3])
        except ParseError:
            continue
        tokens.append(
            TokenInfo(
                token=m[1],
                ttl=m[2],
                expires=expires,
                usages=_list(m[4]),
                description="" if description == _NONE else description,
                groups=_list(m[6]),
            )
        )
    return tokens


def _json_objects(stdout: str) -> Iterable[Any]:
    decoder = json.JSONDecoder()
    i, n = 0, len(stdout)
    while i < n:
        while i < n and stdout[i].isspace():
            i += 1
        if i >= n:
            break
        try:
            obj, i = decoder.raw_decode(stdout, i)
        except json.JSONDecodeError as exc:
            raise ParseError(f"kubeadm token list -o json: {exc}") from None
        if isinstance(obj, list):
            yield from obj
        elif isinstance(obj, dict) and isinstance(obj.get("items"), list):
            yield from obj["items"]
        else:
            yield obj


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _from_json(stdout: str) -> list[TokenInfo]:
    tokens = []
    for obj in _json_objects(stdout):
        if not isinstance(obj, dict):
            raise ParseError("kubeadm token list -o json: expected objects")
        token = obj.get("token")
        if isinstance(token, dict):  # the structured {id, secret} form
            token = f"{token.get('id', '')}.{token.get('secret', '')}"
        if not isinstance(token, str) or not is_token(token):
            raise ParseError("kubeadm token list -o json: an entry without a valid token")
        expires = obj.get("expires")
        tokens.append(
            TokenInfo(
                token=token,
                ttl=str(obj.get("ttl") or ""),
                expires=_time(expires) if isinstance(expires, str) else None,
                usages=_strings(obj.get("usages")),
                description=str(obj.get("description") or ""),
                groups=_strings(obj.get("groups")),
            )
        )
    return tokens


def parse_token_list(stdout: str) -> list[TokenInfo]:
    """Tokens from ``kubeadm token list``, table or ``-o json``."""
    stripped = stdout.lstrip()
    if stripped.startswith(("{", "[")):
        return _from_json(stripped)
    return _from_table(stdout)


def join_tokens(tokens: Iterable[TokenInfo], now: datetime | None = None) -> list[TokenInfo]:
    """Tokens a node can join with: discovery and TLS bootstrap usages, the node group, alive.

    The upload-certs proxy token never qualifies (no usages, its own description).
    """
    return [
        t
        for t in tokens
        if not t.is_certs_proxy
        and set(t.usages) >= JOIN_USAGES
        and NODE_TOKEN_GROUP in t.groups
        and not t.expired(now)
    ]


def pick_join_token(
    tokens: Iterable[TokenInfo], now: datetime, min_remaining: timedelta = timedelta(minutes=10)
) -> TokenInfo | None:
    """The join token that stays valid longest, if one has ``min_remaining`` left."""
    best: TokenInfo | None = None
    best_left: timedelta | None = None
    for t in join_tokens(tokens, now):
        left = t.remaining(now)
        if left is not None and left < min_remaining:
            continue
        if best is None or (best_left is not None and (left is None or left > best_left)):
            best, best_left = t, left
    return best
