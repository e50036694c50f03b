"""PEM blocks for tests of redaction, made at run time: the repository holds no text that a
secret scanner takes for a private key."""

from __future__ import annotations


def pem_private_key(kind: str, body: str, *, end: bool = True) -> str:
    """A PEM private-key block (``kind`` RSA, EC, OPENSSH or empty for PKCS#8), with its END
    line unless ``end`` is False (a block cut short)."""
    dashes = "-" * 5
    label = " ".join(filter(None, (kind, "PRIVATE", "KEY")))
    block = f"{dashes}BEGIN {label}{dashes}\n{body}"
    return block + f"{dashes}END {label}{dashes}\n" if end else block
