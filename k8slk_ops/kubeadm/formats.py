"""The shapes of kubeadm's credentials, shared by the renderer and the parsers."""

from __future__ import annotations

import re

TOKEN_RE = re.compile(r"\A([a-z0-9]{6})\.([a-z0-9]{16})\Z")
CERTIFICATE_KEY_RE = re.compile(r"\A[0-9a-f]{64}\Z")
# What kubeadm prints instead of a value under --skip-token-print / --skip-certificate-key-print.
WITHHELD = "<value withheld>"


def is_token(value: str) -> bool:
    """A bootstrap token: 6 + 16 characters of ``[a-z0-9]`` joined by a dot (id.secret)."""
    return TOKEN_RE.fullmatch(value) is not None


def token_id(token: str) -> str:
    """The public half of a token (what ``kubeadm token delete`` and logs may name)."""
    return token.split(".", 1)[0]


def is_certificate_key(value: str) -> bool:
    """A certificate key: 32 random bytes as 64 lowercase hex digits."""
    return CERTIFICATE_KEY_RE.fullmatch(value) is not None
