"""etcdctl as k8slk-ops uses it on a kubeadm control plane: the command lines and their answers.

Pure: argv in, parsed values out; nothing here runs a command. kubeadm's stacked etcd serves
clients on ``https://127.0.0.1:2379`` and asks for a client certificate signed by the etcd CA;
kubeadm makes ``healthcheck-client`` for exactly this kind of check, and the etcd static pod
mounts ``/etc/kubernetes/pki/etcd`` (the certificates) and ``/var/lib/etcd`` (its data, where a
snapshot is written so the node's shell can read it). The answers parsed are etcdctl v3's
``-w json`` forms (the same in 3.4 and 3.5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ENDPOINT = "https://127.0.0.1:2379"
PKI = "/etc/kubernetes/pki/etcd"
CLIENT_FLAGS = (
    f"--endpoints={ENDPOINT}",
    f"--cacert={PKI}/ca.crt",
    f"--cert={PKI}/healthcheck-client.crt",
    f"--key={PKI}/healthcheck-client.key",
    "--dial-timeout=5s",
    "--command-timeout=15s",
)


class EtcdctlError(ValueError):
    """An etcdctl answer that is not what the command prints."""


def client_argv(*args: str) -> list[str]:
    """``etcdctl`` with kubeadm's client certificate against the local member."""
    return ["etcdctl", *CLIENT_FLAGS, *args]


def client_argv_at(endpoint: str, *args: str, dial_timeout: str = "5s") -> list[str]:
    """``etcdctl`` with kubeadm's client certificate against another member's client URL.
    Its own argv, not ``client_argv`` plus a flag: ``--endpoints`` given twice adds up."""
    flags = [f"--endpoints={endpoint}" if f.startswith("--endpoints=") else
             f"--dial-timeout={dial_timeout}" if f.startswith("--dial-timeout=") else f
             for f in CLIENT_FLAGS]
    return ["etcdctl", *flags, *args]


def member_remove_args(member_id: int) -> tuple[str, ...]:
    """``etcdctl member remove`` takes the member's ID in hex, as ``member list`` prints it."""
    return ("member", "remove", f"{member_id:x}")


def snapshot_save_argv(path: str) -> list[str]:
    return client_argv("snapshot", "save", path)


def snapshot_status_argv(path: str) -> list[str]:
    """Reads the file only: no endpoint, no certificate."""
    return ["etcdctl", "snapshot", "status", path, "-w", "json"]


@dataclass(frozen=True)
class SnapshotStatus:
    """What ``etcdctl snapshot status`` says of a snapshot file."""

    hash: int
    revision: int
    total_keys: int


@dataclass(frozen=True)
class EndpointStatus:
    """One member as ``etcdctl endpoint status`` sees it."""

    member_id: int
    leader_id: int
    version: str
    db_size: int
    raft_term: int
    endpoint: str = ""  # the client URL that answered (``--cluster`` asks every member's)

    @property
    def is_leader(self) -> bool:
        return self.member_id == self.leader_id


@dataclass(frozen=True)
class MemberInfo:
    member_id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...] = ()  # empty for a member added and not started yet

    @property
    def hosts(self) -> frozenset[str]:
        """The hosts of its peer and client URLs: where the member is (or was) running."""
        return frozenset(
            h for h in (urlsplit(u).hostname for u in (*self.peer_urls, *self.client_urls)) if h
        )


def _json(text: str, what: str) -> Any:
    # etcdctl 3.5 prints a deprecation line on stderr only; stdout holds one JSON value.
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise EtcdctlError(f"{what}: no JSON in etcdctl's answer: {text.strip()[:200]!r}")
    try:
        return json.loads(text[start:])
    except ValueError as exc:
        raise EtcdctlError(f"{what}: etcdctl's answer is not JSON: {exc}") from None


def _int(obj: dict[str, Any], key: str, what: str) -> int:
    value = obj.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise EtcdctlError(f"{what}: {key} is not a number: {value!r}")
    return value


def parse_snapshot_status(text: str) -> SnapshotStatus:
    """``etcdctl snapshot status FILE -w json``: ``{"hash":..,"revision":..,"totalKey":..}``."""
    what = "snapshot status"
    obj = _json(text, what)
    if not isinstance(obj, dict) or "hash" not in obj or "revision" not in obj:
        raise EtcdctlError(f"{what}: missing hash or revision in {text.strip()[:200]!r}")
    return SnapshotStatus(
        hash=_int(obj, "hash", what),
        revision=_int(obj, "revision", what),
        total_keys=_int(obj, "totalKey", what),
    )


def parse_endpoint_status(text: str) -> EndpointStatus:
    """``etcdctl endpoint status -w json`` against one endpoint."""
    rows = parse_endpoint_statuses(text)
    if not rows:
        raise EtcdctlError("endpoint status: expected a list of endpoints")
    return rows[0]


def parse_endpoint_statuses(text: str) -> list[EndpointStatus]:
    """``etcdctl endpoint status -w json``, one row per endpoint that answered (with
    ``--cluster``, every member's client URL; those that did not answer are only on stderr)."""
    what = "endpoint status"
    rows = _json(text, what)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise EtcdctlError(f"{what}: expected a list of endpoints")
    found = []
    for row in rows:
        status = row.get("Status") or {}
        header = status.get("header") or {}
        found.append(EndpointStatus(
            member_id=_int(header, "member_id", what),
            leader_id=_int(status, "leader", what),
            version=str(status.get("version", "")),
            db_size=_int(status, "dbSize", what),
            raft_term=_int(status, "raftTerm", what),
            endpoint=str(row.get("Endpoint", "")),
        ))
    return found


