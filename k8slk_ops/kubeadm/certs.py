"""``kubeadm certs check-expiration`` (``kubeadm alpha certs ...`` before v1.20): the tables.

Two tables follow some ``[check-expiration]`` lines: certificates (with the CA that signed
each) and certificate authorities. Dates read ``Jan 02, 2006 15:04 MST``; a certificate that is
not on disk is a ``!MISSING! <name>`` row. Rows end with padding spaces.

``status``, ``certs check``, ``certs renew`` and the metrics all read one node's rows through
:class:`NodeCerts`: one notion of "the earliest certificate" (leaf certificates only, missing
ones aside) and of "the CA's expiry" (the earliest of the authorities; kubeadm never renews
them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from k8slk_ops.kubeadm.logs import log_message
from k8slk_ops.kubeadm.versions import KubeVersion

_DATE = r"[A-Z][a-z]{2} \d{1,2}, \d{4} \d{2}:\d{2} [A-Za-z]+|[A-Z][a-z]{2} \d{1,2}, \d{4} \d{2}:\d{2} [+-]\d{4}"
_ROW_RE = re.compile(
    rf"(?P<name>\S+)\s+(?P<date>{_DATE})\s+(?P<residual>\S+)"
    r"(?:\s+(?P<ca>\S+))?\s+(?P<ext>yes|no)"
)
_MISSING_RE = re.compile(r"!MISSING!\s+(?P<name>\S+).*")
_ZONES = {"UTC": UTC, "GMT": UTC, "Z": UTC}


@dataclass(frozen=True)
class CertExpiry:
    """One row. ``expires`` is None for a missing certificate (or an unknown time zone)."""

    name: str
    expires: datetime | None
    residual: str
    authority: str | None  # the signing CA; None in the CA table and for missing rows
    externally_managed: bool
    is_ca: bool
    missing: bool = False

    def expires_within(self, days: float, now: datetime) -> bool:
        """True when the certificate lapses within ``days`` of ``now`` (or is missing)."""
        if self.expires is None:
            return self.missing
        return self.expires - now <= timedelta(days=days)


def parse_kubeadm_date(text: str) -> datetime | None:
    """``Oct 01, 2025 09:36 UTC`` as an aware datetime; None for a zone we cannot place."""
    stamp, _, zone = text.rpartition(" ")
    try:
        naive = datetime.strptime(stamp, "%b %d, %Y %H:%M")
    except ValueError:
        return None
    tz = _ZONES.get(zone.upper())
    if tz is None and re.fullmatch(r"[+-]\d{4}", zone):
        sign = -1 if zone[0] == "-" else 1
        minutes = int(zone[1:3]) * 60 + int(zone[3:5])
        if minutes >= 24 * 60:
            return None
        tz = timezone(sign * timedelta(minutes=minutes))
    return None if tz is None else naive.replace(tzinfo=tz)


def parse_cert_expiration(stdout: str) -> list[CertExpiry]:
    """Every row of both tables, in order; headers and informational lines are skipped."""
    rows: list[CertExpiry] = []
    in_ca_table = False
    for raw in stdout.splitlines():
        line = log_message(raw).strip()
        if line.startswith("CERTIFICATE AUTHORITY"):
            in_ca_table = True
            continue
        if line.startswith("CERTIFICATE"):
            in_ca_table = False
            continue
        m = _MISSING_RE.fullmatch(line)
        if m is not None:
            rows.append(
                CertExpiry(m["name"], None, "", None, False, is_ca=in_ca_table, missing=True)
            )
            continue
        m = _ROW_RE.fullmatch(line)
        if m is None:
            continue
        rows.append(
            CertExpiry(
                name=m["name"],
                expires=parse_kubeadm_date(m["date"]),
                residual=m["residual"],
                authority=None if in_ca_table else m["ca"],
                externally_managed=m["ext"] == "yes",
                is_ca=in_ca_table,
            )
        )
    return rows


def certs_command(version: str | KubeVersion) -> tuple[str, ...]:
    """``("certs",)``, or ``("alpha", "certs")`` for a kubeadm before v1.20 (where ``certs`` was
    still under ``alpha``; v1.20 has both, v1.21 only ``certs``)."""
    v = KubeVersion.parse(version)
    return ("alpha", "certs") if (v.major, v.minor) < (1, 20) else ("certs",)


def days_left(expires: datetime, now: datetime) -> int:
    """Whole days until ``expires`` (negative once lapsed), as kubeadm's RESIDUAL TIME rounds."""
    return int((expires - now).total_seconds() // 86400)


@dataclass(frozen=True)
class NodeCerts:
    """One control plane's ``check-expiration`` rows, and what is read from them."""

    rows: tuple[CertExpiry, ...]

    @classmethod
    def parse(cls, stdout: str) -> NodeCerts:
        return cls(tuple(parse_cert_expiration(stdout)))

    @property
    def leaves(self) -> tuple[CertExpiry, ...]:
        return tuple(r for r in self.rows if not r.is_ca)

    @property
    def authorities(self) -> tuple[CertExpiry, ...]:
        return tuple(r for r in self.rows if r.is_ca)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rows if r.missing)

    @property
    def earliest(self) -> CertExpiry | None:
        """The leaf certificate that expires first (missing ones aside)."""
        return _first(self.leaves)

    @property
    def earliest_ca(self) -> CertExpiry | None:
        """The certificate authority that expires first."""
        return _first(self.authorities)

    def due(self, within_days: float | None, now: datetime) -> tuple[str, ...]:
        """The leaf certificates to renew: those expiring within ``within_days`` (every one for
        None), neither missing (kubeadm cannot renew what is not there) nor externally managed
        (kubeadm refuses)."""
        return tuple(
            r.name for r in self.leaves
            if not r.missing and not r.externally_managed and r.expires is not None
            and (within_days is None or r.expires_within(within_days, now))
        )


