"""SSH keys made at run time (never stored in the repository): the lab's client key and the
host key every node makes when it boots."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    private: bytes  # OpenSSH PEM
    public: str  # "ssh-ed25519 AAAA..."


def new_ed25519(comment: str) -> KeyPair:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return KeyPair(private, f"{public} {comment}")


def write_pair(pair: KeyPair, private_path: Path) -> None:
    """Write the private key 0600 (ssh refuses anything looser) and the public key beside it."""
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pair.private)
    os.chmod(private_path, 0o600)
    Path(f"{private_path}.pub").write_text(pair.public + "\n")
