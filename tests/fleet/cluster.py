"""The cluster the simulated nodes share: tokens, uploaded certificates, registered nodes.

One per fleet process, as one API server and etcd would hold it. Readiness needs no timer: a
node is Ready once ``ready_delay`` seconds have passed since it registered, read off the clock
whenever someone asks (``kubectl get nodes``).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from k8sdouble import kubeversions

from tests.fleet.pki import ClusterPKI

TOKEN_RE = re.compile(r"\A([a-z0-9]{6})\.([a-z0-9]{16})\Z")
CERTS_PROXY_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"
NODE_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
ROLE_PREFIX = "node-role.kubernetes.io/"
CERTS_TTL = timedelta(hours=2)
_ALPHABET = string.ascii_lowercase + string.digits
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")


def flag_value(args: list[str], name: str) -> str | None:
    """A flag's value as the Go command lines take it: ``--name value`` or ``--name=value``."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def parse_duration(text: str) -> timedelta:
    """A Go duration as kubeadm's ``--ttl`` takes it (``30m``, ``24h0m0s``, ``0``)."""
    if text in ("0", "0s"):
        return timedelta(0)
    pos, total = 0, 0.0
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * scale[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f'time: invalid duration "{text}"')
    return timedelta(seconds=total)


def new_token() -> str:
    pick = secrets.choice
    return "".join(pick(_ALPHABET) for _ in range(6)) + "." + "".join(
        pick(_ALPHABET) for _ in range(16)
    )


# The etcd the fleet's control planes run: etcd 3.4, as the lab's (Debian's 3.4.23); its image
# is tagged the way kubeadm names etcd images.
ETCD_VERSION = "3.4.23"


def etcd_image(version: str) -> str:
    return f"registry.k8s.io/etcd:{version}-0"


