"""Which etcd member belongs to which node, which members are stale, and taking one out.

kubeadm names each stacked etcd member after its node and puts it at the node's advertised
address (peer ``https://IP:2380``, client ``https://IP:2379``). A control plane that dies for
good never runs ``kubeadm reset``, so its member stays listed: the cluster keeps quorum with one
member fewer to spare, and kubeadm's ``join --control-plane`` refuses to add anyone while a
listed member does not answer (its check-etcd phase dials every member). The answer every
kubeadm user gives is ``etcdctl member remove ID`` through a healthy member; this module is
where the tool decides that, so ``remove-node``, ``add-node`` and ``etcd status`` read the
member list the same way.

A member is never removed while it answers at its client URL (``endpoint status`` is answered by
the member alone, quorum or not): an answering member is a live etcd, and removing it would
take a running control plane out of its own cluster.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from k8slk_ops.cluster import etcdctl
from k8slk_ops.cluster.etcdctl import MemberInfo
from k8slk_ops.cluster.etcdpod import EtcdPod, EtcdPodError
from k8slk_ops.cluster.lock import ETCD_SETTLE
from k8slk_ops.inventory.model import Inventory


class MemberRemovalRefused(Exception):
    """Taking the member out would be unsafe, or is impossible now; the message says why and
    what to do."""


@dataclass(frozen=True)
class MemberRemoval:
    """A member this run removed, for the report."""

    node: str
    member: MemberInfo
    through: str  # the control plane whose etcd took the removal
    left: int  # members listed afterwards

    def line(self) -> str:
        peers = ", ".join(self.member.peer_urls) or "no peer URL"
        return (f"{self.node}: etcd member {self.member.member_id:x} ({self.member.name or '?'}, "
                f"{peers}) removed through {self.through}; {self.left} members left")

    def to_report(self) -> dict[str, object]:
        return {"node": self.node, "memberId": f"{self.member.member_id:x}",
                "name": self.member.name, "peerURLs": list(self.member.peer_urls),
                "through": self.through, "membersLeft": self.left}


@dataclass(frozen=True)
class StaleMember:
    """A listed member that no node of the inventory can account for."""

    member: MemberInfo
    node: str | None  # the inventory's node at its name or address, if any
    why: str
    remedy: str  # the command that removes it

    def line(self) -> str:
        return (f"stale etcd member {self.member.member_id:x} "
                f"({self.member.name or 'not started'}, "
                f"{', '.join(self.member.peer_urls) or 'no peer URL'}): {self.why}; "
                f"remove it with: {self.remedy}")


def addresses_of(inventory: Inventory, node_ips: Mapping[str, str], name: str) -> frozenset[str]:
    """Every address the node may have given etcd: its advertised IP, its node IP, its address."""
    spec = inventory.node(name)
    return frozenset(a for a in (node_ips.get(name), spec.node_ip, spec.address) if a)


def member_of(members: list[MemberInfo] | tuple[MemberInfo, ...], name: str,
              addresses: frozenset[str]) -> MemberInfo | None:
    """The node's member: the one named after it, else one at one of its addresses."""
    for m in members:
        if m.name == name:
            return m
    for m in members:
        if m.hosts & addresses:
            return m
    return None


def node_of(member: MemberInfo, inventory: Inventory,
            node_ips: Mapping[str, str]) -> str | None:
    """The inventory's control plane this member belongs to, by name, else by address."""
    names = {s.name for s in inventory.control_planes}
    if member.name in names:
        return member.name
    for spec in inventory.control_planes:
        if member.hosts & addresses_of(inventory, node_ips, spec.name):
            return spec.name
    return None


def remove_node_command(inventory: Inventory, name: str) -> str:
    return f"k8slk-ops remove-node {inventory.source} {name} --force --yes"


def etcdctl_remove_command(member: MemberInfo) -> str:
    """What an operator runs on a healthy control plane when no inventory node owns it."""
    return ("ctr --namespace services.linuxkit tasks exec --exec-id etcd-remove kubelet "
            "sh -c 'crictl exec $(crictl ps --name etcd -q) etcdctl "
            f"{' '.join(etcdctl.CLIENT_FLAGS)} member remove {member.member_id:x}'")


