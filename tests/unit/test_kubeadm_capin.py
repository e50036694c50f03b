"""The CA pin, checked against the openssl pipeline from kubeadm's documentation."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from k8slk_ops.kubeadm import ParseError, ca_cert_hash, is_ca_cert_hash

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def make_ca(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """A self-signed CA certificate like kubeadm's, made at test time (no key on disk)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def openssl_pin(pem_path: Path, key_tool: list[str]) -> str:
    """`openssl x509 -pubkey | openssl <rsa|pkey> -pubin -outform der | openssl dgst -sha256`."""
    pub = subprocess.run(
        ["openssl", "x509", "-pubkey", "-in", str(pem_path)],
        check=True,
        capture_output=True,
    ).stdout
    der = subprocess.run(
        ["openssl", *key_tool, "-pubin", "-outform", "der"],
        input=pub,
        check=True,
        capture_output=True,
    ).stdout
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hex"], input=der, check=True, capture_output=True
    ).stdout.decode()
    return "sha256:" + digest.strip().split(" ")[-1]


@pytest.fixture(scope="module")
def rsa_ca() -> bytes:
    return make_ca(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ecdsa_ca() -> bytes:
    return make_ca(ec.generate_private_key(ec.SECP256R1()))


def test_rsa_pin_matches_openssl(rsa_ca: bytes, tmp_path: Path) -> None:
    path = tmp_path / "ca.crt"
    path.write_bytes(rsa_ca)
    expected = openssl_pin(path, ["rsa"])
    assert ca_cert_hash(rsa_ca) == expected
    assert is_ca_cert_hash(expected)


def test_ecdsa_pin_matches_openssl(ecdsa_ca: bytes, tmp_path: Path) -> None:
    path = tmp_path / "ca.crt"
    path.write_bytes(ecdsa_ca)
    expected = openssl_pin(path, ["pkey"])
    assert ca_cert_hash(ecdsa_ca) == expected


def test_pin_accepts_str_der_and_surrounding_text(rsa_ca: bytes) -> None:
    pin = ca_cert_hash(rsa_ca)
    assert ca_cert_hash(rsa_ca.decode()) == pin
    der = x509.load_pem_x509_certificate(rsa_ca).public_bytes(serialization.Encoding.DER)
    assert ca_cert_hash(der) == pin
    assert ca_cert_hash(b"subject=CN = kubernetes\n" + rsa_ca) == pin


def test_different_keys_give_different_pins(rsa_ca: bytes, ecdsa_ca: bytes) -> None:
    assert ca_cert_hash(rsa_ca) != ca_cert_hash(ecdsa_ca)


def test_garbage_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        ca_cert_hash(b"not a certificate")
    with pytest.raises(ParseError):
        ca_cert_hash(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("sha256:" + "0" * 64, True),
        ("sha256:" + "a" * 64, True),
        ("sha256:" + "A" * 64, False),
        ("sha256:" + "0" * 63, False),
        ("sha256:" + "0" * 65, False),
        ("sha1:" + "0" * 64, False),
        ("0" * 64, False),
        ("sha256:" + "0" * 64 + "\n", False),
    ],
)
def test_is_ca_cert_hash(value: str, ok: bool) -> None:
    assert is_ca_cert_hash(value) is ok