@dataclass
class Token:
    token_id: str
    secret: str
    expires: datetime | None  # None: never
    description: str = ""
    usages: tuple[str, ...] = ("authentication", "signing")
    groups: tuple[str, ...] = (NODE_TOKEN_GROUP,)

    @property
    def text(self) -> str:
        return f"{self.token_id}.{self.secret}"

    def valid(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires


@dataclass
class Member:
    """A Node object."""

    name: str
    address: str
    control_plane: bool
    registered: float  # time.time() when it registered
    kubelet_version: str
    labels: dict[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    taints: tuple[str, ...] = ()  # keys of kubeadm's NoSchedule taints (and kubectl taint's)
    # The kubelet's client certificate lapsed (the node was off past its expiry): the kubelet
    # cannot post its status any more, so the node is NotReady for good.
    kubelet_cert_expired: bool = False
    annotations: dict[str, str] = field(default_factory=dict)  # kubectl annotate's
    # Taints set through the API (kubectl patch), whole: {"key", "value"?, "effect"}.
    extra_taints: list[dict[str, str]] = field(default_factory=list)


# kubelet's words while the node has no CNI configuration.
NETWORK_NOT_READY = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)


class Cluster:
    """The state an API server and etcd would hold, for every simulated node to share."""

    def __init__(
        self,
        pki: ClusterPKI,
        *,
        ready_delay: float = 1.0,
        clock: Callable[[], float] = time.time,
        strict_network: bool = True,
    ) -> None:
        self.pki = pki
        # As kubelet does: no node is Ready before a pod network (a CNI DaemonSet) is applied.
        self.strict_network = strict_network
        self.network = False
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.ready_delay = ready_delay
        self.clock = clock
        self.endpoint: str | None = None  # set by init
        self.name = "kubernetes"
        self.version = ""
        self.tokens: dict[str, Token] = {}
        self.cert_key: str | None = None
        self.cert_key_expires: datetime | None = None
        self.members: dict[str, Member] = {}
        self.etcd_members: set[str] = set()
        # etcd member -> the address it was added at (its peer and client URLs): kept after its
        # Node is deleted, as etcd keeps a member until ``member remove``.
        self.etcd_addresses: dict[str, str] = {}
        # Nodes whose kubelet no longer posts its status (the machine is off or was replaced):
        # their Node turns NotReady, as the node lifecycle controller marks it.
        self.silent_kubelets: set[str] = set()
        # Control planes whose etcd member is stopped (no etcd container); quorum counts them.
        self.etcd_stopped: set[str] = set()
        # The stream of a snapshot file ends early (a transfer cut short).
        self.snapshot_cut = False
        # etcd restore: what each one-off restore was asked (node, its flags); nodes whose next
        # restore fails (the fault knob).
        self.restores: list[tuple[str, dict[str, str]]] = []
        self.restore_fails: set[str] = set()
        # node -> "namespace/pod" whose PodDisruptionBudget refuses every eviction: drain fails.
        self.guarded_pods: dict[str, str] = {}
        # Nodes whose refused drain retries the eviction until its --timeout, in real time
        # (else kubectl answers at once, as if the timeout had passed).
        self.slow_drains: set[str] = set()
        # Nodes whose drain waits until the test lets it go (an asyncio.Event each).
        self.drain_gates: dict[str, asyncio.Event] = {}
        # (namespace, name) -> Lease object (tests/fleet/leases.py).
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        # Control plane -> the version of its static pods, once an upgrade changed it (before:
        # the cluster's version at init).
        self.static_pods: dict[str, str] = {}
        # etcd member -> the etcd it runs, when not ETCD_VERSION (a member left on another
        # release): its mirror pod's image tag and its ``endpoint status`` version both say it.
        self.etcd_versions: dict[str, str] = {}
        # The ClusterConfiguration init was given (with kubeadm's defaults): what kubeadm keeps
        # in the kubeadm-config ConfigMap and writes every control plane's manifests from.
        self.cluster_config: dict[str, Any] = {}
        # Things a careful tool never does: joins that skip CA verification, configs not 0600.
        self.audit: Counter[str] = Counter(unsafe_skip_ca=0, loose_config_mode=0)

    @property
    def initialised(self) -> bool:
        return self.endpoint is not None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- tokens -----------------------------------------------------------------------------

    def add_token(
        self,
        text: str,
        ttl: timedelta,
        description: str = "",
        usages: tuple[str, ...] = ("authentication", "signing"),
        groups: tuple[str, ...] = (NODE_TOKEN_GROUP,),
    ) -> Token:
        m = TOKEN_RE.match(text)
        if m is None:
            raise ValueError(f'the bootstrap token "{text}" was not of the form "{TOKEN_RE.pattern}"')
        expires = None if ttl == timedelta(0) else self.now() + ttl
        token = Token(m.group(1), m.group(2), expires, description, usages, groups)
        self.tokens[token.token_id] = token
        return token

    def check_token(self, text: str) -> bool:
        """True when ``text`` is a live bootstrap token that may authenticate a join."""
        m = TOKEN_RE.match(text or "")
        if m is None:
            return False
        token = self.tokens.get(m.group(1))
        return (
            token is not None
            and secrets.compare_digest(token.secret, m.group(2))
            and token.valid(self.now())
            and "authentication" in token.usages
        )

    def upload_certs(self, key: str | None = None) -> str:
        """Store the control-plane certificates under a (new) key for two hours."""
        self.cert_key = key or secrets.token_hex(32)
        self.cert_key_expires = self.now() + CERTS_TTL
        self.add_token(new_token(), CERTS_TTL, CERTS_PROXY_DESCRIPTION, usages=(), groups=())
        return self.cert_key

    def certs_available(self) -> bool:
        return (
            self.cert_key is not None
            and self.cert_key_expires is not None
            and self.now() < self.cert_key_expires
        )

    # -- nodes --------------------------------------------------------------------------------

    def register(self, member: Member) -> None:
        self.members[member.name] = member
        if member.control_plane:
            self.etcd_members.add(member.name)
            self.etcd_addresses[member.name] = member.address
            self.etcd_stopped.discard(member.name)  # a new member at that name, running
        self.silent_kubelets.discard(member.name)

    def end(self) -> None:
        """The last etcd member is gone: no API server, no Node objects, no tokens are left."""
        self.endpoint = None
        self.members.clear()
        self.objects.clear()
        self.network = False
        self.tokens.clear()
        self.leases.clear()
        self.cert_key = self.cert_key_expires = None

    def ready(self, member: Member) -> bool:
        if member.name in self.silent_kubelets or member.kubelet_cert_expired:
            return False
        if self.strict_network and not self.network:
            return False
        return self.clock() >= member.registered + self.ready_delay

    def mark_control_plane(self, name: str, version: str) -> tuple[str, str]:
        """kubeadm's mark-control-plane phase of release ``version`` on a registered Node: its
        labels and taints (kubeversions), and the two lines it prints."""
        minor = kubeversions.minor(version)
        m = self.members[name]
        m.labels.update({key: "" for key in kubeversions.control_plane_labels(minor)})
        m.taints = kubeversions.control_plane_taints(minor)
        return kubeversions.mark_control_plane_lines(minor, name)

    def upgrade_marks(self, version: str) -> None:
        """``kubeadm upgrade apply``'s migration of the control planes' labels and taints."""
        minor = kubeversions.minor(version)
        for m in self.members.values():
            if kubeversions.is_control_plane(m.labels):
                labels, taints = kubeversions.upgraded_marks(
                    minor, m.labels, [{"key": k, "effect": "NoSchedule"} for k in m.taints])
                m.labels, m.taints = labels, tuple(t["key"] for t in taints)

    def roles(self, m: Member) -> str:
        """kubectl's ROLES column: every node-role.kubernetes.io/ label, sorted."""
        found = sorted(k[len(ROLE_PREFIX):] for k in m.labels if k.startswith(ROLE_PREFIX))
        return ",".join(found) or "<none>"

    def node_object(self, m: Member) -> dict[str, Any]:
        """A Node as the API serves it, with the fields kubectl users read."""
        created = datetime.fromtimestamp(m.registered, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": m.name,
            "kubernetes.io/os": "linux",
            **m.labels,
        }
        spec: dict[str, Any] = {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}
        taints = [{"effect": "NoSchedule", "key": key} for key in m.taints]
        taints += [dict(t) for t in m.extra_taints]
        if m.unschedulable:
            spec["unschedulable"] = True
            taints.append(
                {"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable",
                 "timeAdded": created}
            )
        if taints:
            spec["taints"] = taints
        ready = self.ready(m)
        stamp = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status"
            if ready
            else NETWORK_NOT_READY if self.strict_network and not self.network
            else "PLEG is not healthy: pleg has yet to be successful",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": created,
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "annotations": {
                    "kubeadm.alpha.kubernetes.io/cri-socket":
                        "unix:///var/run/containerd/containerd.sock",
                    "node.alpha.kubernetes.io/ttl": "0",
                    **m.annotations,
                },
                "creationTimestamp": created,
                "labels": labels,
                "name": m.name,
                "resourceVersion": str(int(m.registered * 1000) % 10_000_000),
                "uid": f"00000000-0000-4000-8000-{abs(hash(m.name)) % 10**12:012d}",
            },
            "spec": spec,
            "status": {
                "addresses": [
                    {"address": m.address, "type": "InternalIP"},
                    {"address": m.name, "type": "Hostname"},
                ],
                "conditions": [condition],
                "nodeInfo": {
                    "architecture": "amd64",
                    "containerRuntimeVersion": "containerd://1.6.20",
                    "kernelVersion": "6.1.0-linuxkit",
                    "kubeProxyVersion": m.kubelet_version,
                    "kubeletVersion": m.kubelet_version,
                    "operatingSystem": "linux",
                    "osImage": "LinuxKit Kubernetes Project",
                },
            },
        }

    def etcd_version(self, member: str) -> str:
        """The etcd ``member`` runs (``3.4.23``)."""
        return self.etcd_versions.get(member, ETCD_VERSION)

    def static_pods_json(self, node: str) -> str:
        """The mirror pods of ``node``'s static pods (a control plane's), as kube-system lists."""
        member = self.members.get(node)
        items = []
        if member is not None and member.control_plane:
            version = self.static_pods.get(node, self.version)
            images = {"etcd": etcd_image(self.etcd_version(node))}
            for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
                images[c] = f"registry.k8s.io/{c}:{version}"
            items = [{"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"{c}-{node}", "namespace": "kube-system",
                                   "annotations": {"kubernetes.io/config.mirror": "x"}},
                      "spec": {"nodeName": node, "containers": [{"name": c, "image": i}]},
                      "status": {"phase": "Running"}} for c, i in images.items()]
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}) + "\n"

    def nodes_json(self) -> str:
        items = [self.node_object(m) for m in self.members.values()]
        doc = {"apiVersion": "v1", "items": items, "kind": "List",
               "metadata": {"resourceVersion": ""}}
        return json.dumps(doc, indent=4) + "\n"
