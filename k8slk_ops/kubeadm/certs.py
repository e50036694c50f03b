"""``kubeadm certs check-expiration`` (``kubeadm alpha certs ...`` before v1.20): the tables.

Two tables follow some ``[check-expiration]`` lines: certificates (with the CA that signed
each) and certificate authorities. Dates read ``Jan 02, 2006 15:04 MST``; a certificate that is
not on disk is a ``!MISSING! <name>`` row. Rows end with padding spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from k8slk_ops.kubeadm.logs import log_message

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
