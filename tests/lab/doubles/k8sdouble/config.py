"""Read ``kubeadm init|join|reset|upgrade --config FILE`` the way real kubeadm does.

The tool under test renders these files; the lab's kubeadm double reads them with this module,
so a file the real kubeadm would refuse (a field the node's API version lacks, a map where
v1beta4 wants a list, a join without a CA pin) fails here too, with kubeadm's own text.

The steps follow kubeadm's: split the file into documents on ``---`` lines; read each
document's apiVersion and kind; refuse API versions the node's kubeadm no longer or does not
yet know; decode each kubeadm document against the real field set of its version (unknown
fields and duplicate keys are strict-decoding errors, wrong types are ``json: cannot
unmarshal ...`` errors); apply kubeadm's defaults; validate as ``ValidateInitConfiguration``
and ``ValidateJoinConfiguration`` do. Real kubeadm init/join only *warn* about strict-decoding
errors (``kubeadm config validate`` fails on them); ``load`` fails by default, because a lab that
lets a renderer bug through is worse than one stricter than kubeadm, and ``strict=False`` gives
kubeadm's warnings instead.

Only the standard library and PyYAML: this runs under the node's /usr/bin/python3.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from k8sdouble import env, kubeadmtexts
from k8sdouble.errors import CommandError

KUBEADM_GROUP = "kubeadm.k8s.io"
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
KUBE_PROXY_API = "kubeproxy.config.k8s.io/v1alpha1"
COMPONENT_APIS = {"KubeletConfiguration": KUBELET_API, "KubeProxyConfiguration": KUBE_PROXY_API}
COMPONENT_GROUPS = {"kubelet.config.k8s.io", "kubeproxy.config.k8s.io"}
KUBEADM_SCHEME = "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"
COMPONENT_SCHEME = "k8s.io/kubernetes/cmd/kubeadm/app/componentconfigs/scheme.go:28"

DEFAULT_BIND_PORT = 6443
DEFAULT_SERVICE_SUBNET = "10.96.0.0/12"
DEFAULT_DNS_DOMAIN = "cluster.local"
DEFAULT_CLUSTER_NAME = "kubernetes"
DEFAULT_TOKEN_TTL = 24 * 3600.0
DEFAULT_TOKEN_USAGES = ("signing", "authentication")
DEFAULT_TOKEN_GROUPS = ("system:bootstrappers:kubeadm:default-node-token",)
DEFAULT_CA_CERT_PATH = "/etc/kubernetes/pki/ca.crt"

TOKEN_PATTERN = r"\A([a-z0-9]{6})\.([a-z0-9]{16})\z"
_TOKEN_RE = re.compile(r"([a-z0-9]{6})\.([a-z0-9]{16})")
GROUP_PATTERN = r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z"
_GROUP_RE = re.compile(r"system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]")
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_RE = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
_DNS1123_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{_DNS1123_LABEL}(\\.{_DNS1123_LABEL})*')"
)


# ---------------------------------------------------------------------------------------------
# Versions


def parse_version(text: str) -> tuple[int, int, int]:
    """``v1.31.3`` (or ``1.31``, ``v1.31.0-rc.1``) -> ``(1, 31, 3)``; ValueError otherwise."""
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?", text.strip())
    if not m:
        raise ValueError(f"not a Kubernetes version: {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _minor(kube_version: str) -> int:
    major, minor, _ = parse_version(kube_version)
    return minor if major == 1 else 1000


def known_api_versions(kube_version: str) -> tuple[str, ...]:
    """The kubeadm.k8s.io versions this kubeadm reads, oldest first."""
    minor = _minor(kube_version)
    out = []
    if 15 <= minor <= 26:
        out.append("v1beta2")
    if 22 <= minor <= 35:
        out.append("v1beta3")
    if minor >= 31:
        out.append("v1beta4")
    return tuple(out)


def default_api_version(kube_version: str) -> str:
    """The version this kubeadm writes (``kubeadm config print``): its newest one."""
    known = known_api_versions(kube_version)
    return f"{KUBEADM_GROUP}/{known[-1] if known else 'v1beta4'}"


def _old_api_versions(kube_version: str) -> dict[str, str]:
    """kubeadm's ``oldKnownAPIVersions``: removed versions and the last kubeadm that read them."""
    minor = _minor(kube_version)
    old = {"v1alpha1": "v1.11", "v1alpha2": "v1.12", "v1alpha3": "v1.14", "v1beta1": "v1.15"}
    if minor >= 27:
        old["v1beta2"] = "v1.22"
    if minor >= 36:
        old["v1beta3"] = "v1.35"
    return old


def _deprecated_api_versions(kube_version: str) -> set[str]:
    minor = _minor(kube_version)
    if 22 <= minor <= 26:
        return {"v1beta2"}
    if minor >= 31:
        return {"v1beta3"}
    return set()


# ---------------------------------------------------------------------------------------------
# Go durations


