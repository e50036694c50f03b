"""The resource types the API double serves, and the discovery documents that announce them.

The real kubectl learns every type from discovery (``/api``, ``/apis``, ``/api/v1``,
``/apis/GROUP/VERSION``) before it gets, patches or applies anything: a type missing here is
``error: the server doesn't have a resource type "..."`` (or, for ``apply``, ``no matches for
kind``), as against a real server without it. Discovery is answered in the legacy shapes
(``APIVersions``, ``APIGroupList``, ``APIResourceList``) as ``application/json``: a kubectl that
asks for aggregated discovery (``as=APIGroupDiscoveryList``) accepts them, as it does from any
server older than v1.26.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives and what discovery says of it."""

    group: str  # "" for the core group
    version: str
    resource: str  # the plural in URLs
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> str:
        """The store's name for this type's objects."""
        return f"{self.group}/{self.resource}"


TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, ("ns",)),
    ResourceType("", "v1", "nodes", "Node", False, ("no",)),
    ResourceType("", "v1", "pods", "Pod", True, ("po",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    ResourceType("", "v1", "services", "Service", True, ("svc",)),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",)),
    ResourceType("apps", "v1", "deployments", "Deployment", True, ("deploy",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",)),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
                 False),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
)

# Subresources discovery lists under the core group (kubectl drain looks for pods/eviction).
SUBRESOURCES: dict[str, list[dict[str, Any]]] = {
    "v1": [
        {"name": "pods/eviction", "singularName": "", "namespaced": True, "group": "policy",
         "version": "v1", "kind": "Eviction", "verbs": ["create"]},
        {"name": "pods/binding", "singularName": "", "namespaced": True, "kind": "Binding",
         "verbs": ["create"]},
        {"name": "nodes/status", "singularName": "", "namespaced": False, "kind": "Node",
         "verbs": ["get", "patch", "update"]},
    ],
}


def find(group: str, version: str, resource: str) -> ResourceType | None:
    for t in TYPES:
        if (t.group, t.version, t.resource) == (group, version, resource):
            return t
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    for t in TYPES:
        if t.group_version == api_version and t.kind == kind:
            return t
    return None


def groups() -> list[str]:
    """The named groups, in the order discovery lists them."""
    seen: list[str] = []
    for t in TYPES:
        if t.group and t.group not in seen:
            seen.append(t.group)
    return seen


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list() -> dict[str, Any]:
    items = []
    for g in groups():
        gv = {"groupVersion": f"{g}/v1", "version": "v1"}
        items.append({"name": g, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def api_group(group: str) -> dict[str, Any] | None:
    if group not in groups():
        return None
    gv = {"groupVersion": f"{group}/v1", "version": "v1"}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [gv],
            "preferredVersion": gv}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``APIResourceList`` of one group version; None when the server has no such version."""
    gv = f"{group}/{version}" if group else version
    found = [t for t in TYPES if t.group_version == gv]
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
    resources += SUBRESOURCES.get(gv, [])
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}


def discovery(parts: list[str], server_address: str) -> dict[str, Any] | None:
    """The discovery document at ``/`` + ``parts``, or None when the path is not discovery."""
    if parts == ["api"]:
        return api_versions(server_address)
    if parts == ["apis"]:
        return api_group_list()
    if len(parts) == 2 and parts[0] == "api":
        return resource_list("", parts[1])
    if len(parts) == 2 and parts[0] == "apis":
        return api_group(parts[1])
    if len(parts) == 3 and parts[0] == "apis":
        return resource_list(parts[1], parts[2])
    return None