def _first(rows: Sequence[CertExpiry]) -> CertExpiry | None:
    dated = [r for r in rows if r.expires is not None]
    return min(dated, key=lambda r: r.expires or datetime.max.replace(tzinfo=UTC), default=None)


_FLAG_RE = re.compile(r"\s*-\s*--(?P<flag>advertise-address|secure-port)=(?P<value>\S+)\s*")


def apiserver_address(manifest: str) -> tuple[str, int] | None:
    """Where the kube-apiserver static pod serves, from its manifest's ``--advertise-address``
    and ``--secure-port`` flags (6443 without one); None when the manifest has no address."""
    found: dict[str, str] = {}
    for line in manifest.splitlines():
        m = _FLAG_RE.fullmatch(line.replace("'", "").replace('"', ""))
        if m is not None:
            found.setdefault(m["flag"], m["value"])
    address = found.get("advertise-address")
    if address is None:
        return None
    try:
        port = int(found.get("secure-port", "6443"))
    except ValueError:
        return None
    return address, port


def parse_openssl_enddate(text: str) -> datetime | None:
    """``notAfter=Dec  7 03:00:27 2027 GMT`` (``openssl x509 -noout -enddate``) as an aware
    datetime; None for anything else."""
    _, sep, value = text.strip().partition("notAfter=")
    if not sep:
        return None
    try:
        naive = datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y GMT")
    except ValueError:
        return None
    return naive.replace(tzinfo=UTC)


def expired_advice(
    certs: Mapping[str, NodeCerts],
    kubelet_certs: Mapping[str, datetime],
    inventory: str,
    now: datetime,
    *,
    api_silent: bool,
) -> list[str]:
    """What a run says of certificates that have already expired, with the command that fixes
    each: a control plane's are renewed by ``certs renew`` (which works without the API they
    stopped); a kubelet's client certificate that lapsed while its node was off cannot rotate
    any more (the kubelet needs the API to do it), so the node joins again."""
    out = []
    for node in sorted(certs):
        gone = [r.name for r in certs[node].leaves if r.expires is not None and r.expires <= now]
        if not gone:
            continue
        why = " (the API refuses clients until they are renewed)" if api_silent else ""
        out.append(
            f"certificates expired on {node}: {', '.join(gone)}{why}; renew them with "
            f"`k8slk-ops certs renew {inventory} --within-days 30 --yes`, then fetch a new "
            f"kubeconfig with `k8slk-ops kubeconfig {inventory}`"
        )
    for node in sorted(kubelet_certs):
        expires = kubelet_certs[node]
        if expires > now:
            continue
        out.append(
            f"the kubelet client certificate of {node} expired on {expires:%Y-%m-%d %H:%M} UTC "
            "(the node was off when the kubelet should have rotated it): its kubelet cannot "
            f"reach the API any more; join it again: `k8slk-ops remove-node {inventory} {node} "
            f"--yes`, reboot it, then `k8slk-ops add-node {inventory} --node {node}`"
        )
    return out
