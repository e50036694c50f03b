"""Real keys and certificates, as kubeadm's certs and kubeconfig phases make them.

The CA is RSA 2048 as kubeadm's default (or ECDSA P-256 with ``encryptionAlgorithm:
ECDSA-P256``); leaf keys are ECDSA P-256 because an RSA key costs half a second on a busy lab
machine and nothing in the tool depends on the leaf key type. Certificates carry real names,
SANs and expiry dates (one year; ten years for CAs), so ``openssl x509`` and ``kubeadm certs
check-expiration`` see what they would on a real node.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k8sdouble import env

CERT_DAYS = 365
CA_DAYS = 3650

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class Pair:
    """A certificate and its key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)


def key_pem(key: PrivateKey) -> bytes:
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if isinstance(key, rsa.RSAPrivateKey)
           else serialization.PrivateFormat.PKCS8)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def new_key(algorithm: str = "ECDSA-P256") -> PrivateKey:
    if algorithm.startswith("RSA"):
        bits = int(algorithm.split("-")[1]) if "-" in algorithm else 2048
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return ec.generate_private_key(ec.SECP256R1())


def service_account_keys() -> tuple[bytes, bytes]:
    """sa.key and sa.pub: the key pair that signs service account tokens (ECDSA here, as the
    leaves: the same PEM shapes as kubeadm's RSA pair, made in no time)."""
    key = new_key("ECDSA-P256")
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return key_pem(key), pub


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def new_ca(cn: str, algorithm: str = "RSA-2048", days: int = CA_DAYS) -> Pair:
    key = new_key(algorithm)
    now = _now()
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pair(cert, key)


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    seen: set[str] = set()
    for n in names:
        if not n or n in seen:
            continue
        seen.add(n)
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def issue(
    ca: Pair,
    cn: str,
    orgs: tuple[str, ...] = (),
    server: bool = False,
    client: bool = True,
    sans: list[str] | None = None,
    public_key: object = None,
    days: int = CERT_DAYS,
    serial: int | None = None,
    not_after: dt.datetime | None = None,
) -> Pair:
    """A leaf certificate signed by ``ca`` (a new key unless ``public_key`` is given, as for a CSR).

    ``serial`` and ``not_after`` are for a simulated node whose clock is not the machine's and
    that tells its certificates apart by serial (the fleet): by default a random serial, valid
    ``days`` from now (never beyond the CA)."""
    key = new_key()
    pub = public_key if public_key is not None else key.public_key()
    now = _now()
    if not_after is None:
        not_after = min(now + dt.timedelta(days=days),
                        ca.cert.not_valid_after.replace(tzinfo=dt.UTC))
    else:
        now = min(now, not_after - dt.timedelta(days=days))
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca.cert.subject)
        .public_key(pub)  # type: ignore[arg-type]
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                          crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if sans:
        builder = builder.add_extension(_san(sans), critical=False)
    return Pair(builder.sign(ca.key, hashes.SHA256()), key)  # type: ignore[arg-type]


def pin(cert: x509.Certificate) -> str:
    """The CA pin: sha256 over the DER SubjectPublicKeyInfo (RFC 7469), as kubeadm computes it."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def load_pair(cert_path: str, key_path: str) -> Pair:
    cert = x509.load_pem_x509_certificate(env.path(cert_path).read_bytes())
    key = serialization.load_pem_private_key(env.path(key_path).read_bytes(), None)
    return Pair(cert, key)  # type: ignore[arg-type]


def load_cert(cert_path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(env.path(cert_path).read_bytes())


def save_pair(pair: Pair, base: str) -> None:
    """``<base>.crt`` (0644) and ``<base>.key`` (0600), as kubeadm writes them."""
    env.write_atomic(base + ".crt", pair.cert_pem, 0o644)
    env.write_atomic(base + ".key", pair.key_pem, 0o600)


def expiry(cert: x509.Certificate) -> dt.datetime:
    return cert.not_valid_after.replace(tzinfo=dt.UTC)


# --- kubeconfig files ---------------------------------------------------------------------------

def kubeconfig(
    server: str,
    ca_pem: bytes,
    cluster: str = "kubernetes",
    user: str = "kubernetes-admin",
    client: Pair | None = None,
    token: str | None = None,
) -> str:
    """A kubeconfig as kubeadm writes it: one cluster, one user, one context."""
    user_entry: dict[str, str] = {}
    if client is not None:
        user_entry["client-certificate-data"] = base64.b64encode(client.cert_pem).decode()
        user_entry["client-key-data"] = base64.b64encode(client.key_pem).decode()
    if token is not None:
        user_entry["token"] = token
    context = f"{user}@{cluster}"
    doc = {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": base64.b64encode(ca_pem).decode(),
                                  "server": server}, "name": cluster}],
        "contexts": [{"context": {"cluster": cluster, "user": user}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": user, "user": user_entry}] if user_entry else [],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def with_client(text: str, pair: Pair) -> str:
    """The kubeconfig ``text`` with its current user's client certificate and key replaced,
    the rest as it was: how kubeadm renews a kubeconfig's certificate."""
    doc = yaml.safe_load(text) or {}
    contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
    user_name = (contexts.get(doc.get("current-context", "")) or {}).get("user")
    for user in doc.get("users") or []:
        if user_name is None or user.get("name") == user_name:
            entry = user.setdefault("user", {})
            entry["client-certificate-data"] = base64.b64encode(pair.cert_pem).decode()
            entry["client-key-data"] = base64.b64encode(pair.key_pem).decode()
            break
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class KubeConfig:
    """What a client needs from a kubeconfig."""

    server: str
    ca_pem: bytes
    cert_pem: bytes | None
    key_pem: bytes | None
    token: str | None


def read_kubeconfig(text: str) -> KubeConfig:
    doc = yaml.safe_load(text) or {}
    contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
    ctx = contexts.get(doc.get("current-context", "")) or next(iter(contexts.values()), {})
    clusters = {c["name"]: c["cluster"] for c in doc.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in doc.get("users") or []}
    cluster = clusters.get(ctx.get("cluster", "")) or next(iter(clusters.values()), {})
    user = users.get(ctx.get("user", "")) or {}

    def data(key: str) -> bytes | None:
        value = user.get(key) if key.startswith("client") else cluster.get(key)
        return base64.b64decode(value) if value else None

    return KubeConfig(
        server=str(cluster.get("server", "")),
        ca_pem=data("certificate-authority-data") or b"",
        cert_pem=data("client-certificate-data"),
        key_pem=data("client-key-data"),
        token=user.get("token"),
    )


def server_host(server: str) -> str:
    """``https://10.0.0.1:6443`` -> ``10.0.0.1``."""
    hostport = server.split("://", 1)[-1].split("/", 1)[0]
    if hostport.startswith("["):
        return hostport[1:].split("]", 1)[0]
    return hostport.rsplit(":", 1)[0] if ":" in hostport else hostport


def files_exist(*paths: str) -> bool:
    return all(env.path(p).exists() for p in paths)


def remove(*paths: str) -> None:
    for p in paths:
        target: Path = env.path(p)
        if target.is_file() or target.is_symlink():
            target.unlink()