_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX_NS = 2**63 - 1


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_duration(s: str) -> float:
    """A Go duration (``24h0m0s``, ``1h``, ``90m``, ``1.5s``, ``0``) -> seconds.

    ValueError carries Go's ``time.ParseDuration`` text, which kubeadm prints as it is.
    """
    orig, rest, neg = s, s, False
    invalid = ValueError(f"time: invalid duration {_go_quote(orig)}")
    if rest[:1] in ("-", "+"):
        neg, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise invalid
    total = 0
    while rest:
        m = re.match(r"(\d*)(?:\.(\d*))?", rest)
        assert m is not None  # the pattern matches the empty string
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise invalid
        rest = rest[m.end() :]
        u = re.match(r"[^.0-9]*", rest)
        assert u is not None
        unit = u.group(0)
        if not unit:
            raise ValueError(f"time: missing unit in duration {_go_quote(orig)}")
        if unit not in _UNITS_NS:
            raise ValueError(f"time: unknown unit {_go_quote(unit)} in duration {_go_quote(orig)}")
        rest = rest[len(unit) :]
        scale = _UNITS_NS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // 10 ** len(frac)
        total += value
        if total > _MAX_NS + (1 if neg else 0):
            raise invalid
    return (-total if neg else total) / 1e9


# ---------------------------------------------------------------------------------------------
# The public result


@dataclass(frozen=True)
class BootstrapToken:
    """One of InitConfiguration.bootstrapTokens, defaults applied."""

    token: str
    ttl_seconds: float | None  # None = never expires (ttl 0); default 24h
    description: str
    usages: tuple[str, ...]
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    """What a kubeadm command takes from its --config file."""

    api_version: str
    documents: dict[str, dict[str, Any]]
    warnings: tuple[str, ...]
    node_name: str | None
    advertise_address: str | None
    bind_port: int
    control_plane_endpoint: str | None
    cert_sans: tuple[str, ...]
    cluster_name: str
    kubernetes_version: str | None
    service_subnet: str
    pod_subnet: str | None
    dns_domain: str
    bootstrap_tokens: tuple[BootstrapToken, ...]
    certificate_key: str | None
    skip_phases: tuple[str, ...]
    # nodeRegistration.ignorePreflightErrors: checks whose failure is only a warning
    ignore_preflight_errors: tuple[str, ...]
    discovery_endpoint: str | None
    discovery_token: str | None
    ca_cert_hashes: tuple[str, ...]
    unsafe_skip_ca_verification: bool
    join_control_plane: bool
    join_certificate_key: str | None


# ---------------------------------------------------------------------------------------------
# Field sets: what Go's structs accept, per API version


class _Type:
    """A Go type as kubeadm's decoder sees it; ``go`` is how Go's errors name it."""

    go = "interface {}"


class _Scalar(_Type):
    def __init__(self, go: str) -> None:
        self.go = go


class _Any(_Type):
    """Anything goes (component configs, corev1 fields we do not model)."""


class _Duration(_Type):
    go = "v1.Duration"


class _Time(_Type):
    go = "v1.Time"


class _Token(_Type):
    go = "v1.BootstrapTokenString"


class _List(_Type):
    def __init__(self, elem: _Type) -> None:
        self.elem = elem
        self.go = f"[]{elem.go}"


class _Map(_Type):
    def __init__(self, value: _Type) -> None:
        self.value = value
        self.go = f"map[string]{value.go}"


class _Struct(_Type):
    def __init__(self, pkg: str, name: str, fields: dict[str, _Type]) -> None:
        self.name = name
        self.go = f"{pkg}.{name}"
        self.fields = fields


STRING, INT32, INT, BOOL, ANY = (
    _Scalar("string"),
    _Scalar("int32"),
    _Scalar("int"),
    _Scalar("bool"),
    _Any(),
)
DURATION, TIME, TOKEN = _Duration(), _Time(), _Token()
STRINGS = _List(STRING)


