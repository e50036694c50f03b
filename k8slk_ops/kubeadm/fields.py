"""Fields that exist only in some config API versions, and the moves between them.

"Never emit a field the version lacks": kubeadm rejects unknown fields in strict decoding (and
older ones silently ignore them, which is worse). A user's override written for another version
is converted when the meaning is the same (``discovery.timeout`` and ``timeouts.discovery``),
and refused with the reason otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from k8slk_ops.kubeadm.errors import RenderError
from k8slk_ops.kubeadm.merge import get_path, has_path, pop_path, set_path
from k8slk_ops.kubeadm.versions import ConfigApi

B2, B3, B4 = ConfigApi.V1BETA2, ConfigApi.V1BETA3, ConfigApi.V1BETA4
_FROM_B3 = frozenset({B3, B4})
_ONLY_B4 = frozenset({B4})
_UP_TO_B3 = frozenset({B2, B3})

# (kind, path) -> the API versions that have the field.
VERSIONED_FIELDS: dict[tuple[str, tuple[str, ...]], frozenset[ConfigApi]] = {}
for _kind in ("InitConfiguration", "JoinConfiguration"):
    VERSIONED_FIELDS.update(
        {
            (_kind, ("timeouts",)): _ONLY_B4,
            (_kind, ("dryRun",)): _ONLY_B4,
            (_kind, ("skipPhases",)): _FROM_B3,
            (_kind, ("patches",)): _FROM_B3,
            (_kind, ("nodeRegistration", "imagePullPolicy")): _FROM_B3,
            (_kind, ("nodeRegistration", "imagePullSerial")): _ONLY_B4,
        }
    )
VERSIONED_FIELDS.update(
    {
        ("JoinConfiguration", ("discovery", "timeout")): _UP_TO_B3,
        ("ClusterConfiguration", ("apiServer", "timeoutForControlPlane")): _UP_TO_B3,
        ("ClusterConfiguration", ("useHyperKubeImage",)): frozenset({B2}),
        ("ClusterConfiguration", ("dns", "type")): frozenset({B2}),
        ("ClusterConfiguration", ("dns", "disabled")): _ONLY_B4,
        ("ClusterConfiguration", ("proxy",)): _ONLY_B4,
        ("ClusterConfiguration", ("encryptionAlgorithm",)): _ONLY_B4,
        ("ClusterConfiguration", ("certificateValidityPeriod",)): _ONLY_B4,
        ("ClusterConfiguration", ("caCertificateValidityPeriod",)): _ONLY_B4,
        ("ClusterConfiguration", ("apiServer", "extraEnvs")): _ONLY_B4,
        ("ClusterConfiguration", ("controllerManager", "extraEnvs")): _ONLY_B4,
        ("ClusterConfiguration", ("scheduler", "extraEnvs")): _ONLY_B4,
        ("ClusterConfiguration", ("etcd", "local", "extraEnvs")): _ONLY_B4,
    }
)

# Same meaning, different place: (kind, old path up to v1beta3), (kind, new path in v1beta4).
Location = tuple[str, tuple[str, ...]]
MOVES: tuple[tuple[Location, Location], ...] = (
    (
        ("JoinConfiguration", ("discovery", "timeout")),
        ("JoinConfiguration", ("timeouts", "discovery")),
    ),
    (
        ("ClusterConfiguration", ("apiServer", "timeoutForControlPlane")),
        ("InitConfiguration", ("timeouts", "controlPlaneComponentHealthCheck")),
    ),
)


def _name(kind: str, path: tuple[str, ...]) -> str:
    return f"{kind}.{'.'.join(path)}"


def convert_overrides(overrides: dict[str, dict[str, Any]], api: ConfigApi) -> None:
    """Move fields written in the other version's style to where ``api`` has them (in place).

    ``overrides`` maps kind to that kind's override. A field given in both places with
    different values is ambiguous and refused.
    """
    for old, new in MOVES:
        src, dst = (old, new) if api is B4 else (new, old)
        src_doc = overrides.get(src[0])
        if src_doc is None or not has_path(src_doc, src[1]):
            continue
        value = pop_path(src_doc, src[1])
        dst_doc = overrides.setdefault(dst[0], {})
        if has_path(dst_doc, dst[1]) and get_path(dst_doc, dst[1]) != value:
            raise RenderError(
                f"{_name(*old)} and {_name(*new)} are the same setting and are given "
                "different values; keep one"
            )
        set_path(dst_doc, dst[1], value)


def check_fields(kind: str, doc: dict[str, Any], api: ConfigApi) -> None:
    """Refuse a document that carries a field ``api`` does not have."""
    for (k, path), apis in VERSIONED_FIELDS.items():
        if k == kind and api not in apis and has_path(doc, path):
            have = ", ".join(sorted(a.value for a in apis))
            raise RenderError(
                f"{_name(kind, path)} does not exist in kubeadm.k8s.io/{api.value} "
                f"(only in {have}); the node's kubeadm decides the API version"
            )


# What the tool decides itself and an override may not change: (kind, path) -> why.
_MINTED = "is minted fresh for each run and revoked after it; it cannot be set here"
FORBIDDEN_OVERRIDES: dict[tuple[str, tuple[str, ...]], str] = {
    ("JoinConfiguration", ("discovery",)): (
        "cannot be overridden: a join always discovers the cluster with the run's token and "
        "pins its CA (caCertHashes computed from the CA itself; never unsafeSkipCAVerification)"
    ),
    ("InitConfiguration", ("bootstrapTokens",)): (
        "cannot be overridden: the run mints its own short-lived token and deletes it at the "
        "end; a token set here would outlive the run and never be revoked"
    ),
    ("InitConfiguration", ("certificateKey",)): _MINTED,
    ("JoinConfiguration", ("controlPlane", "certificateKey")): _MINTED,
    ("InitConfiguration", ("nodeRegistration", "name")): (
        "cannot be overridden: a node's name is its name in the inventory"
    ),
    ("JoinConfiguration", ("nodeRegistration", "name")): (
        "cannot be overridden: a node's name is its name in the inventory"
    ),
}
# Under a forbidden path, what stays allowed: the discovery timeout (converted per version).
_STILL_ALLOWED = {("JoinConfiguration", ("discovery", "timeout"))}


def forbidden_overrides(
    overrides: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, tuple[str, ...], str]]:
    """``(kind, path, why)`` for each override of something the tool decides itself."""
    found = []
    for (kind, path), why in FORBIDDEN_OVERRIDES.items():
        doc = overrides.get(kind)
        if not isinstance(doc, Mapping) or not has_path(doc, path):
            continue
        value = get_path(doc, path)
        allowed = {p[len(path)] for k, p in _STILL_ALLOWED if k == kind and p[: len(path)] == path}
        if isinstance(value, Mapping) and allowed and set(value) <= allowed:
            continue
        found.append((kind, path, why))
    return found


def check_overrides(overrides: Mapping[str, Mapping[str, Any]]) -> None:
    """RenderError for the first override of something the tool decides itself."""
    for kind, path, why in forbidden_overrides(overrides):
        raise RenderError(f"{_name(kind, path)} {why}")
