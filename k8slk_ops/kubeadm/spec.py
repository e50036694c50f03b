"""What a rendered kubeadm file says, as typed values checked before anything is rendered.

The steps build these from the inventory and the run's credentials; the renderer turns them
into the document for one API version. Checking here (not in the renderer) means a bad token
or a missing CA pin is reported the same way whatever version the node speaks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from k8slk_ops.kubeadm.capin import is_ca_cert_hash
from k8slk_ops.kubeadm.errors import RenderError
from k8slk_ops.kubeadm.formats import is_certificate_key, is_token
from k8slk_ops.kubeadm.versions import KubeVersion

CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
DEFAULT_BIND_PORT = 6443
# kubeadm's own default groups and usages for a token that can join nodes.
DEFAULT_TOKEN_GROUPS = ("system:bootstrappers:kubeadm:default-node-token",)
DEFAULT_TOKEN_USAGES = ("signing", "authentication")

Overrides = Mapping[str, Mapping[str, Any]]


def _check_port(port: int, what: str) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise RenderError(f"{what} must be a TCP port (1-65535), not {port!r}")


def _check_text(value: str, what: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise RenderError(f"{what} must be a non-empty word without spaces, not {value!r}")


def _check_ip(value: str, what: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise RenderError(f"{what} must be an IP address, not {value!r}") from None


def _check_endpoint(value: str, what: str) -> None:
    """``host:port`` or ``[v6]:port``, as kubeadm expects an API server endpoint."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RenderError(f"{what} must be host:port, not {value!r}")
    _check_port(int(port), f"the port of {what}")
    _check_text(host, what)


@dataclass(frozen=True, kw_only=True)
class BootstrapTokenSpec:
    """A bootstrap token created by ``kubeadm init`` itself (InitConfiguration.bootstrapTokens)."""

    token: str
    ttl: str = "24h0m0s"
    description: str | None = None
    usages: tuple[str, ...] = DEFAULT_TOKEN_USAGES
    groups: tuple[str, ...] = DEFAULT_TOKEN_GROUPS

    def __post_init__(self) -> None:
        if not is_token(self.token):
            raise RenderError("a bootstrap token must look like [a-z0-9]{6}.[a-z0-9]{16}")
        _check_text(self.ttl, "a token TTL")


@dataclass(frozen=True, kw_only=True)
class InitSpec:
    """The first control plane: InitConfiguration + ClusterConfiguration + KubeletConfiguration.

    ``node_ip`` defaults to ``advertise_address``; it becomes kubelet's ``--node-ip`` so that a
    node with several interfaces registers the address the cluster should use.
    """

    node_name: str
    advertise_address: str
    kubernetes_version: KubeVersion | str
    cluster_name: str = "kubernetes"
    bind_port: int = DEFAULT_BIND_PORT
    node_ip: str | None = None
    control_plane_endpoint: str | None = None
    pod_subnet: str | None = None
    service_subnet: str | None = None
    dns_domain: str = "cluster.local"
    cert_sans: tuple[str, ...] = ()
    bootstrap_tokens: tuple[BootstrapTokenSpec, ...] = ()
    certificate_key: str | None = None
    node_labels: Mapping[str, str] = field(default_factory=dict)
    cri_socket: str = CRI_SOCKET
    overrides: Overrides = field(default_factory=dict)
    # False: init installs no kube-proxy (``skipPhases`` where the config API has it).
    kube_proxy: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "kubernetes_version", KubeVersion.parse(self.kubernetes_version))
        _check_text(self.node_name, "the node name")
        _check_ip(self.advertise_address, "the advertise address")
        _check_ip(self.kubelet_node_ip, "the node IP")
        _check_text(self.cluster_name, "the cluster name")
        _check_port(self.bind_port, "the API server bind port")
        if self.control_plane_endpoint is not None:
            _check_endpoint(self.control_plane_endpoint, "the control plane endpoint")
        for san in self.cert_sans:
            _check_text(san, "a certificate SAN")
        if self.certificate_key is not None and not is_certificate_key(self.certificate_key):
            raise RenderError("a certificate key must be 64 lowercase hex digits")

    @property
    def version(self) -> KubeVersion:
        return KubeVersion.parse(self.kubernetes_version)

    @property
    def kubelet_node_ip(self) -> str:
        return self.node_ip or self.advertise_address


@dataclass(frozen=True, kw_only=True)
class JoinSpec:
    """A node joining through a bootstrap token, always with the CA pinned.

    ``control_plane`` adds the ``controlPlane`` section: the node's own API endpoint and the
    certificate key that decrypts the uploaded control plane certificates.
    """

    node_name: str
    api_server_endpoint: str
    token: str
    ca_cert_hashes: tuple[str, ...]
    node_ip: str | None = None
    control_plane: bool = False
    advertise_address: str | None = None
    bind_port: int = DEFAULT_BIND_PORT
    certificate_key: str | None = None
    discovery_timeout: str | None = None
    node_labels: Mapping[str, str] = field(default_factory=dict)
    cri_socket: str = CRI_SOCKET
    overrides: Overrides = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_text(self.node_name, "the node name")
        _check_endpoint(self.api_server_endpoint, "the API server endpoint")
        if not is_token(self.token):
            raise RenderError("the join token must look like [a-z0-9]{6}.[a-z0-9]{16}")
        if isinstance(self.ca_cert_hashes, str):
            raise RenderError("ca_cert_hashes must be a sequence of pins, not one string")
        if not self.ca_cert_hashes:
            raise RenderError(
                "refusing to render a join without a CA pin: kubeadm would have to trust "
                "whatever answers at the endpoint (unsafeSkipCAVerification is never used)"
            )
        for pin in self.ca_cert_hashes:
            if not is_ca_cert_hash(pin):
                raise RenderError(f"not a CA pin (sha256:<64 lowercase hex>): {pin!r}")
        if self.node_ip is not None:
            _check_ip(self.node_ip, "the node IP")
        if self.advertise_address is not None:
            _check_ip(self.advertise_address, "the advertise address")
        _check_port(self.bind_port, "the API server bind port")
        if self.discovery_timeout is not None:
            _check_text(self.discovery_timeout, "the discovery timeout")
        if self.certificate_key is not None and not is_certificate_key(self.certificate_key):
            raise RenderError("a certificate key must be 64 lowercase hex digits")
        if self.control_plane:
            if self.certificate_key is None:
                raise RenderError("a control-plane join needs a certificate key")
            if self.advertise_address is None and self.node_ip is None:
                raise RenderError("a control-plane join needs an advertise address")
        elif self.certificate_key is not None:
            raise RenderError("a certificate key is only for control-plane joins")

    @property
    def control_plane_address(self) -> str | None:
        return self.advertise_address or self.node_ip