def _schema(version: str) -> dict[str, _Struct]:
    """The kinds of kubeadm.k8s.io/<version> with their real field sets."""
    b2, b4 = version == "v1beta2", version == "v1beta4"

    def st(name: str, fields: dict[str, _Type | None]) -> _Struct:
        return _Struct(version, name, {k: v for k, v in fields.items() if v is not None})

    def only(cond: bool, t: _Type) -> _Type | None:
        return t if cond else None

    arg = st("Arg", {"name": STRING, "value": STRING})
    args: _Type = _List(arg) if b4 else _Map(STRING)
    envs = _List(st("EnvVar", {"name": STRING, "value": STRING, "valueFrom": ANY}))
    volume = st(
        "HostPathMount",
        {
            "name": STRING,
            "hostPath": STRING,
            "mountPath": STRING,
            "readOnly": BOOL,
            "pathType": STRING,
        },
    )
    component = {"extraArgs": args, "extraVolumes": _List(volume), "extraEnvs": only(b4, envs)}
    image = {"imageRepository": STRING, "imageTag": STRING}
    taint = _Struct(
        "v1", "Taint", {"key": STRING, "value": STRING, "effect": STRING, "timeAdded": TIME}
    )
    registration = st(
        "NodeRegistrationOptions",
        {
            "name": STRING,
            "criSocket": STRING,
            "taints": _List(taint),
            "kubeletExtraArgs": args,
            "ignorePreflightErrors": STRINGS,
            "imagePullPolicy": only(not b2, STRING),
            "imagePullSerial": only(b4, BOOL),
        },
    )
    endpoint = st("APIEndpoint", {"advertiseAddress": STRING, "bindPort": INT32})
    patches = st("Patches", {"directory": STRING})
    timeouts = st(
        "Timeouts",
        {
            k: DURATION
            for k in (
                "controlPlaneComponentHealthCheck",
                "kubeletHealthCheck",
                "kubernetesAPICall",
                "etcdAPICall",
                "tlsBootstrap",
                "discovery",
                "upgradeManifests",
            )
        },
    )
    token_pkg = "v1beta2" if b2 else "v1"
    bootstrap_token = _Struct(
        token_pkg,
        "BootstrapToken",
        {
            "token": TOKEN,
            "description": STRING,
            "ttl": DURATION,
            "expires": TIME,
            "usages": STRINGS,
            "groups": STRINGS,
        },
    )
    init = st(
        "InitConfiguration",
        {
            "bootstrapTokens": _List(bootstrap_token),
            "dryRun": only(b4, BOOL),
            "nodeRegistration": registration,
            "localAPIEndpoint": endpoint,
            "certificateKey": STRING,
            "skipPhases": only(not b2, STRINGS),
            "patches": only(not b2, patches),
            "timeouts": only(b4, timeouts),
        },
    )
    local_etcd = st(
        "LocalEtcd",
        {
            **image,
            "dataDir": STRING,
            "extraArgs": args,
            "extraEnvs": only(b4, envs),
            "serverCertSANs": STRINGS,
            "peerCertSANs": STRINGS,
        },
    )
    external_etcd = st(
        "ExternalEtcd",
        {"endpoints": STRINGS, "caFile": STRING, "certFile": STRING, "keyFile": STRING},
    )
    cluster = st(
        "ClusterConfiguration",
        {
            "etcd": st("Etcd", {"local": local_etcd, "external": external_etcd}),
            "networking": st(
                "Networking",
                {"serviceSubnet": STRING, "podSubnet": STRING, "dnsDomain": STRING},
            ),
            "kubernetesVersion": STRING,
            "controlPlaneEndpoint": STRING,
            "apiServer": st(
                "APIServer",
                {
                    **component,
                    "certSANs": STRINGS,
                    "timeoutForControlPlane": only(not b4, DURATION),
                },
            ),
            "controllerManager": st("ControlPlaneComponent", component),
            "scheduler": st("ControlPlaneComponent", component),
            "dns": st("DNS", {"type": only(b2, STRING), **image, "disabled": only(b4, BOOL)}),
            "proxy": only(b4, st("Proxy", {"disabled": BOOL})),
            "certificatesDir": STRING,
            "imageRepository": STRING,
            "useHyperKubeImage": only(b2, BOOL),
            "featureGates": _Map(BOOL),
            "clusterName": STRING,
            "encryptionAlgorithm": only(b4, STRING),
            "certificateValidityPeriod": only(b4, DURATION),
            "caCertificateValidityPeriod": only(b4, DURATION),
        },
    )
    discovery = st(
        "Discovery",
        {
            "bootstrapToken": st(
                "BootstrapTokenDiscovery",
                {
                    "token": STRING,
                    "apiServerEndpoint": STRING,
                    "caCertHashes": STRINGS,
                    "unsafeSkipCAVerification": BOOL,
                },
            ),
            "file": st("FileDiscovery", {"kubeConfigPath": STRING}),
            "tlsBootstrapToken": STRING,
            "timeout": only(not b4, DURATION),
        },
    )
    join = st(
        "JoinConfiguration",
        {
            "dryRun": only(b4, BOOL),
            "nodeRegistration": registration,
            "caCertPath": STRING,
            "discovery": discovery,
            "controlPlane": st(
                "JoinControlPlane", {"localAPIEndpoint": endpoint, "certificateKey": STRING}
            ),
            "skipPhases": only(not b2, STRINGS),
            "patches": only(not b2, patches),
            "timeouts": only(b4, timeouts),
        },
    )
    kinds = {"InitConfiguration": init, "ClusterConfiguration": cluster, "JoinConfiguration": join}
    if b4:
        kinds["ResetConfiguration"] = st(
            "ResetConfiguration",
            {
                "cleanupTmpDir": BOOL,
                "certificatesDir": STRING,
                "criSocket": STRING,
                "dryRun": BOOL,
                "force": BOOL,
                "ignorePreflightErrors": STRINGS,
                "skipPhases": STRINGS,
                "unmountFlags": STRINGS,
                "timeouts": timeouts,
            },
        )
        common = {"dryRun": BOOL, "etcdUpgrade": BOOL, "ignorePreflightErrors": STRINGS}
        pulls = {"imagePullPolicy": STRING, "imagePullSerial": BOOL}
        experimental = {"allowExperimentalUpgrades": BOOL, "allowRCUpgrades": BOOL}
        kinds["UpgradeConfiguration"] = st(
            "UpgradeConfiguration",
            {
                "apply": st(
                    "UpgradeApplyConfiguration",
                    {
                        "kubernetesVersion": STRING,
                        **experimental,
                        "certificateRenewal": BOOL,
                        **common,
                        "forceUpgrade": BOOL,
                        "patches": patches,
                        "printConfig": BOOL,
                        "skipPhases": STRINGS,
                        **pulls,
                    },
                ),
                "diff": st(
                    "UpgradeDiffConfiguration", {"kubernetesVersion": STRING, "contextLines": INT}
                ),
                "node": st(
                    "UpgradeNodeConfiguration",
                    {
                        "certificateRenewal": BOOL,
                        **common,
                        "skipPhases": STRINGS,
                        "patches": patches,
                        **pulls,
                    },
                ),
                "plan": st(
                    "UpgradePlanConfiguration",
                    {"kubernetesVersion": STRING, **experimental, **common, "printConfig": BOOL},
                ),
                "timeouts": timeouts,
            },
        )
    return kinds


_SCHEMAS = {v: _schema(v) for v in ("v1beta2", "v1beta3", "v1beta4")}


