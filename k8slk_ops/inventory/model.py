"""The typed inventory: what the rest of the program knows about a cluster before touching it.

Every model forbids unknown keys (a typo is an error, not a silently ignored setting), is strict
about types (``port: "22"`` in YAML is a quoted string, not a number) and frozen once loaded, so
no step can change what the operator wrote. Field names are snake_case in Python and camelCase
in files, as in kubeadm's own configuration.

Relative paths resolve against the inventory file's directory, passed as validation context
``{"base_dir": Path}``; ``~`` expands to the home directory.
"""

from __future__ import annotations

import functools
import os
import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from k8slk_ops.inventory import checks
from k8slk_ops.inventory.addons import Addon
from k8slk_ops.inventory.errors import InventoryIssue, Loc, field_path

Role = Literal["control-plane", "worker"]
HostKeyPolicy = Literal["strict", "accept-new", "pinned"]
ROLES: tuple[Role, ...] = ("control-plane", "worker")
DEFAULT_POD_SUBNET = "10.244.0.0/16"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/12"
DEFAULT_DNS_DOMAIN = "cluster.local"


def _resolve_path(value: object, info: ValidationInfo) -> object:
    """``~`` expands; a relative path is relative to the inventory file, not to the cwd."""
    if value is None:
        return value
    if not isinstance(value, str | Path):
        raise ValueError(f"must be a path (a string), got {value!r}")
    if not str(value).strip():
        raise ValueError("must not be empty")
    path = Path(os.path.expanduser(value))
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    if not path.is_absolute() and isinstance(base, Path):
        path = base / path
    return Path(os.path.abspath(path))


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"must be greater than 0 seconds, got {value}")
    return value


ResolvedPath = Annotated[Path, BeforeValidator(_resolve_path)]
Port = Annotated[int, AfterValidator(checks.port)]
Seconds = Annotated[float, AfterValidator(_positive)]
UserName = Annotated[str, AfterValidator(checks.user_name)]
JumpHost = Annotated[str, AfterValidator(checks.user_at_hostport)]
Fingerprint = Annotated[str, AfterValidator(checks.fingerprint)]
Address = Annotated[str, AfterValidator(checks.host)]
LabelKey = Annotated[str, AfterValidator(checks.label_key)]
LabelValue = Annotated[str, AfterValidator(checks.label_value)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
    )


class SSHSettings(_Model):
    """How to reach a node over SSH. The inventory's ``ssh:`` holds the defaults; a node's
    own ``ssh:`` overrides single fields (see ``Inventory.ssh_for``)."""

    user: UserName = "root"
    port: Port = 22
    identity_file: ResolvedPath | None = None
    known_hosts: ResolvedPath = Field(default=Path("~/.ssh/known_hosts"), validate_default=True)
    host_key_policy: HostKeyPolicy = "strict"
    host_key_fingerprint: Fingerprint | None = None
    jump_host: JumpHost | None = None
    connect_timeout: Seconds = 10.0
    keepalive_interval: Seconds = 15.0
    config_file: ResolvedPath | None = Field(default=Path("~/.ssh/config"), validate_default=True)
    # A LinuxKit node makes new host keys at every boot. After a reboot this run made:
    # ``refuse`` stops at the node; ``accept`` trusts the first key it presents then.
    host_key_after_reboot: Literal["refuse", "accept"] = "refuse"


_NOT_NULL = (
    "user",
    "port",
    "known_hosts",
    "host_key_policy",
    "connect_timeout",
    "keepalive_interval",
)


