"""The API objects other than Nodes, as etcd keeps them and the REST verbs change them.

Objects live in the cluster store's ``objects`` document: per resource type, ``ns/name`` (``/name``
for cluster-scoped ones) to the object as the API answers it. Create, get, list (with field and
label selectors), replace, patch and delete behave as the real server's generic registry: the
server fills uid, resourceVersion, creationTimestamp and generation; names clash with 409
AlreadyExists; a namespaced object needs its Namespace; errors carry the real messages
(``daemonsets.apps "x" not found``). Patches are JSON merge patches (RFC 7386) or strategic-merge
patches, which ``kubectl apply``, ``cordon`` and ``label`` send; a strategic-merge patch merges
lists of named things (containers, volumes, env, ports, mounts) by their key, as the real types'
patch strategies say, and replaces other lists.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from typing import Any

from k8sdouble.resources import TYPES, ResourceType, find

NAMESPACES = find("", "v1", "namespaces")
CONFIGMAPS = find("", "v1", "configmaps")
assert NAMESPACES is not None and CONFIGMAPS is not None

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
# Lists a strategic-merge patch merges by key (the built-in types' patchMergeKey).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
              "volumes": "name", "env": "name", "volumeMounts": "mountPath",
              "imagePullSecrets": "name", "conditions": "type"}


class ApiFailure(Exception):
    """A request the server refuses: HTTP status, reason and message of its metav1.Status."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def qualified(t: ResourceType) -> str:
    """How the real server names a type in its messages: ``pods``, ``daemonsets.apps``."""
    return f"{t.resource}.{t.group}" if t.group else t.resource


def not_found(t: ResourceType, name: str) -> ApiFailure:
    return ApiFailure(404, "NotFound", f'{qualified(t)} "{name}" not found')