# ---------------------------------------------------------------------------------------------
# YAML, as sigs.k8s.io/yaml reads it


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that records duplicate keys (goyaml's strict mode) and leaves
    timestamps as strings (goyaml does, when it decodes into an interface)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            value = self.construct_object(value_node, deep=deep)
            if not isinstance(key, str):
                key = _json_key(key)
            if key in out:
                line = value_node.start_mark.line + 1
                self.duplicates.append(f"line {line}: key {_go_quote(key)} already set in map")
            out[key] = value
        return out


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _split_documents(text: str) -> list[str]:
    """k8s.io/apimachinery's YAMLReader: a document ends at a line starting with ``---``."""
    docs: list[str] = []
    buf: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("---"):
            trimmed = line[3:].strip()
            if trimmed and not trimmed.startswith("#"):
                raise CommandError(f"invalid Yaml document separator: {trimmed}")
            if buf:
                docs.append("".join(buf))
                buf = []
            continue
        buf.append(line)
    if buf:
        docs.append("".join(buf))
    return docs


def _parse(doc: str) -> tuple[Any, list[str]]:
    loader = _Loader(doc)
    try:
        return loader.get_single_data(), loader.duplicates
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise CommandError(
            "could not interpret GroupVersionKind; unmarshal error: error converting YAML to "
            f"JSON: yaml: {line}{problem}"
        ) from None
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------------------------
# Decoding: encoding/json's and apimachinery's strict decoder, on parsed YAML


class _Fatal(Exception):
    """A decoding error that stops decoding (a ``json.Unmarshaler`` failed)."""


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _Decoder:
    """Walks one document against its struct, as Go decodes the JSON that YAML becomes.

    JSON object keys come sorted (sigs.k8s.io/yaml marshals a map), so errors are found in
    key order. Type errors are kept (the first one wins) and decoding goes on, as Go's
    decoder does; unknown fields are strict errors, with their path.
    """

    def __init__(self) -> None:
        self.type_error: str | None = None
        self.unknown: list[str] = []

    def decode(self, value: Any, t: _Type, path: str, where: tuple[str, str]) -> None:
        """``where``: (innermost struct's name, JSON field path without indices)."""
        if value is None or isinstance(t, _Any):
            return
        if isinstance(t, _Struct):
            if not isinstance(value, dict):
                return self._mismatch(value, t, where)
            for key in sorted(value):
                sub = f"{path}.{key}" if path else key
                if key not in t.fields:
                    self.unknown.append(f"unknown field {_go_quote(sub)}")
                    continue
                field = f"{where[1]}.{key}" if where[1] else key
                self.decode(value[key], t.fields[key], sub, (t.name, field))
        elif isinstance(t, _List):
            if not isinstance(value, list):
                return self._mismatch(value, t, where)
            for i, item in enumerate(value):
                self.decode(item, t.elem, f"{path}[{i}]", where)
        elif isinstance(t, _Map):
            if not isinstance(value, dict):
                return self._mismatch(value, t, where)
            for key in sorted(value):
                self.decode(value[key], t.value, f"{path}.{key}", where)
        elif isinstance(t, _Duration):
            if not isinstance(value, str):
                raise _Fatal(
                    f"json: cannot unmarshal {_json_kind(value)} into Go value of type string"
                )
            try:
                parse_duration(value)
            except ValueError as e:
                raise _Fatal(str(e)) from None
        elif isinstance(t, _Time):
            if not isinstance(value, str):
                raise _Fatal(
                    f"json: cannot unmarshal {_json_kind(value)} into Go value of type string"
                )
            if _parse_time(value) is None:
                raise _Fatal(
                    f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse '
                    f'"{value}" as "2006"'
                )
        elif isinstance(t, _Token):
            raw = value if isinstance(value, str) else _json_key(value)
            if not _TOKEN_RE.fullmatch(raw):
                raise _Fatal(
                    f"the bootstrap token {_go_quote(raw)} was not of the form "
                    f"{_go_quote(TOKEN_PATTERN)}"
                )
        elif t is STRING:
            if not isinstance(value, str):
                self._mismatch(value, t, where)
        elif t is BOOL:
            if not isinstance(value, bool):
                self._mismatch(value, t, where)
        elif t in (INT32, INT):
            self._integer(value, t, where)
        return None

    def _integer(self, value: Any, t: _Type, where: tuple[str, str]) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self._mismatch(value, t, where)
            return
        bits = 31 if t is INT32 else 63
        if value != int(value) or not -(2**bits) <= value < 2**bits:
            shown = repr(value) if isinstance(value, float) else str(value)
            self._mismatch(value, t, where, f"number {shown}")

    def _mismatch(
        self, value: Any, t: _Type, where: tuple[str, str], what: str | None = None
    ) -> None:
        if self.type_error is None:
            self.type_error = (
                f"json: cannot unmarshal {what or _json_kind(value)} into Go struct field "
                f"{where[0]}.{where[1]} of type {t.go}"
            )


def _parse_time(value: str) -> datetime | None:
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _gvk_repr(group: str, version: str, kind: str) -> str:
    """Go's ``%#v`` of a schema.GroupVersionKind."""
    return f'schema.GroupVersionKind{{Group:"{group}", Version:"{version}", Kind:"{kind}"}}'


# ---------------------------------------------------------------------------------------------
# Validation helpers: kubeadm's field.ErrorList, as text


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, list):
        return "[]string{" + ", ".join(_go_quote(str(v)) for v in value) + "}"
    return str(value)