class SSHOverrides(_Model):
    """A node's own SSH fields; those left out inherit the inventory's ``ssh:``. An explicit
    null clears an optional field (``jumpHost: null`` for a node reached directly)."""

    user: UserName | None = None
    port: Port | None = None
    identity_file: ResolvedPath | None = None
    known_hosts: ResolvedPath | None = None
    host_key_policy: HostKeyPolicy | None = None
    host_key_fingerprint: Fingerprint | None = None
    jump_host: JumpHost | None = None
    connect_timeout: Seconds | None = None
    keepalive_interval: Seconds | None = None
    config_file: ResolvedPath | None = None

    @field_validator(*_NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null; leave the field out to inherit ssh's value")
        return value

    def apply_to(self, base: SSHSettings) -> SSHSettings:
        """``base`` with the fields this node set (and only those) replaced."""
        return base.model_copy(update={f: getattr(self, f) for f in self.model_fields_set})


class KubeadmOverrides(_Model):
    """Mappings merged into the configuration documents rendered for kubeadm, by kind.
    ``apiVersion`` and ``kind`` are not allowed: they follow the node's kubeadm version."""

    init_configuration: dict[str, Any] | None = Field(default=None, alias="InitConfiguration")
    cluster_configuration: dict[str, Any] | None = Field(default=None, alias="ClusterConfiguration")
    join_configuration: dict[str, Any] | None = Field(default=None, alias="JoinConfiguration")
    kubelet_configuration: dict[str, Any] | None = Field(default=None, alias="KubeletConfiguration")
    kube_proxy_configuration: dict[str, Any] | None = Field(
        default=None, alias="KubeProxyConfiguration"
    )

    @field_validator("*")
    @classmethod
    def _no_type_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key in ("apiVersion", "kind"):
            if value is not None and key in value:
                raise ValueError(
                    f"{key!r} cannot be overridden: it follows the node's kubeadm version"
                )
        return value

    def as_mapping(self) -> dict[str, dict[str, Any]]:
        """``{kind: mapping}`` for the kinds the inventory sets, as the kubeadm renderer takes."""
        return {
            info.alias or name: dict(value)
            for name, info in type(self).model_fields.items()
            if (value := getattr(self, name)) is not None
        }

    def for_kind(self, kind: str) -> dict[str, Any]:
        """The override mapping for one document kind (empty when none)."""
        for name, info in type(self).model_fields.items():
            if info.alias == kind:
                value: dict[str, Any] | None = getattr(self, name)
                return dict(value or {})
        raise KeyError(f"not a kubeadm document kind: {kind!r}")


def _endpoint(value: str) -> str:
    """``host[:port]`` normalised; the port stays absent when the file left it out."""
    hp = checks.hostport(value)
    if hp.port is None:
        return f"[{hp.host}]" if ":" in hp.host else hp.host
    return checks.format_hostport(hp.host, hp.port)


# What ``cluster.reboot.local`` may name: filled in, shell-quoted, by steps/reboot.py.
REBOOT_PLACEHOLDERS = ("name", "address")


def _reboot_template(value: str) -> str:
    """A ``cluster.reboot.local`` template that fills in: only ``{name}`` and ``{address}``,
    literal braces doubled. Checked here, because a template like ``{addr}`` or
    ``awk '{print $1}'`` would otherwise fail only when the plan is made, as a traceback."""
    allowed = ", ".join(f"{{{p}}}" for p in REBOOT_PLACEHOLDERS)
    try:
        fields = [
            (name, spec or "", conversion or "")
            for _, name, spec, conversion in string.Formatter().parse(value)
            if name is not None
        ]
    except ValueError as exc:
        raise ValueError(
            f"is not a template that fills in ({exc}): write a literal brace as {{{{ or }}}}, "
            f"e.g. awk '{{{{print $1}}}}'; placeholders: {allowed}"
        ) from None
    for name, spec, conversion in fields:
        if name not in REBOOT_PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else "") + "}"
            raise ValueError(
                f"{shown} is not a placeholder: only {allowed} are filled in (shell-quoted); "
                "write a literal brace as {{ or }}"
            )
    return value


class RebootSpec(_Model):
    """How ``upgrade`` reboots a node into the image the boot server now serves: ``command``
    in the node's shell, or ``local`` on the operator's machine (an IPMI or PDU power cycle)
    with ``{name}`` and ``{address}`` filled in."""

    command: Annotated[str, Field(min_length=1)] = "reboot"
    local: Annotated[str, Field(min_length=1), AfterValidator(_reboot_template)] | None = None


