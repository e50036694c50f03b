"""What each command reports of a node beyond its outcome: one dataclass per kind of row.

A command says which kind its report holds (:class:`Layout`); ``outcomes.py`` puts the rows the
run's steps made into the report, and ``report.py`` renders each kind with its own columns. No
layout is ever guessed from what a row happens to hold. ``to_json()`` gives the ``details`` of
the node in the JSON report (the keys scripts already read).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from k8slk_ops import kubeadm
from k8slk_ops.cluster.etcdctl import MemberHealth
from k8slk_ops.cluster.restorecheck import RestoreCheck
from k8slk_ops.kubeadm import CertExpiry, NodeCerts


class Layout(enum.StrEnum):
    """The columns of a command's report table."""

    OUTCOMES = "outcomes"  # a node's result: what a changing command did to it
    STATUS = "status"  # `status`: a row of facts per node
    CERTIFICATES = "certificates"  # `certs check|renew`: outcomes, then a row per certificate
    ETCD = "etcd"  # `etcd status`: each control plane's member

    @classmethod
    def of(cls, command: str) -> Layout:
        return _LAYOUTS.get(command, cls.OUTCOMES)


_LAYOUTS = {
    "status": Layout.STATUS,
    "certs check": Layout.CERTIFICATES,
    "certs renew": Layout.CERTIFICATES,
    "etcd status": Layout.ETCD,
}


@dataclass(frozen=True)
class CertSummary:
    """A control plane's earliest leaf certificate and CA, as ``status`` and the metrics show."""

    missing: tuple[str, ...] = ()
    expires: datetime | None = None
    days_left: int | None = None
    ca_expires: datetime | None = None
    ca_days_left: int | None = None

    @classmethod
    def of(cls, certs: NodeCerts, now: datetime) -> CertSummary:
        earliest, ca = certs.earliest, certs.earliest_ca
        leaf = earliest.expires if earliest is not None else None
        root = ca.expires if ca is not None else None
        return cls(
            certs.missing,
            leaf,
            kubeadm.days_left(leaf, now) if leaf is not None else None,
            root,
            kubeadm.days_left(root, now) if root is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"certsMissing": list(self.missing)}
        if self.expires is not None:
            out["certsExpire"] = self.expires.isoformat()
            out["certsDaysLeft"] = self.days_left
        if self.ca_expires is not None:
            out["caExpire"] = self.ca_expires.isoformat()
            out["caDaysLeft"] = self.ca_days_left
        return out


@dataclass(frozen=True)
class StatusRow:
    """``status``: what the facts say of a node; an unreachable node has only the first two
    fields and ``error``."""

    reachable: bool
    host_key: str
    error: str = ""
    kubelet_task: str = ""
    kubeadm: str = ""
    kubeadm_version: str = ""
    kubelet_version: str = ""
    registered: bool = False
    ready: bool = False
    not_ready_reason: str = ""
    unschedulable: bool = False
    certs: CertSummary | None = None
    # A configured node that is not Ready: when its kubelet's client certificate expires (an
    # expired one keeps it from the API: the report names the fix)
    kubelet_cert_expire: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        if not self.reachable:
            return {"reachable": False, "hostKey": self.host_key, "error": self.error}
        out: dict[str, Any] = {
            "reachable": True,
            "hostKey": self.host_key,
            "kubeletTask": self.kubelet_task,
            "kubeadm": self.kubeadm,
            "kubeadmVersion": self.kubeadm_version,
            "kubeletVersion": self.kubelet_version,
            "registered": self.registered,
            "ready": self.ready,
            "notReadyReason": self.not_ready_reason,
            "unschedulable": self.unschedulable,
            "certsExpire": None,
        }
        if self.certs is not None:
            out.update(self.certs.to_json())
        if self.kubelet_cert_expire is not None:
            out["kubeletCertExpire"] = self.kubelet_cert_expire.isoformat()
        return out

    def cluster_state(self) -> str:
        if not self.registered:
            return "absent"
        return "Ready" if self.ready else "NotReady"

    def note(self) -> str:
        """Cordoned, and why a registered node is not Ready (its Ready condition's words)."""
        notes = ["cordoned"] if self.unschedulable else []
        if self.registered and not self.ready and self.not_ready_reason:
            notes.append(self.not_ready_reason)
        return "; ".join(notes)