def _invalid(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {_go_value(value)}: {detail}"


def _aggregate(errs: list[str]) -> None:
    """``field.ErrorList.ToAggregate()``: one error as it is, several in brackets."""
    if len(errs) == 1:
        raise CommandError(errs[0])
    if errs:
        raise CommandError("[" + ", ".join(errs) + "]")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_dns1123(value: str) -> bool:
    return len(value) <= 253 and _DNS1123_RE.fullmatch(value) is not None


def _split_host_port(endpoint: str) -> str | None:
    """Go's ``net.SplitHostPort``: None when fine, else its error text."""
    if endpoint.startswith("["):
        end = endpoint.find("]")
        if end < 0:
            return f"address {endpoint}: missing ']' in address"
        if endpoint[end + 1 : end + 2] != ":":
            return f"address {endpoint}: missing port in address"
        return None
    if ":" not in endpoint:
        return f"address {endpoint}: missing port in address"
    if endpoint.count(":") > 1:
        return f"address {endpoint}: too many colons in address"
    return None


def _valid_host_port(endpoint: str) -> bool:
    """kubeadm's ``ParseHostPort``: an IP or DNS name, with an optional valid port."""
    host, port = endpoint, ""
    if _split_host_port(endpoint) is None:
        host, _, port = endpoint.rpartition(":")
        host = host.strip("[]")
        if not port.isdigit() or not 0 < int(port) < 65536:
            return False
    return _is_ip(host) or _is_dns1123(host)


def _check_cert_key(key: str, path: str, errs: list[str]) -> None:
    if not key:
        return
    bad = next((c for c in key if c not in "0123456789abcdefABCDEF"), None)
    if bad is not None:
        detail = f"encoding/hex: invalid byte: U+{ord(bad):04X} {bad!r}"
        errs.append(_invalid(path, key, f"certificate key decoding error: {detail}"))
    elif len(key) % 2:
        errs.append(
            _invalid(
                path, key, "certificate key decoding error: encoding/hex: odd length hex string"
            )
        )
    elif len(key) != 64:
        detail = (
            f"invalid certificate key size {len(key) // 2}, the key must be an AES key of size 32"
        )
        errs.append(_invalid(path, key, detail))


def _endpoint(doc: dict[str, Any]) -> tuple[str | None, int]:
    """APIEndpoint with kubeadm's dynamic defaults, whose address check fails before validation."""
    address = str(doc.get("advertiseAddress") or "")
    if address and not _is_ip(address):
        raise CommandError(
            f'couldn\'t use "{address}" as "apiserver-advertise-address", must be ipv4 or ipv6 '
            "address"
        )
    return address or None, int(doc.get("bindPort") or DEFAULT_BIND_PORT)


def _check_port(port: int, path: str, errs: list[str]) -> None:
    if not 0 < port < 65536:
        errs.append(_invalid(path, port, "port number is not valid"))


def _check_registration(reg: dict[str, Any], errs: list[str]) -> None:
    name = reg.get("name")
    if name and not _is_dns1123(name):
        errs.append(_invalid("nodeRegistration.name", name, _DNS1123_MSG))
    socket = reg.get("criSocket")
    if socket and "://" in socket and not socket.startswith("unix://"):
        scheme = socket.split("://", 1)[0]
        errs.append(
            _invalid(
                "nodeRegistration.criSocket",
                socket,
                f'only URL scheme "unix" is supported, got "{scheme}"',
            )
        )


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass
class _Doc:
    api_version: str
    group: str
    version: str
    kind: str
    body: dict[str, Any]
    duplicates: list[str]


def _klog_warning(message: str, source: str) -> str:
    """A warning line as klog prints it: ``W0102 15:04:05.000000   12345 file.go:42] text``."""
    now = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now))
    micros = int((now % 1) * 1_000_000)
    return f"W{stamp}.{micros:06d} {os.getpid():7d} {source}] {message}"


def _read_documents(text: str) -> list[_Doc]:
    """kubeadm's ``SplitConfigDocuments``: every document needs a group, version and kind."""
    docs: list[_Doc] = []
    errs: list[str] = []
    seen: set[str] = set()
    for raw in _split_documents(text):
        body, duplicates = _parse(raw)
        if body is None:
            continue  # only blanks or comments: nothing to read (kubeadm may refuse it)
        if not isinstance(body, dict):
            raise CommandError(
                "could not interpret GroupVersionKind; unmarshal error: error unmarshaling "
                f"JSON: while decoding JSON: json: cannot unmarshal {_json_kind(body)} into Go "
                'value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
                'Kind string "json:\\"kind,omitempty\\"" }'
            )
        api_version, kind = body.get("apiVersion") or "", body.get("kind") or ""
        for name, value in (("apiVersion", api_version), ("kind", kind)):
            if not isinstance(value, str):
                raise CommandError(
                    "could not interpret GroupVersionKind; unmarshal error: error unmarshaling "
                    f"JSON: while decoding JSON: json: cannot unmarshal {_json_kind(value)} into "
                    f"Go struct field .{name} of type string"
                )
        if api_version.count("/") > 1:
            raise CommandError(f"unexpected GroupVersion string: {api_version}")
        group, _, version = api_version.rpartition("/")
        if not group or not version or not kind:
            raise CommandError(
                f"invalid configuration for GroupVersionKind {{Group:{group} Version:{version} "
                f"Kind:{kind}}}: kind and apiVersion is mandatory information that must be "
                "specified"
            )
        if kind in seen:
            errs.append(f'invalid configuration: kind "{kind}" is specified twice in YAML file')
            continue
        seen.add(kind)
        docs.append(_Doc(api_version, group, version, kind, body, duplicates))
    _aggregate(errs)
    return docs