class ClusterSpec(_Model):
    """What the cluster is: its name, version, endpoint and networks."""

    name: Annotated[str, AfterValidator(checks.dns_label)]
    kubernetes_version: Annotated[str, AfterValidator(checks.version)] | None = None
    control_plane_endpoint: Annotated[str, AfterValidator(_endpoint)] | None = None
    pod_subnet: Annotated[str, AfterValidator(checks.cidr_text)] = DEFAULT_POD_SUBNET
    service_subnet: Annotated[str, AfterValidator(checks.cidr_text)] = DEFAULT_SERVICE_SUBNET
    dns_domain: Annotated[str, AfterValidator(checks.dns_subdomain)] = DEFAULT_DNS_DOMAIN
    cert_sans: tuple[Annotated[str, AfterValidator(checks.san)], ...] = Field(
        default=(), alias="certSANs"
    )
    kubeadm: KubeadmOverrides = KubeadmOverrides()
    # Manifests applied after init (a pod network first); read by ``inventory.addons``.
    addons: tuple[ResolvedPath, ...] = ()
    # False for a pod network that replaces kube-proxy (kube-router, Cilium): none is installed.
    kube_proxy: bool = True
    reboot: RebootSpec = RebootSpec()

    @field_validator("cert_sans", "addons", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value


TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class TaintSpec(_Model):
    """A taint the inventory wants on a node: a key (a label key), an optional value and one
    of the three effects the scheduler knows. A node carries at most one taint per key and
    effect (the API's identity of a taint), so that is what the inventory may list once."""

    key: LabelKey
    value: LabelValue = ""
    effect: TaintEffect


class NodeSpec(_Model):
    """One machine booted from the LinuxKit image, and its part in the cluster."""

    name: Annotated[str, AfterValidator(checks.dns_subdomain)]
    address: Address
    role: Role
    # The IP kubeadm advertises and the kubelet registers; by default the address itself when
    # it is an IP, else the address the SSH connection reached (a name resolved).
    node_ip: Annotated[str, AfterValidator(checks.ip)] | None = Field(default=None, alias="nodeIP")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    # Set (and, once dropped from here, removed) by ``apply``; see nodemeta.py.
    taints: tuple[TaintSpec, ...] = ()
    # ``apply`` drains, resets and deletes a node marked so; no other command reads it.
    remove: bool = False
    ssh: SSHOverrides = SSHOverrides()

    @field_validator("taints", mode="before")
    @classmethod
    def _taints_to_tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("taints")
    @classmethod
    def _one_taint_per_key_and_effect(
        cls, value: tuple[TaintSpec, ...]
    ) -> tuple[TaintSpec, ...]:
        seen: set[tuple[str, str]] = set()
        for taint in value:
            ident = (taint.key, taint.effect)
            if ident in seen:
                raise ValueError(
                    f"taint {taint.key}:{taint.effect} is listed twice: a node has one taint "
                    "per key and effect; keep one of them"
                )
            seen.add(ident)
        return value

    @property
    def is_control_plane(self) -> bool:
        return self.role == "control-plane"


Problem = tuple[Loc, str]
NO_CONTROL_PLANE = "at least one node must have role 'control-plane'"


def duplicates(values: Sequence[tuple[int, str]], field: str, what: str) -> list[Problem]:
    """Each repeat of a value among ``(node index, value)`` pairs, pointing at the repeat."""
    seen: dict[str, int] = {}
    problems: list[Problem] = []
    for index, value in values:
        if value in seen:
            problems.append(
                (("nodes", index, field), f"duplicate {what} {value!r} (also nodes[{seen[value]}])")
            )
        else:
            seen[value] = index
    return problems


def subnet_overlap(
    pod_subnet: str, service_subnet: str, at: str = "serviceSubnet"
) -> list[Problem]:
    """Pods and services must not share addresses: routing could not tell them apart.
    ``at`` is the field to point at (the one the file sets, when it sets only one)."""
    pair = checks.overlapping(pod_subnet, service_subnet)
    if pair is None:
        return []
    return [
        (
            ("cluster", at),
            f"podSubnet {pair[0]} and serviceSubnet {pair[1]} overlap: "
            "pods and services need separate ranges",
        )
    ]


def unpinned(ssh: SSHSettings, nodes: Sequence[tuple[int, NodeSpec]]) -> list[Problem]:
    """Nodes whose effective policy is ``pinned`` but that have no fingerprint to pin."""
    return [
        (
            ("nodes", index, "ssh", "hostKeyFingerprint"),
            "hostKeyPolicy 'pinned' needs this node's host key fingerprint "
            "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the node)",
        )
        for index, node in nodes
        if (eff := node.ssh.apply_to(ssh)).host_key_policy == "pinned"
        and eff.host_key_fingerprint is None
    ]


def cross_check(cluster: ClusterSpec, ssh: SSHSettings, nodes: Sequence[NodeSpec]) -> list[Problem]:
    """Rules that span fields: uniqueness, a control plane, subnets apart, pins present."""
    indexed = list(enumerate(nodes))
    problems = duplicates([(i, n.name) for i, n in indexed], "name", "node name")
    problems += duplicates([(i, n.address) for i, n in indexed], "address", "address")
    problems += duplicates(
        [(i, n.node_ip) for i, n in indexed if n.node_ip is not None], "nodeIP", "node IP"
    )
    if not any(n.is_control_plane for n in nodes):
        problems.append((("nodes",), NO_CONTROL_PLANE))
    problems += subnet_overlap(cluster.pod_subnet, cluster.service_subnet)
    problems += unpinned(ssh, indexed)
    return problems


class Inventory(_Model):
    """A validated inventory. Build it with ``load_inventory``; it is frozen."""

    cluster: ClusterSpec
    ssh: SSHSettings = SSHSettings()
    nodes: tuple[NodeSpec, ...]
    source: Path = Path("<memory>")
    # The manifests of ``cluster.addons``, read and filled in when the inventory loaded.
    addon_manifests: tuple[Addon, ...] = Field(default=(), exclude=True)
    # What the loader noticed without refusing the file (a host of an Ansible inventory that
    # is not a node): shown by ``inventory check`` and logged by every command.
    warnings: tuple[InventoryIssue, ...] = Field(default=(), exclude=True)

    @field_validator("nodes", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _consistent(self) -> Inventory:
        problems = cross_check(self.cluster, self.ssh, self.nodes)
        if problems:
            raise ValueError("; ".join(f"{field_path(loc)}: {msg}" for loc, msg in problems))
        return self

    @property
    def control_planes(self) -> tuple[NodeSpec, ...]:
        """Control plane nodes in file order; the first one is where the cluster starts."""
        return tuple(n for n in self.nodes if n.role == "control-plane")

    @property
    def workers(self) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if n.role == "worker")

    @property
    def first_control_plane(self) -> NodeSpec:
        """The node ``kubeadm init`` runs on when the cluster does not exist yet."""
        return self.control_planes[0]

    @property
    def endpoint(self) -> str:
        """``host:port`` of the API server every node and kubeconfig use (port 6443 unless set)."""
        if self.cluster.control_plane_endpoint is not None:
            hp = checks.hostport(self.cluster.control_plane_endpoint)
        else:
            hp = checks.HostPort(self.first_control_plane.address, None)
        return hp.with_default(checks.DEFAULT_API_PORT)

    @property
    def endpoint_host(self) -> str:
        return checks.hostport(self.endpoint).host

    @property
    def endpoint_port(self) -> int:
        port = checks.hostport(self.endpoint).port
        return port if port is not None else checks.DEFAULT_API_PORT

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @functools.cached_property
    def _by_name(self) -> dict[str, NodeSpec]:
        return {n.name: n for n in self.nodes}

    def node(self, name: str) -> NodeSpec:
        """The node called ``name``; KeyError names the known ones when there is none."""
        found = self._by_name.get(name)
        if found is not None:
            return found
        raise KeyError(f"no node {name!r} in {self.source} (nodes: {', '.join(self.names)})")

    def ssh_for(self, node: NodeSpec | str) -> SSHSettings:
        """The SSH settings that apply to one node: the defaults with its own overrides."""
        spec = self.node(node) if isinstance(node, str) else node
        return spec.ssh.apply_to(self.ssh)

    def select(self, names: Iterable[str]) -> tuple[NodeSpec, ...]:
        """The named nodes, in inventory order; KeyError for a name the inventory lacks."""
        wanted = set(names)
        for name in wanted:
            self.node(name)
        return tuple(n for n in self.nodes if n.name in wanted)