@dataclass(frozen=True)
class EndpointHealth:
    """One endpoint as ``etcdctl endpoint health`` sees it: a quorum read answered or not."""

    endpoint: str
    healthy: bool
    error: str = ""


def parse_endpoint_health(text: str) -> list[EndpointHealth]:
    """``etcdctl endpoint health -w json``: ``[{"endpoint":..,"health":..,"error":..}]``. etcdctl
    prints the list and exits 1 ("unhealthy cluster") when any endpoint is not healthy."""
    what = "endpoint health"
    rows = _json(text, what)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise EtcdctlError(f"{what}: expected a list of endpoints")
    return [EndpointHealth(str(r.get("endpoint", "")), r.get("health") is True,
                           str(r.get("error") or "")) for r in rows]


def parse_member_list(text: str) -> list[MemberInfo]:
    """``etcdctl member list -w json``: the members the cluster knows of."""
    what = "member list"
    obj = _json(text, what)
    if not isinstance(obj, dict):
        raise EtcdctlError(f"{what}: expected an object")
    return [
        MemberInfo(
            member_id=_int(m, "ID", what),
            name=str(m.get("name", "")),  # empty for a member added and not started yet
            peer_urls=tuple(str(u) for u in m.get("peerURLs") or ()),
            client_urls=tuple(str(u) for u in m.get("clientURLs") or ()),
        )
        for m in obj.get("members") or ()
        if isinstance(m, dict)
    ]


# How failure_reason says that etcd refused a certificate (its callers test for it).
TLS_REFUSED = "etcd refused the TLS handshake"


def failure_reason(stderr: str) -> str:
    """Why an etcdctl call failed, in the words that tell an operator what is wrong."""
    text = stderr.strip()
    lowered = text.lower()
    if "bad certificate" in lowered or "certificate has expired" in lowered:
        # The TLS handshake failed on every retry: the deadline is only how it ended.
        return (f"{TLS_REFUSED} (a certificate has expired, etcd's or the healthcheck-client "
                "one etcdctl uses; `k8slk-ops certs check`)")
    if "context deadline exceeded" in lowered or "deadline" in lowered:
        return f"etcd did not answer in time (quorum lost or member down): {_last_line(text)}"
    if "connection refused" in lowered:
        return f"etcd is not listening on {ENDPOINT}: {_last_line(text)}"
    return _last_line(text) or "etcdctl failed without a message"


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


@dataclass(frozen=True)
class MemberHealth:
    """One control plane's etcd member as ``etcd status`` reports it."""

    node: str
    healthy: bool
    error: str = ""
    status: EndpointStatus | None = None
    members: tuple[MemberInfo, ...] = ()

    def to_report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"healthy": self.healthy, "error": self.error}
        if self.status is not None:
            out.update(
                memberId=f"{self.status.member_id:x}",
                leader=self.status.is_leader,
                leaderId=f"{self.status.leader_id:x}" if self.status.leader_id else "",
                dbSizeBytes=self.status.db_size,
                version=self.status.version,
                raftTerm=self.status.raft_term,
            )
        out["members"] = [
            {"id": f"{m.member_id:x}", "name": m.name, "peerURLs": list(m.peer_urls)}
            for m in self.members
        ]
        return out

    def line(self) -> str:
        """One line for the terminal: who leads, how big, healthy or why not."""
        parts = [f"{self.node}: etcd"]
        if self.status is not None:
            role = "leader" if self.status.is_leader else (
                "follower" if self.status.leader_id else "no leader")
            parts.append(f"member {self.status.member_id:x} ({role}), "
                         f"db {self.status.db_size} bytes, v{self.status.version}")
        if self.members:
            names = ", ".join(m.name or f"{m.member_id:x} (not started)" for m in self.members)
            parts.append(f"{len(self.members)} members: {names}")
        parts.append("healthy" if self.healthy else f"UNHEALTHY: {self.error}")
        return "; ".join(parts)


@dataclass(frozen=True)
class ClusterView:
    """Every member as one member sees them: ``member list``, ``endpoint status --cluster`` and
    ``endpoint health --cluster`` asked through one etcd pod. etcdctl asks each listed member's
    client URL itself, so one exchange with one node covers the cluster; a member that did not
    answer is simply missing from the statuses."""

    through: str  # the node whose etcd pod was asked
    members: tuple[MemberInfo, ...]
    statuses: tuple[EndpointStatus, ...]
    health: tuple[EndpointHealth, ...]

    def status_of(self, member: MemberInfo) -> EndpointStatus | None:
        return next((s for s in self.statuses if s.member_id == member.member_id), None)

    def problem(self, member: MemberInfo, no_leader: str) -> str:
        """Why ``member`` is not a healthy part of a quorum, or ''."""
        if not member.client_urls:
            return "added, not started"
        status = self.status_of(member)
        said = next((h for h in self.health if h.endpoint in member.client_urls), None)
        if status is None:
            why = said.error if said is not None and said.error else "no answer"
            return f"did not answer endpoint status at {', '.join(member.client_urls)}: {why}"
        if not status.leader_id:
            return no_leader
        if said is None:
            return f"endpoint health did not report {', '.join(member.client_urls)}"
        if not said.healthy:
            return f"unhealthy: {said.error or 'endpoint health failed'}"
        return ""