def stale_members(
    members: tuple[MemberInfo, ...], inventory: Inventory, node_ips: Mapping[str, str],
    unreachable: Mapping[str, str],
) -> list[StaleMember]:
    """Members with no inventory entry, or whose node cannot be reached. Pure."""
    stale = []
    for m in members:
        node = node_of(m, inventory, node_ips)
        if node is None:
            stale.append(StaleMember(
                m, None, "no control plane of the inventory has its name or address",
                etcdctl_remove_command(m)))
        elif node in unreachable:
            stale.append(StaleMember(
                m, node, f"its node {node} is unreachable ({unreachable[node]})",
                remove_node_command(inventory, node)))
    return stale


async def silent_members(pod: EtcdPod, members: list[MemberInfo]) -> dict[int, str]:
    """Member ID -> why it does not answer, for every member that does not. A member with no
    client URL (added, never started) cannot answer."""
    silent: dict[int, str] = {}
    for m in members:
        if not m.client_urls:
            silent[m.member_id] = "never started (no client URL)"
            continue
        reasons = [await pod.reach(url) for url in m.client_urls]
        if all(reasons):
            silent[m.member_id] = "; ".join(reasons)
    return silent


async def listed_members(pod: EtcdPod, settle: float = 0.0) -> list[MemberInfo]:
    """The member list through a member that is part of a quorum (else EtcdPodError). With
    ``settle``, a member without a leader is asked again for up to that long: a reset that has
    just removed the leader leaves the others electing one for about a second."""
    deadline = time.monotonic() + settle
    while True:
        try:
            return await _listed_once(pod)
        except (EtcdPodError, etcdctl.EtcdctlError):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(1.0)


async def _listed_once(pod: EtcdPod) -> list[MemberInfo]:
    status = etcdctl.parse_endpoint_status(await pod.etcdctl("endpoint", "status", "-w", "json"))
    if not status.leader_id:
        raise EtcdPodError(f"the etcd member on {pod.node.name} has no leader: quorum is lost")
    await pod.etcdctl("endpoint", "health", "-w", "json")
    return etcdctl.parse_member_list(await pod.etcdctl("member", "list", "-w", "json"))


async def remove_dead_member(
    pod: EtcdPod, node: str, addresses: frozenset[str]
) -> MemberRemoval | None:
    """Remove ``node``'s member through ``pod`` (a healthy member) when it is listed, does not
    answer, and the members left keep quorum; None when it is not listed (kubeadm reset took it
    out, or it never joined). MemberRemovalRefused when it answers or quorum would not hold."""
    try:
        members = await listed_members(pod, settle=ETCD_SETTLE)
    except (EtcdPodError, etcdctl.EtcdctlError) as exc:
        raise MemberRemovalRefused(
            f"etcd on {pod.node.name} is not healthy, no member removed: {exc}") from None
    mine = member_of(members, node, addresses)
    if mine is None:
        return None
    silent = await silent_members(pod, members)
    if mine.member_id not in silent:
        raise MemberRemovalRefused(
            f"etcd member {mine.member_id:x} ({mine.name}) still answers at "
            f"{', '.join(mine.client_urls)}: a live member is never removed this way. If the "
            f"machine is up, remove-node without --force resets it (kubeadm reset takes its "
            "member out); else stop it first")
    left = [m for m in members if m.member_id != mine.member_id]
    answering = [m for m in left if m.member_id not in silent]
    needed = len(left) // 2 + 1
    if len(answering) < needed:
        raise MemberRemovalRefused(
            f"removing member {mine.member_id:x} ({mine.name}) would leave {len(left)} members "
            f"of which {len(answering)} answer, and {needed} are needed for quorum; bring the "
            "silent ones back first")
    try:
        await pod.etcdctl(*etcdctl.member_remove_args(mine.member_id))
    except EtcdPodError as exc:
        raise MemberRemovalRefused(f"etcdctl member remove failed: {exc}") from None
    return MemberRemoval(node, mine, pod.node.name, len(left))