class _Reader:
    """One load: the node's kubeadm version, the strictness, the warnings gathered."""

    def __init__(self, kube_version: str, strict: bool) -> None:
        self.kube_version = kube_version
        self.strict = strict
        self.warnings: list[str] = []
        self.minor = _minor(kube_version)

    def check_version(self, doc: _Doc) -> None:
        """kubeadm's ``validateSupportedVersion`` and the scheme lookup that follows it."""
        if doc.group != KUBEADM_GROUP:
            return
        old = _old_api_versions(self.kube_version).get(doc.version)
        kind_note = f" (kind: {_go_quote(doc.kind)})" if self.minor >= 31 else ""
        if old:
            raise CommandError(
                f"your configuration file uses an old API spec: {_go_quote(doc.api_version)}"
                f"{kind_note}. Please use kubeadm {old} instead and run 'kubeadm config migrate "
                "--old-config old.yaml --new-config new.yaml', which will write the new, similar "
                "spec using a newer API version."
            )
        if doc.version in _deprecated_api_versions(self.kube_version):
            self.warnings.append(
                _klog_warning(
                    "your configuration file uses a deprecated API spec: "
                    f"{_go_quote(doc.api_version)}{kind_note}. Please use 'kubeadm config migrate "
                    "--old-config old.yaml --new-config new.yaml', which will write the new, "
                    "similar spec using a newer API version.",
                    "common.go:101",
                )
            )
        if doc.version == "v1beta4" and 28 <= self.minor <= 30:
            raise CommandError(
                f'experimental API spec: "{doc.api_version}" is not allowed. You can use the '
                "--allow-experimental-api flag if the command supports it."
            )
        if doc.version not in known_api_versions(self.kube_version):
            self.not_registered(doc)

    def not_registered(self, doc: _Doc) -> None:
        raise CommandError(
            f"no kind {_go_quote(doc.kind)} is registered for version "
            f"{_go_quote(doc.api_version)} in scheme {_go_quote(KUBEADM_SCHEME)}"
        )

    def decode(self, doc: _Doc) -> None:
        """Strict decoding of a kubeadm kind; component configs are only checked for form."""
        gvk = _gvk_repr(doc.group, doc.version, doc.kind)
        strict_errs: list[str] = []
        if doc.duplicates:
            strict_errs.append("yaml: unmarshal errors:\n  " + "\n  ".join(doc.duplicates))
        if doc.group == KUBEADM_GROUP:
            schema = _SCHEMAS[doc.version][doc.kind]
            decoder = _Decoder()
            body = {k: v for k, v in doc.body.items() if k not in ("apiVersion", "kind")}
            try:
                decoder.decode(body, schema, "", (schema.name, ""))
            except _Fatal as e:
                raise CommandError(f"error unmarshaling configuration {gvk}: {e}") from None
            if decoder.type_error:
                raise CommandError(f"error unmarshaling configuration {gvk}: {decoder.type_error}")
            strict_errs.extend(decoder.unknown)
        elif doc.kind in COMPONENT_APIS and doc.api_version != COMPONENT_APIS[doc.kind]:
            raise CommandError(
                f"no kind {_go_quote(doc.kind)} is registered for version "
                f"{_go_quote(doc.api_version)} in scheme {_go_quote(COMPONENT_SCHEME)}"
            )
        if strict_errs:
            text = f"error unmarshaling configuration {gvk}: strict decoding error: " + ", ".join(
                strict_errs
            )
            if self.strict:
                raise CommandError(text)
            self.warnings.append(_klog_warning(text, "strict.go:47"))

    def ignored(self, doc: _Doc) -> None:
        gvk = f"{doc.group}/{doc.version}, Kind={doc.kind}"
        self.warnings.append(
            _klog_warning(
                f"[config] WARNING: Ignored YAML document with GroupVersionKind {gvk}",
                "initconfiguration.go:361",
            )
        )


def _tokens(init: dict[str, Any], errs: list[str]) -> tuple[BootstrapToken, ...]:
    out = []
    for i, raw in enumerate(init.get("bootstrapTokens") or []):
        raw = raw or {}
        path = f"bootstrapTokens[{i}]"
        token = raw.get("token")
        if token is None:
            token = f"{_random(6)}.{_random(16)}"
        usages = tuple(raw["usages"]) if raw.get("usages") is not None else DEFAULT_TOKEN_USAGES
        groups = tuple(raw["groups"]) if raw.get("groups") is not None else DEFAULT_TOKEN_GROUPS
        bad_usage = [u for u in usages if u not in DEFAULT_TOKEN_USAGES]
        if bad_usage:
            detail = (
                f"invalid bootstrap token usage string: {','.join(bad_usage)}, valid usage "
                f"options: {','.join(DEFAULT_TOKEN_USAGES)}"
            )
            errs.append(_invalid(f"{path}.usages", list(usages), detail))
        if groups and "authentication" not in usages:
            errs.append(
                _invalid(
                    f"{path}.groups",
                    list(groups),
                    'token groups cannot be specified unless --usages includes "authentication"',
                )
            )
        for group in groups:
            if not _GROUP_RE.fullmatch(group):
                detail = (
                    f"bootstrap group {_go_quote(group)} is invalid (must match {GROUP_PATTERN})"
                )
                errs.append(_invalid(f"{path}.groups", list(groups), detail))
        ttl: float | None = DEFAULT_TOKEN_TTL
        if raw.get("expires") and raw.get("ttl"):
            errs.append(
                _invalid(
                    path, "", "the BootstrapToken .TTL and .Expires fields are mutually exclusive"
                )
            )
        if raw.get("expires"):
            expires = _parse_time(raw["expires"])
            assert expires is not None  # the decoder checked the form
            ttl = max(0.0, expires.timestamp() - time.time())
        elif raw.get("ttl") is not None:
            ttl = parse_duration(raw["ttl"]) or None
        description = raw.get("description") or ""
        out.append(BootstrapToken(str(token), ttl, description, usages, groups))
    return tuple(out)