class Objects:
    """The store's objects, changed in place (the caller saves the store)."""

    def __init__(self, data: dict[str, Any], now: float) -> None:
        self.data = data
        self.now = now
        objects: dict[str, dict[str, Any]] = data.setdefault("objects", {})
        self.objects = objects
        data.setdefault("resourceVersion", 1)
        spaces = objects.setdefault("/namespaces", {})
        if not spaces:
            for name in DEFAULT_NAMESPACES:
                spaces[f"/{name}"] = self._stamp(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                     "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
                    NAMESPACES)

    def _next_version(self) -> str:
        self.data["resourceVersion"] = int(self.data["resourceVersion"]) + 1
        return str(self.data["resourceVersion"])

    def resource_version(self) -> str:
        return str(self.data["resourceVersion"])

    def next_version(self) -> str:
        """The store's next resourceVersion, for a change made outside this class (a Node)."""
        return self._next_version()

    def _stamp(self, obj: dict[str, Any], t: ResourceType) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", rfc3339(self.now))
        meta["resourceVersion"] = self._next_version()
        if t.kind in ("DaemonSet", "Deployment", "ReplicaSet"):
            meta.setdefault("generation", 1)
        obj["apiVersion"], obj["kind"] = t.group_version, t.kind
        apply_defaults(obj)
        return obj

    def _table(self, t: ResourceType) -> dict[str, dict[str, Any]]:
        return self.objects.setdefault(t.key, {})

    @staticmethod
    def _id(ns: str | None, name: str) -> str:
        return f"{ns or ''}/{name}"

    def get(self, t: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        obj = self._table(t).get(self._id(ns, name))
        if obj is None:
            raise not_found(t, name)
        return obj

    def find(self, t: ResourceType, ns: str | None, name: str) -> dict[str, Any] | None:
        return self._table(t).get(self._id(ns, name))

    def list(self, t: ResourceType, ns: str | None, fields: str = "",
             labels: str = "") -> list[dict[str, Any]]:
        items = [o for key, o in sorted(self._table(t).items())
                 if ns is None or key.split("/", 1)[0] == ns]
        return [o for o in items if matches_fields(o, fields) and matches_labels(o, labels)]

    def create(self, t: ResourceType, ns: str | None, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiFailure(422, "Invalid", f'{t.kind} "" is invalid: metadata.name: '
                             "Required value: name or generateName is required")
        if t.namespaced:
            ns = ns or meta.get("namespace") or "default"
            if meta.get("namespace") not in (None, ns):
                raise ApiFailure(400, "BadRequest", "the namespace of the provided object does "
                                 "not match the namespace sent on the request")
            if self.find(NAMESPACES, None, ns) is None:
                raise not_found(NAMESPACES, ns)
            meta["namespace"] = ns
        key = self._id(ns if t.namespaced else None, name)
        if key in self._table(t):
            raise ApiFailure(409, "AlreadyExists", f'{qualified(t)} "{name}" already exists')
        for server_set in ("uid", "resourceVersion", "creationTimestamp", "generation"):
            meta.pop(server_set, None)
        self._table(t)[key] = self._stamp(obj, t)
        return obj

    def replace(self, t: ResourceType, ns: str | None, name: str,
                body: dict[str, Any]) -> dict[str, Any]:
        old = self.get(t, ns, name)
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        sent = meta.get("resourceVersion")
        if sent and str(sent) != str(old["metadata"].get("resourceVersion")):
            # An update is conditional on the version it was read at (optimistic concurrency).
            raise ApiFailure(409, "Conflict", f'Operation cannot be fulfilled on {qualified(t)} '
                             f'"{name}": the object has been modified; please apply your changes '
                             "to the latest version and try again")
        for kept in ("uid", "creationTimestamp", "namespace", "name"):
            if kept in old["metadata"]:
                meta[kept] = old["metadata"][kept]
        self._changed(t, old, obj)
        self._table(t)[self._id(ns, name)] = obj
        return obj

    def patch(self, t: ResourceType, ns: str | None, name: str, content_type: str,
              patch: Any) -> dict[str, Any]:
        old = self.get(t, ns, name)
        kind = content_type.split(";", 1)[0].strip()
        if not isinstance(patch, dict):
            raise ApiFailure(400, "BadRequest", "the body of the request was in an unknown "
                             "format - accepted media types include: application/json-patch+json,"
                             " application/merge-patch+json, application/apply-patch+yaml")
        if kind == MERGE_PATCH:
            new = merge_patch(old, patch)
        elif kind == STRATEGIC_PATCH:
            new = strategic_merge(old, patch)
        else:
            raise ApiFailure(415, "UnsupportedMediaType",
                             f'the body of the request was in an unknown format - accepted media '
                             f'types include: {MERGE_PATCH}, {STRATEGIC_PATCH}')
        for kept in ("uid", "creationTimestamp", "namespace", "name", "resourceVersion",
                     "generation"):
            if kept in old["metadata"]:
                new.setdefault("metadata", {})[kept] = old["metadata"][kept]
        if new != old:
            self._changed(t, old, new)
            self._table(t)[self._id(ns, name)] = new
        return new

    def _changed(self, t: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
        meta = new["metadata"]
        if "generation" in old["metadata"]:
            spec_changed = old.get("spec") != new.get("spec")
            meta["generation"] = int(old["metadata"]["generation"]) + (1 if spec_changed else 0)
        meta["resourceVersion"] = self._next_version()
        new["apiVersion"], new["kind"] = t.group_version, t.kind
        apply_defaults(new)

    def delete(self, t: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.get(t, ns, name)
        del self._table(t)[self._id(ns, name)]
        if t.resource == "namespaces":
            for other in TYPES:
                if other.namespaced:
                    table = self._table(other)
                    for key in [k for k in table if k.split("/", 1)[0] == name]:
                        del table[key]
        self._next_version()
        return obj


def apply_defaults(obj: dict[str, Any]) -> None:
    """The API server's defaults for the workloads (``kubectl rollout status`` reads them)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if obj.get("kind") == "DaemonSet":
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": 1, "maxSurge": 0}})
        spec.setdefault("revisionHistoryLimit", 10)
    elif obj.get("kind") == "Deployment":
        spec.setdefault("replicas", 1)
        spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": "25%", "maxSurge": "25%"}})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)


# --- selectors --------------------------------------------------------------------------------

def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def matches_fields(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, (s.strip() for s in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if _field(obj, key) == value:
                return False
        else:
            key, _, value = term.replace("==", "=").partition("=")
            if _field(obj, key) != value:
                return False
    return True


def matches_labels(obj: dict[str, Any], selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (s.strip() for s in _split_terms(selector))):
        if " in " in term or " notin " in term:
            neg = " notin " in term
            key, _, values = term.partition(" notin " if neg else " in ")
            wanted = {v.strip() for v in values.strip().strip("()").split(",")}
            if (labels.get(key.strip()) in wanted) == neg:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, _, value = term.replace("==", "=").partition("=")
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _split_terms(selector: str) -> list[str]:
    """Split on commas outside parentheses (``a in (x,y),b=c``)."""
    terms, depth, cur = [], 0, ""
    for ch in selector:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return terms


# --- patches ----------------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    """A strategic-merge patch as the built-in types' patch strategies apply it: maps merge,
    ``null`` deletes, lists of named things merge by their key (``$patch: delete`` removes
    one), other lists are replaced; directives (``$setElementOrder/...``, ``$retainKeys``)
    only order or prune and are dropped."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        else:
            result[key] = strategic_merge(result.get(key), value, key)
    return result


def _list_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        dicts = [i for i in items if isinstance(i, dict)]
        if dicts and all("containerPort" in i for i in dicts):
            return "containerPort"
        return "port" if dicts and all("port" in i for i in dicts) else None
    return MERGE_KEYS.get(field)


def _merge_list(field: str, old: list[Any], patch: list[Any]) -> list[Any]:
    key = _list_key(field, patch + old)
    if key is None or not all(isinstance(i, dict) for i in patch + old):
        return [i for i in copy.deepcopy(patch) if not (isinstance(i, dict) and "$patch" in i)]
    result = copy.deepcopy(old)
    for item in patch:
        at = next((n for n, o in enumerate(result) if o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if at is not None:
                del result[at]
        elif at is None:
            result.append(strategic_merge({}, item, field))
        else:
            result[at] = strategic_merge(result[at], item, field)
    return result
