"""An HTTPS client of the API double, as client-go would talk to it.

It authenticates with what a kubeconfig holds (client certificate) or a bootstrap token, checks
the server against the kubeconfig's CA, and turns "nobody listening" into the errors kubectl and
kubeadm print. A server certificate that expired fails as Go's TLS client fails on it
(``tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current
time T is after NOTAFTER``; Go before 1.20, i.e. Kubernetes before v1.27, had no ``tls: failed to
verify certificate:`` in front), and a server that refuses our expired certificate in the
handshake (etcd does) as ``remote error: tls: expired certificate``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import ssl
import tempfile
from typing import Any

from cryptography import x509

from k8sdouble import certmodel, pki
from k8sdouble.errors import ApiError


class Client:
    def __init__(self, server: str, ca_pem: bytes | None, cert_pem: bytes | None = None,
                 key_pem: bytes | None = None, token: str | None = None,
                 timeout: float = 30) -> None:
        hostport = server.split("://", 1)[-1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port or 443)
        self.server = server
        self.token = token
        self.timeout = timeout
        if ca_pem:
            self.ctx = ssl.create_default_context(cadata=ca_pem.decode())
            self.ctx.check_hostname = False  # kubeadm's certificates carry IP SANs; checked below
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE
        if cert_pem and key_pem:
            _load_chain(self.ctx, cert_pem, key_pem)

    @classmethod
    def from_kubeconfig(cls, text: str, timeout: float = 30) -> Client:
        kc = pki.read_kubeconfig(text)
        return cls(kc.server, kc.ca_pem or None, kc.cert_pem, kc.key_pem, kc.token, timeout)

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> Any:
        """The decoded JSON answer; ApiError for a non-2xx status (0 when nothing answered)."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except ssl.SSLCertVerificationError as exc:
            raise ApiError(0, self._verify_failure(exc), "tls") from None
        except ssl.SSLError as exc:
            if "CERTIFICATE_EXPIRED" in str(exc):
                raise ApiError(0, "remote error: tls: expired certificate", "tls") from None
            raise ApiError(0, f"dial tcp {self.host}:{self.port}: {exc}", "unreachable") from None
        except ConnectionRefusedError:
            raise ApiError(0, f"dial tcp {self.host}:{self.port}: connect: connection refused",
                           "refused") from None
        except (TimeoutError, OSError) as exc:
            raise ApiError(0, f"dial tcp {self.host}:{self.port}: {exc}", "unreachable") from None
        except http.client.HTTPException as exc:  # the server went away mid-answer
            raise ApiError(0, f"unexpected EOF from {self.host}:{self.port}: {exc!r}",
                           "unreachable") from None
        finally:
            conn.close()
        try:
            answer = json.loads(raw) if raw and raw[:1] in (b"{", b"[") else \
                raw.decode(errors="replace")
        except ValueError:
            raise ApiError(0, f"unexpected EOF from {self.host}:{self.port}: cut JSON",
                           "unreachable") from None
        if resp.status >= 300:
            if isinstance(answer, dict):
                raise ApiError(resp.status, str(answer.get("message", "")),
                               str(answer.get("reason", "")))
            raise ApiError(resp.status, str(answer), "")
        return answer


    def _verify_failure(self, exc: ssl.SSLCertVerificationError) -> str:
        """Go's text for a server certificate that failed verification."""
        minor = _minor()
        if exc.verify_code != 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return f"{certmodel.verify_prefix(minor)}x509: {exc.verify_message}"
        now = dt.datetime.now(dt.UTC)
        try:  # the certificate again, unverified, for its notAfter (as Go's message has it)
            pem = ssl.get_server_certificate((self.host, self.port), timeout=self.timeout)
            # not_valid_after: naive UTC (Debian's cryptography has no not_valid_after_utc).
            after: dt.datetime | None = x509.load_pem_x509_certificate(
                pem.encode()).not_valid_after.replace(tzinfo=dt.UTC)
        except (OSError, ValueError):
            after = None
        return certmodel.expired_serving_certificate(minor, now, after)


def _minor() -> int:
    """The node's Kubernetes minor, which Go's texts follow; off a node, today's."""
    from k8sdouble import cluster, env  # the node's version; cluster imports this module

    try:
        return cluster.version_tuple(env.node().version)[1]
    except Exception:
        return 99


def _load_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """ssl wants files: write both to a private temp file, load it, remove it."""
    fd, name = tempfile.mkstemp(prefix="k8sdouble-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem + b"\n" + key_pem)
        ctx.load_cert_chain(name)
    finally:
        os.unlink(name)
