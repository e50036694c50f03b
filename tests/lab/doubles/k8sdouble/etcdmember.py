"""kubeadm's etcd membership with the lab's real etcd: ``join --control-plane`` adds the new
member through an existing one, ``reset`` removes the node's own. Both use etcd's JSON gateway
with kubeadm's healthcheck-client certificate, as kubeadm uses its etcd client."""

from __future__ import annotations

import time
from typing import Any

from k8sdouble import env, kubeversions
from k8sdouble.etcdstore import EtcdClient, EtcdUnavailable


def client(address: str) -> EtcdClient:
    pki = f"{env.PKI}/etcd"
    return EtcdClient(f"https://{address}:2379", f"{pki}/ca.crt",
                      f"{pki}/healthcheck-client.crt", f"{pki}/healthcheck-client.key")


def control_plane_addresses(nodes: dict[str, Any], exclude: str) -> list[str]:
    """InternalIPs of the control planes in a node list, the joining node's left out."""
    found = []
    for item in nodes.get("items") or []:
        labels = (item.get("metadata") or {}).get("labels") or {}
        if not kubeversions.is_control_plane(labels):
            continue
        for a in (item.get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP" and a.get("address") != exclude:
                found.append(str(a["address"]))
    return found


# etcd's answer to ``member add`` of a peer URL a listed member already has.
PEER_URL_EXISTS = "etcdserver: Peer URLs already exists"


def add(existing: list[str], name: str, address: str, wait: float = 40.0) -> str:
    """``member add`` as kubeadm does it: retried with a pause while etcd answers ``unhealthy
    cluster`` (it refuses a new member until every member has been connected for 5s, right
    after the previous join); the new --initial-cluster. A peer URL that is already a member's
    is etcd's final answer: not retried."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return _add_once(existing, name, address)
        except EtcdUnavailable as exc:
            if PEER_URL_EXISTS in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


def members(existing: list[str]) -> list[dict[str, Any]]:
    """``member list`` through the first existing member that answers."""
    last: Exception | None = None
    for other in existing:
        try:
            return list(client(other).call("/v3/cluster/member/list", {}).get("members") or [])
        except EtcdUnavailable as exc:
            last = exc
    raise EtcdUnavailable(f"no etcd member answered at {', '.join(existing)}: {last}")


def unhealthy_endpoint(existing: list[str]) -> str | None:
    """kubeadm's check-etcd (``CheckClusterHealth``): the member list, then a maintenance
    Status call to every member's client URL; the first that does not answer, or None. A
    member added and never started has no client URL and is not dialled."""
    for member in members(existing):
        for url in member.get("clientURLs") or []:
            host = url.removeprefix("https://").rsplit(":", 1)[0]
            try:
                client(host).call("/v3/maintenance/status", {})
            except EtcdUnavailable:
                return str(url)
    return None


def _add_once(existing: list[str], name: str, address: str) -> str:
    peer = f"https://{address}:2380"
    last: Exception | None = None
    for other in existing:
        try:
            answer = client(other).call("/v3/cluster/member/add", {"peerURLs": [peer]})
        except EtcdUnavailable as exc:
            if "already exists" in str(exc):
                raise EtcdUnavailable(PEER_URL_EXISTS) from None
            last = exc
            continue
        members = answer.get("members") or []
        return ",".join(f"{m.get('name') or name}={(m.get('peerURLs') or [''])[0]}"
                        for m in members)
    raise EtcdUnavailable(f"no etcd member answered at {', '.join(existing)}: {last}")


def remove_self(name: str, address: str) -> bool:
    """``member remove`` of this node's member, through itself; False when it is the last."""
    etcd = client(address)
    members = etcd.call("/v3/cluster/member/list", {}).get("members") or []
    mine = [m for m in members if m.get("name") == name]
    if not mine or len(members) == 1:
        return False
    etcd.call("/v3/cluster/member/remove", {"ID": mine[0]["ID"]})
    return True


def wait_available(address: str, wait: float = 40.0) -> None:
    """kubeadm's wait after adding a member ("Waiting for the new etcd member to join the
    cluster. This can take up to 40s"): until a quorum read through the new member answers,
    which it does once the member has caught up and the cluster has its leader again.
    EtcdUnavailable with etcd's last words when ``wait`` runs out."""
    deadline = time.monotonic() + wait
    while True:
        try:
            client(address).call("/v3/kv/range", {"key": "aGVhbHRo"})  # "health", as etcdctl
            return
        except EtcdUnavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
