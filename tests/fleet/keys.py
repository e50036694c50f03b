"""The client key the tool logs in with, made at run time and never stored in the repository."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fleet.layout import write_atomic


def write_client_key(path: Path, comment: str = "k8slk-fleet") -> str:
    """An ed25519 key pair at ``path`` (0600) and ``path.pub``; returns the public line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    write_atomic(path, private, 0o600)
    write_atomic(Path(f"{path}.pub"), f"{public} {comment}\n", 0o644)
    return public
