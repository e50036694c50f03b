"""The CA pin: ``sha256:`` + hex SHA-256 of the CA certificate's DER SubjectPublicKeyInfo.

This is what ``--discovery-token-ca-cert-hash`` and ``caCertHashes`` carry (an RFC 7469 pin).
A joining node that checks it cannot be fooled by a rogue API server; the old automation skipped
it, and this tool never does. The pin is public: it identifies the CA, it grants nothing.
"""

from __future__ import annotations

import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from k8slk_ops.kubeadm.errors import ParseError

_PIN_RE = re.compile(r"sha256:[0-9a-f]{64}")
_PEM_CERT_RE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL
)


def is_ca_cert_hash(value: str) -> bool:
    """True for ``sha256:`` followed by exactly 64 lowercase hex digits."""
    return _PIN_RE.fullmatch(value) is not None


def _load(cert: bytes) -> x509.Certificate:
    m = _PEM_CERT_RE.search(cert)
    try:
        if m is not None:
            return x509.load_pem_x509_certificate(m.group(0))
        return x509.load_der_x509_certificate(cert)
    except ValueError as exc:
        raise ParseError(f"not a readable X.509 certificate: {exc}") from None


def ca_cert_hash(cert: bytes | str) -> str:
    """The pin of a CA certificate given as PEM (the first certificate in it) or DER.

    Works for any key type the certificate carries (RSA, ECDSA, Ed25519): the hash is over the
    encoded SubjectPublicKeyInfo, not over a particular key form.
    """
    data = cert.encode() if isinstance(cert, str) else cert
    spki = _load(data).public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()
