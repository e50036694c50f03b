"""The resource types the API double serves, and the discovery documents that announce them.

The real kubectl learns every type from discovery (``/api``, ``/apis``, ``/api/v1``,
``/apis/GROUP/VERSION``) before it gets, patches or applies anything: a type missing here is
``error: the server doesn't have a resource type "..."`` (or, for ``apply``, ``no matches for
kind``), as against a real server without it. Discovery is answered in the legacy shapes
(``APIVersions``, ``APIGroupList``, ``APIResourceList``) as ``application/json``: a kubectl that
asks for aggregated discovery (``as=APIGroupDiscoveryList``) accepts them, as it does from any
server older than v1.26. Which group versions serve a kind depends on the server's minor
(kubeversions.SERVED): a v1.21 server still has ``rbac.authorization.k8s.io/v1beta1`` and
``batch/v1beta1`` CronJobs, a v1.25 one has neither, none of them has ``extensions/v1beta1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k8sdouble import kubeversions
from k8sdouble.kubeversions import Span

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives, what discovery says of it, which minors serve it."""

    group: str  # "" for the core group
    version: str
    resource: str  # the plural in URLs
    kind: str
    namespaced: bool
    span: Span  # the minors that serve it
    short_names: tuple[str, ...] = ()
    storage_group: str = ""  # the group whose storage holds it (apps for extensions' DaemonSets)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> str:
        """The store's name for this type's objects: one for every version that serves it, as
        a real API server stores each resource once and converts on the way in and out."""
        return f"{self.storage_group or self.group}/{self.resource}"


@dataclass(frozen=True)
class KindInfo:
    resource: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    storage_group: str = ""


# What the double knows of each kind it stores; which group versions serve it in which minor
# is kubeversions.SERVED.
KINDS: dict[str, KindInfo] = {
    "Namespace": KindInfo("namespaces", False, ("ns",)),
    "Node": KindInfo("nodes", False, ("no",)),
    "Pod": KindInfo("pods", True, ("po",)),
    "ConfigMap": KindInfo("configmaps", True, ("cm",)),
    "Secret": KindInfo("secrets", True),
    "ServiceAccount": KindInfo("serviceaccounts", True, ("sa",)),
    "Service": KindInfo("services", True, ("svc",)),
    "DaemonSet": KindInfo("daemonsets", True, ("ds",), "apps"),
    "Deployment": KindInfo("deployments", True, ("deploy",), "apps"),
    "ReplicaSet": KindInfo("replicasets", True, ("rs",), "apps"),
    "CronJob": KindInfo("cronjobs", True, ("cj",), "batch"),
    "Lease": KindInfo("leases", True, (), "coordination.k8s.io"),
    "PodDisruptionBudget": KindInfo("poddisruptionbudgets", True, ("pdb",), "policy"),
    "PodSecurityPolicy": KindInfo("podsecuritypolicies", False, ("psp",), "policy"),
    "ClusterRole": KindInfo("clusterroles", False, (), kubeversions.RBAC),
    "ClusterRoleBinding": KindInfo("clusterrolebindings", False, (), kubeversions.RBAC),
    "Role": KindInfo("roles", True, (), kubeversions.RBAC),
    "RoleBinding": KindInfo("rolebindings", True, (), kubeversions.RBAC),
}

# Every type of every minor, in discovery's order.
TYPES: tuple[ResourceType, ...] = tuple(
    ResourceType(s.group, s.version, KINDS[s.kind].resource, s.kind, KINDS[s.kind].namespaced,
                 s.span, KINDS[s.kind].short_names, KINDS[s.kind].storage_group)
    for s in kubeversions.SERVED)


def served(minor: int) -> tuple[ResourceType, ...]:
    """The types a v1.``minor`` API server serves."""
    return tuple(t for t in TYPES if t.span.covers(minor))


def subresources(minor: int) -> list[dict[str, Any]]:
    """The core group's subresources discovery lists (kubectl drain reads pods/eviction's
    group version to choose the Eviction it posts: policy/v1beta1 before 1.22)."""
    eviction = kubeversions.eviction(minor)
    return [
        {"name": "pods/eviction", "singularName": "", "namespaced": True,
         "group": eviction.group, "version": eviction.version, "kind": "Eviction",
         "verbs": ["create"]},
        {"name": "pods/binding", "singularName": "", "namespaced": True, "kind": "Binding",
         "verbs": ["create"]},
        {"name": "nodes/status", "singularName": "", "namespaced": False, "kind": "Node",
         "verbs": ["get", "patch", "update"]},
    ]


def find(group: str, version: str, resource: str, minor: int | None = None) -> ResourceType | None:
    """The type at ``/apis/group/version/resource``: among those a v1.``minor`` server serves,
    or among every minor's (the store's own lookups) when ``minor`` is None."""
    for t in TYPES if minor is None else served(minor):
        if (t.group, t.version, t.resource) == (group, version, resource):
            return t
    return None


def groups(minor: int) -> list[str]:
    """The named groups, in the order discovery lists them."""
    seen: list[str] = []
    for t in served(minor):
        if t.group and t.group not in seen:
            seen.append(t.group)
    return seen


def group_versions(group: str, minor: int) -> list[str]:
    """A group's versions a minor serves, the preferred (newest) first."""
    seen: list[str] = []
    for t in served(minor):
        if t.group == group and t.version not in seen:
            seen.append(t.version)
    return seen


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(group: str, minor: int) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group}/{v}", "version": v}
                for v in group_versions(group, minor)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list(minor: int) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, minor) for g in groups(minor)]}


def api_group(group: str, minor: int) -> dict[str, Any] | None:
    if group not in groups(minor):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, minor)}


def resource_list(group: str, version: str, minor: int) -> dict[str, Any] | None:
    """``APIResourceList`` of one group version; None when the server has no such version."""
    gv = f"{group}/{version}" if group else version
    found = [t for t in served(minor) if t.group_version == gv]
    if not found:
        return None
    resources: list[dict[str, Any]] = []
    for t in found:
        entry: dict[str, Any] = {"name": t.resource, "singularName": t.singular,
                                 "namespaced": t.namespaced, "kind": t.kind,
                                 "verbs": list(ALL_VERBS)}
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        resources.append(entry)
    if gv == "v1":
        resources += subresources(minor)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}


def discovery(parts: list[str], server_address: str, minor: int) -> dict[str, Any] | None:
    """The discovery document at ``/`` + ``parts`` of a v1.``minor`` server, or None when the
    path is not discovery (or names a group version that minor does not serve)."""
    if parts == ["api"]:
        return api_versions(server_address)
    if parts == ["apis"]:
        return api_group_list(minor)
    if len(parts) == 2 and parts[0] == "api":
        return resource_list("", parts[1], minor)
    if len(parts) == 2 and parts[0] == "apis":
        return api_group(parts[1], minor)
    if len(parts) == 3 and parts[0] == "apis":
        return resource_list(parts[1], parts[2], minor)
    return None
