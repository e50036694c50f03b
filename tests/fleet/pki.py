"""The fleet's cluster CA: one real certificate authority, made with cryptography at start.

``kubeadm init`` on a simulated node "writes" this CA as ca.crt, and a join checks the CA pin
it is given against it exactly as kubeadm does (SHA-256 over the DER SubjectPublicKeyInfo), so
a tool that pins the wrong thing fails here as it would on a real cluster.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ClusterPKI:
    ca_pem: bytes
    admin_cert_pem: bytes
    admin_key_pem: bytes
    not_after: dt.datetime  # of the admin certificate
    # The files under /etc/kubernetes/pki that init makes once and a control plane's join
    # copies (kubeadm-certs): the three CAs and the service-account key pair.
    authorities: dict[str, bytes] = field(default_factory=dict)

    @property
    def ca_hash(self) -> str:
        return ca_cert_hash(self.ca_pem)


def ca_cert_hash(pem: bytes) -> str:
    """kubeadm's ``--discovery-token-ca-cert-hash``: sha256 of the CA's DER SPKI."""
    cert = x509.load_pem_x509_certificate(pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def make_pki(now: dt.datetime | None = None) -> ClusterPKI:
    """An RSA-2048 CA valid ten years (as kubeadm makes it) and an admin client certificate."""
    now = now or dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    admin_key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + dt.timedelta(days=365)
    admin = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kubeadm:cluster-admins"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-admin"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(admin_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .sign(ca_key, hashes.SHA256())
    )
    return ClusterPKI(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        admin_cert_pem=admin.public_bytes(serialization.Encoding.PEM),
        admin_key_pem=admin_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
        not_after=not_after,
        authorities={"ca.crt": ca.public_bytes(serialization.Encoding.PEM),
                     "ca.key": _key_pem(ca_key), **_authorities(now)},
    )


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _authorities(now: dt.datetime) -> dict[str, bytes]:
    """front-proxy-ca, etcd/ca (self-signed, ten years) and sa.key/sa.pub, as kubeadm makes
    them (EC keys here: quick to make, the same PEM shapes)."""
    files: dict[str, bytes] = {}
    for base, cn in (("front-proxy-ca", "front-proxy-ca"), ("etcd/ca", "etcd-ca")):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        files[f"{base}.crt"] = cert.public_bytes(serialization.Encoding.PEM)
        files[f"{base}.key"] = _key_pem(key)
    sa = ec.generate_private_key(ec.SECP256R1())
    files["sa.key"] = _key_pem(sa)
    files["sa.pub"] = sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return files


def admin_conf(pki: ClusterPKI, server: str, cluster_name: str) -> bytes:
    """/etc/kubernetes/admin.conf as kubeadm writes it (server is the endpoint it was given)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {b64(pki.ca_pem)}\n"
        f"    server: https://{server}\n"
        f"  name: {cluster_name}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {cluster_name}\n"
        "    user: kubernetes-admin\n"
        f"  name: kubernetes-admin@{cluster_name}\n"
        f"current-context: kubernetes-admin@{cluster_name}\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        "- name: kubernetes-admin\n"
        "  user:\n"
        f"    client-certificate-data: {b64(pki.admin_cert_pem)}\n"
        f"    client-key-data: {b64(pki.admin_key_pem)}\n"
    ).encode()