def _random(n: int) -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def _check_subnet(value: str, path: str, errs: list[str]) -> None:
    try:
        nets = [ipaddress.ip_network(s, strict=False) for s in value.split(",")]
    except ValueError:
        errs.append(_invalid(path, value, "couldn't parse subnet"))
        return
    families = {n.version for n in nets}
    if len(nets) > 2 or (len(nets) == 2 and len(families) != 2):
        errs.append(
            _invalid(
                path,
                value,
                "expected one (IPv4 or IPv6) CIDR or two CIDRs from each family for dual-stack "
                "networking",
            )
        )


def _cluster_checks(cluster: dict[str, Any], errs: list[str]) -> None:
    networking = cluster.get("networking") or {}
    domain = networking.get("dnsDomain") or DEFAULT_DNS_DOMAIN
    if not _is_dns1123(domain):
        errs.append(_invalid("networking.dnsDomain", domain, _DNS1123_MSG))
    for key in ("serviceSubnet", "podSubnet"):
        if networking.get(key):
            _check_subnet(networking[key], f"networking.{key}", errs)
    for san in (cluster.get("apiServer") or {}).get("certSANs") or []:
        if not (_is_dns1123(san) or _is_dns1123(san.removeprefix("*.")) or _is_ip(san)):
            errs.append(
                _invalid(
                    "apiServer.certSANs",
                    san,
                    f"altname is not a valid IP address, DNS label or a DNS label with subdomain "
                    f"wildcards: {_DNS1123_MSG}",
                )
            )
    endpoint = cluster.get("controlPlaneEndpoint") or ""
    if endpoint and not _valid_host_port(endpoint):
        errs.append(_invalid("controlPlaneEndpoint", endpoint, "endpoint is not valid"))
    etcd = cluster.get("etcd") or {}
    if etcd.get("local") is not None and etcd.get("external") is not None:
        errs.append(_invalid("etcd", "", ".Etcd.Local and .Etcd.External are mutually exclusive"))


def _join_checks(join: dict[str, Any], minor: int, errs: list[str]) -> None:
    """kubeadm's ``ValidateDiscovery`` (after ``SetDiscoveryDefaults``) and the rest."""
    discovery = join.get("discovery") or {}
    token_disc = discovery.get("bootstrapToken")
    file_disc = discovery.get("file")
    if token_disc is None and file_disc is None:
        errs.append(_invalid("discovery", "", "bootstrapToken or file must be set"))
    if token_disc is not None and file_disc is not None:
        errs.append(_invalid("discovery", "", "bootstrapToken and file cannot both be set"))
    if token_disc is not None:
        path = "discovery.bootstrapToken"
        endpoint = token_disc.get("apiServerEndpoint") or ""
        if not endpoint:
            errs.append(f"{path}: Required value: APIServerEndpoint is not set")
        if not token_disc.get("caCertHashes") and not token_disc.get("unsafeSkipCAVerification"):
            errs.append(
                _invalid(
                    f"{path}.caCertHashes" if minor >= 31 else path,
                    "",
                    kubeadmtexts.UNSAFE_DISCOVERY,
                )
            )
        token = token_disc.get("token") or ""
        if not _TOKEN_RE.fullmatch(token):
            errs.append(_invalid(f"{path}.token", token, "the bootstrap token is invalid"))
        problem = _split_host_port(endpoint)
        if problem:
            errs.append(_invalid(f"{path}.apiServerEndpoint", endpoint, problem))
        tls = discovery.get("tlsBootstrapToken") or token
        if not _TOKEN_RE.fullmatch(tls):
            errs.append(
                _invalid("discovery.tlsBootstrapToken", tls, "the bootstrap token is invalid")
            )
    if file_disc is not None:
        path = file_disc.get("kubeConfigPath") or ""
        if not path:
            errs.append(
                _invalid(
                    "discovery.file.kubeConfigPath", path, "not a valid HTTPS URL or a file on disk"
                )
            )
        tls = discovery.get("tlsBootstrapToken") or ""
        if tls and not _TOKEN_RE.fullmatch(tls):
            errs.append(
                _invalid("discovery.tlsBootstrapToken", tls, "the bootstrap token is invalid")
            )


def _check_ca_path(join: dict[str, Any], errs: list[str]) -> None:
    ca_path = join.get("caCertPath") or DEFAULT_CA_CERT_PATH
    if not ca_path.startswith("/") or not ca_path.endswith(".crt"):
        errs.append(
            _invalid("caCertPath", ca_path, "the ca certificate path must be an absolute path")
        )