@dataclass(frozen=True)
class CertificateRow:
    """One certificate of a control plane, as ``kubeadm certs check-expiration`` lists it."""

    name: str
    authority: bool
    expires: datetime | None
    days_left: int | None
    signed_by: str | None
    externally_managed: bool
    missing: bool

    @classmethod
    def of(cls, r: CertExpiry, now: datetime) -> CertificateRow:
        days = kubeadm.days_left(r.expires, now) if r.expires else None
        return cls(r.name, r.is_ca, r.expires, days, r.authority, r.externally_managed, r.missing)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "authority": self.authority,
            "expires": self.expires.isoformat() if self.expires else None,
            "daysLeft": self.days_left,
            "signedBy": self.signed_by,
            "externallyManaged": self.externally_managed,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class ServedCertificate:
    """The certificate the API serves after a renewal (its serial in hex)."""

    serial: str
    not_after: datetime


@dataclass
class CertsRow:
    """``certs check|renew``: a control plane's certificates, what was renewed, what is served."""

    summary: CertSummary
    certificates: list[CertificateRow] = field(default_factory=list)
    renewed: list[str] | None = None  # None: no renewal was due or attempted
    served: ServedCertificate | None = None

    @classmethod
    def of(cls, certs: NodeCerts, now: datetime) -> CertsRow:
        return cls(CertSummary.of(certs, now), [CertificateRow.of(r, now) for r in certs.rows])

    def read(self, certs: NodeCerts, now: datetime) -> None:
        """The certificates as read again (after a renewal)."""
        self.summary = CertSummary.of(certs, now)
        self.certificates = [CertificateRow.of(r, now) for r in certs.rows]

    def to_json(self) -> dict[str, Any]:
        out = self.summary.to_json()
        out["certificates"] = [c.to_json() for c in self.certificates]
        if self.renewed is not None:
            out["renewed"] = list(self.renewed)
        if self.served is not None:
            out["servingCertificate"] = {"serial": self.served.serial,
                                         "notAfter": self.served.not_after.isoformat()}
        return out


@dataclass(frozen=True)
class EtcdRow:
    """``etcd status``: one control plane's member, healthy or why not."""

    health: MemberHealth

    def to_json(self) -> dict[str, Any]:
        return {"etcd": self.health.to_report()}

    def cells(self) -> list[str]:
        """MEMBER, LEADER, DB SIZE, VERSION, MEMBERS, HEALTH."""
        status = self.health.status
        member = leader = size = version = ""
        if status is not None:
            member = f"{status.member_id:x}"
            leader = "yes" if status.is_leader else ("no" if status.leader_id else "none")
            size = f"{status.db_size}"
            version = status.version
        members = str(len(self.health.members)) if self.health.members else ""
        health = "healthy" if self.health.healthy else f"unhealthy: {self.health.error}"
        return [member, leader, size, version, members, health]


@dataclass(frozen=True)
class RestoreCheckRow:
    """``etcd snapshot --verify-restore``: the control plane the new snapshot was restored on,
    with what the throwaway etcd held (or why the check failed)."""

    check: RestoreCheck

    def to_json(self) -> dict[str, Any]:
        return {"restoreCheck": self.check.to_report()}


NodeRow = StatusRow | CertsRow | EtcdRow | RestoreCheckRow


def cert_summary(row: NodeRow | None) -> CertSummary | None:
    """The certificate summary a row holds, if any (``status`` and ``certs`` rows)."""
    if isinstance(row, StatusRow):
        return row.certs
    if isinstance(row, CertsRow):
        return row.summary
    return None