def load(text: str, kube_version: str, command: str, *, strict: bool = True) -> Config:
    """Read a --config file for ``command`` ("init", "join", "reset" or "upgrade").

    ``kube_version`` is the node's kubeadm version (node.json). Raises CommandError with
    kubeadm's text. ``strict=False`` turns strict-decoding errors (unknown fields, duplicate
    keys) into the warnings real kubeadm init/join prints.
    """
    if command not in ("init", "join", "reset", "upgrade"):
        raise ValueError(f"unknown kubeadm command {command!r}")
    reader = _Reader(kube_version, strict)
    docs = _read_documents(text)
    minor = reader.minor
    if command == "upgrade" and minor < 31:
        command = "init"  # before UpgradeConfiguration, upgrade read Init/ClusterConfiguration
    wanted = {
        "init": ("InitConfiguration", "ClusterConfiguration"),
        "join": ("JoinConfiguration",),
        "reset": ("ResetConfiguration",),
        "upgrade": ("UpgradeConfiguration",),
    }[command]
    used: dict[str, _Doc] = {}
    for doc in docs:
        if command != "init" and doc.kind not in wanted:
            continue  # join, reset and upgrade look at their own kind only, silently
        if doc.group == KUBEADM_GROUP or doc.kind in COMPONENT_APIS:
            reader.check_version(doc)
        if doc.group == KUBEADM_GROUP and doc.kind not in _SCHEMAS[doc.version]:
            if doc.kind in wanted:
                reader.not_registered(doc)
            reader.ignored(doc)  # a kind kubeadm does not have: warned about, not decoded
            continue
        if doc.group == KUBEADM_GROUP and doc.kind not in wanted:
            reader.decode(doc)
            reader.ignored(doc)
        elif doc.group == KUBEADM_GROUP or doc.group in COMPONENT_GROUPS:
            reader.decode(doc)
            used[doc.kind] = doc
        else:
            reader.ignored(doc)
    if command != "init" and wanted[0] not in used:
        raise CommandError(f"no {wanted[0]} found in the supplied config")
    main = next((used[k] for k in wanted if k in used), None)
    api_version = main.api_version if main else default_api_version(kube_version)

    def body(kind: str) -> dict[str, Any]:
        return used[kind].body if kind in used else {}

    errs: list[str] = []
    init, cluster, join = (
        body("InitConfiguration"),
        body("ClusterConfiguration"),
        body("JoinConfiguration"),
    )
    advertise, port = None, DEFAULT_BIND_PORT
    registration: dict[str, Any] = {}
    if command == "init":  # ValidateInitConfiguration's order
        registration = init.get("nodeRegistration") or {}
        advertise, port = _endpoint(init.get("localAPIEndpoint") or {})
        _check_registration(registration, errs)
        tokens = _tokens(init, errs)
        _cluster_checks(cluster, errs)
        _check_port(port, "localAPIEndpoint.bindPort", errs)
        _check_cert_key(init.get("certificateKey") or "", "certificateKey", errs)
    else:
        tokens = ()
    control_plane = join.get("controlPlane")
    if command == "join":  # ValidateJoinConfiguration's order
        registration = join.get("nodeRegistration") or {}
        if control_plane is not None:
            advertise, port = _endpoint(control_plane.get("localAPIEndpoint") or {})
        _join_checks(join, minor, errs)
        _check_registration(registration, errs)
        if control_plane is not None:
            _check_port(port, "controlPlane.localAPIEndpoint.bindPort", errs)
            _check_cert_key(
                control_plane.get("certificateKey") or "", "controlPlane.certificateKey", errs
            )
        _check_ca_path(join, errs)
    _aggregate(errs)

    networking = cluster.get("networking") or {}
    discovery = join.get("discovery") or {}
    token_disc = discovery.get("bootstrapToken") or {}
    main_body = main.body if main else {}
    return Config(
        api_version=api_version,
        documents={d.kind: d.body for d in docs},
        warnings=tuple(reader.warnings),
        node_name=registration.get("name") or None,
        advertise_address=advertise,
        bind_port=port,
        control_plane_endpoint=cluster.get("controlPlaneEndpoint") or None,
        cert_sans=tuple((cluster.get("apiServer") or {}).get("certSANs") or ()),
        cluster_name=cluster.get("clusterName") or DEFAULT_CLUSTER_NAME,
        kubernetes_version=cluster.get("kubernetesVersion") or None,
        service_subnet=networking.get("serviceSubnet") or DEFAULT_SERVICE_SUBNET,
        pod_subnet=networking.get("podSubnet") or None,
        dns_domain=networking.get("dnsDomain") or DEFAULT_DNS_DOMAIN,
        bootstrap_tokens=tokens,
        certificate_key=init.get("certificateKey") or None,
        skip_phases=tuple(main_body.get("skipPhases") or ()),
        ignore_preflight_errors=tuple(str(c) for c in
                                      registration.get("ignorePreflightErrors") or ()),
        discovery_endpoint=token_disc.get("apiServerEndpoint") or None,
        discovery_token=(token_disc.get("token") or discovery.get("tlsBootstrapToken") or None),
        ca_cert_hashes=tuple(token_disc.get("caCertHashes") or ()),
        unsafe_skip_ca_verification=bool(token_disc.get("unsafeSkipCAVerification")),
        join_control_plane=control_plane is not None,
        join_certificate_key=(control_plane or {}).get("certificateKey") or None,
    )


def load_file(path: str, kube_version: str, command: str, *, strict: bool = True) -> Config:
    """``load`` on a container path (under LAB_ROOT); a missing file fails as kubeadm does."""
    try:
        text = env.path(path).read_text()
    except FileNotFoundError:
        raise CommandError(
            f'unable to read config from "{path}" : open {path}: no such file or directory'
        ) from None
    except IsADirectoryError:
        raise CommandError(
            f'unable to read config from "{path}" : read {path}: is a directory'
        ) from None
    return load(text, kube_version, command, strict=strict)
