"""The generic REST verbs under ``/api/v1`` and ``/apis/GROUP/VERSION`` (all types but Node).

Besides storing objects, the server plays the controllers whose effects kubectl shows or waits
for: a DaemonSet's and a Deployment's status count their pods; a pod evicted or deleted from a
ReplicaSet is replaced by a new Pending one (the ReplicaSet controller); pods bound to a deleted
Node go (the pod garbage collector); an eviction the lab's drain-block PodDisruptionBudget
forbids is refused with 429 and the real server's message; ``pods/binding`` binds a Pending pod
once (what the scheduler does through it), 409 if it is bound already.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from k8sdouble import objects, resources, tables
from k8sdouble.objects import ApiFailure, Objects
from k8sdouble.resources import ResourceType

if TYPE_CHECKING:
    from k8sdouble.apiserver import Request

PODS = resources.find("", "v1", "pods")
DAEMONSETS = resources.find("apps", "v1", "daemonsets")
DEPLOYMENTS = resources.find("apps", "v1", "deployments")
REPLICASETS = resources.find("apps", "v1", "replicasets")
assert PODS and DAEMONSETS and DEPLOYMENTS and REPLICASETS
# The tolerations the DaemonSet controller adds to every pod it makes.
DAEMONSET_TOLERATES = {f"node.kubernetes.io/{k}" for k in (
    "unschedulable", "not-ready", "unreachable", "disk-pressure", "memory-pressure",
    "pid-pressure", "network-unavailable")}
PDB_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


REVISION_LABEL = "controller-revision-hash"


def template_hash(template: dict[str, Any]) -> str:
    """A DaemonSet template's revision, as its pods' controller-revision-hash label says."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def suffix(n: int = 5) -> str:
    """A generated name's suffix (the real ones avoid vowels; so does this)."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass(frozen=True)
class Route:
    type: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None


def parse(parts: list[str], minor: int) -> Route | None:
    """``/api/v1/namespaces/NS/pods/NAME/eviction`` and the like on a v1.``minor`` server, or
    None (a group version that minor does not serve is not found, as on a real server)."""
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    t = resources.find(group, version, rest[0], minor)
    if t is None or (namespace is not None and not t.namespaced) or len(rest) > 3:
        return None
    return Route(t, namespace, rest[1] if len(rest) > 1 else None,
                 rest[2] if len(rest) > 2 else None)


@dataclass
class Views:
    """What the API shows beyond the stored objects: Nodes, the drain-block pods."""

    store: Objects
    nodes: list[dict[str, Any]]
    drain_blocks: dict[str, str]  # node -> "namespace/pod"

    def blocked_pods(self) -> list[dict[str, Any]]:
        pods = []
        for node, ref in sorted(self.drain_blocks.items()):
            ns, _, name = ref.partition("/")
            rs = name.rsplit("-", 1)[0]
            pods.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "uid": f"drain-block-{node}",
                             "labels": {"app": rs.rsplit("-", 1)[0]},
                             "creationTimestamp": "2024-01-01T00:00:00Z",
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                  "name": rs, "uid": f"rs-{rs}",
                                                  "controller": True}]},
                "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx"}]},
                "status": {"phase": "Running", "containerStatuses": [
                    {"name": "web", "ready": True, "restartCount": 0}]},
            })
        return pods

    def pods(self, ns: str | None) -> list[dict[str, Any]]:
        extra = [p for p in self.blocked_pods() if ns in (None, p["metadata"]["namespace"])]
        return self.store.list(PODS, ns) + extra

    def shown(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The object with the status its controller would have written."""
        if obj.get("kind") == "DaemonSet":
            return dict(obj, status=self._ds_status(obj))
        if obj.get("kind") == "Deployment":
            return dict(obj, status=self._deploy_status(obj))
        return obj

    def _owned(self, obj: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        uid = obj["metadata"]["uid"]
        return [p for p in self.store.list(PODS, obj["metadata"]["namespace"])
                if any(o.get("kind") == kind and o.get("uid") == uid
                       for o in p["metadata"].get("ownerReferences", []))]

    def _ds_status(self, ds: dict[str, Any]) -> dict[str, Any]:
        pods = self._owned(ds, "DaemonSet")
        running = sum(1 for p in pods if p.get("status", {}).get("phase") == "Running")
        want = sum(1 for n in self.nodes if fits(ds["spec"]["template"], n))
        revision = template_hash(ds["spec"]["template"])
        updated = sum(1 for p in pods
                      if p["metadata"].get("labels", {}).get(REVISION_LABEL) == revision)
        return {"desiredNumberScheduled": want, "currentNumberScheduled": len(pods),
                "numberReady": running, "updatedNumberScheduled": updated,
                "numberAvailable": running, "numberMisscheduled": 0,
                "observedGeneration": ds["metadata"].get("generation", 1)}

    def _deploy_status(self, deploy: dict[str, Any]) -> dict[str, Any]:
        pods = [p for rs in self._replicasets(deploy) for p in self._owned(rs, "ReplicaSet")]
        running = sum(1 for p in pods if p.get("status", {}).get("phase") == "Running")
        status: dict[str, Any] = {"replicas": len(pods), "updatedReplicas": len(pods),
                                  "observedGeneration": deploy["metadata"].get("generation", 1)}
        if running:
            status.update(readyReplicas=running, availableReplicas=running)
        if len(pods) > running:
            status["unavailableReplicas"] = len(pods) - running
        return status

    def _replicasets(self, deploy: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deploy["metadata"]["uid"]
        return [rs for rs in self.store.list(REPLICASETS, deploy["metadata"]["namespace"])
                if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences", []))]


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value",
                                                                                      ""):
            return True
    return False


def fits(template: dict[str, Any], node: dict[str, Any]) -> bool:
    """Whether a pod of this template may run on the node: its nodeSelector matches the
    node's labels and it tolerates the node's NoSchedule/NoExecute taints (the unschedulable
    taints the DaemonSet controller tolerates for its pods aside)."""
    spec = template.get("spec", {})
    labels = node["metadata"].get("labels", {})
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    tolerations = spec.get("tolerations") or []
    for taint in node.get("spec", {}).get("taints", []):
        if taint.get("key") in DAEMONSET_TOLERATES:
            continue
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations,
                                                                               taint):
            return False
    return True


def serve(req: Request, route: Route, store: Objects, view: Views) -> tuple[int, Any]:
    """One REST call; objects come back in the group version the path names, as a real server
    converts from its storage (a ClusterRole made as v1beta1 reads as v1 through v1)."""
    status, answer = _serve(req, route, store, view)
    t = route.type
    if isinstance(answer, dict) and answer.get("kind") == t.kind:
        answer = dict(answer, apiVersion=t.group_version)
    elif isinstance(answer, dict) and answer.get("kind") == f"{t.kind}List":
        answer = dict(answer, items=[dict(i, apiVersion=t.group_version)
                                     for i in answer.get("items", [])])
    return status, answer


def _serve(req: Request, route: Route, store: Objects, view: Views) -> tuple[int, Any]:
    t, ns, name = route.type, route.namespace, route.name
    if route.sub is not None:
        return _subresource(req, route, store, view)
    if req.method == "GET" and name is None:
        return 200, _list(req, t, ns, store, view)
    if req.method == "GET":
        assert name is not None
        obj = _get(t, ns, name, store, view)
        if tables.wants_table(req.accept):
            return 200, tables.table(t.kind, [obj], store.resource_version(),
                                     req.query.get("includeObject", "Metadata"))
        return 200, obj
    if req.method == "POST" and name is None:
        if not isinstance(req.body, dict):
            raise ApiFailure(400, "BadRequest", "the body of the request was empty")
        return 201, store.create(t, ns, req.body)
    if name is None:
        raise ApiFailure(405, "MethodNotAllowed",
                         "the server does not allow this method on the requested resource")
    if req.method == "PUT":
        return 200, store.replace(t, ns, name, req.body)
    if req.method == "PATCH":
        return 200, view.shown(store.patch(t, ns, name, req.content_type, req.body))
    if req.method == "DELETE":
        obj = store.delete(t, ns, name)
        if t.resource == "pods":
            replace_from_replicaset(store, obj)
        return 200, obj  # as the real server answers an immediate deletion
    raise ApiFailure(405, "MethodNotAllowed",
                     "the server does not allow this method on the requested resource")


def _get(t: ResourceType, ns: str | None, name: str, store: Objects,
         view: Views) -> dict[str, Any]:
    if t.resource == "pods":
        for pod in view.blocked_pods():
            if (pod["metadata"]["namespace"], pod["metadata"]["name"]) == (ns, name):
                return pod
    return view.shown(store.get(t, ns, name))


def _list(req: Request, t: ResourceType, ns: str | None, store: Objects,
          view: Views) -> dict[str, Any]:
    fields, labels = req.query.get("fieldSelector", ""), req.query.get("labelSelector", "")
    if t.resource == "pods":
        items = [p for p in view.pods(ns) if objects.matches_fields(p, fields)
                 and objects.matches_labels(p, labels)]
    else:
        items = [view.shown(o) for o in store.list(t, ns, fields, labels)]
    if tables.wants_table(req.accept):
        return tables.table(t.kind, items, store.resource_version(),
                            req.query.get("includeObject", "Metadata"))
    return {"apiVersion": t.group_version, "kind": f"{t.kind}List",
            "metadata": {"resourceVersion": store.resource_version()}, "items": items}


def _subresource(req: Request, route: Route, store: Objects, view: Views) -> tuple[int, Any]:
    t, ns, name, sub = route.type, route.namespace, route.name, route.sub
    assert name is not None
    if t.resource == "pods" and sub == "eviction" and req.method == "POST":
        return _evict(ns, name, store, view)
    if t.resource == "pods" and sub == "binding" and req.method == "POST":
        pod = store.get(t, ns, name)
        if pod.get("spec", {}).get("nodeName"):
            raise ApiFailure(409, "Conflict", f'Operation cannot be fulfilled on pods/binding '
                             f'"{name}": pod {name} is already assigned to node '
                             f'"{pod["spec"]["nodeName"]}"')
        target = (req.body or {}).get("target", {}).get("name", "")
        store.patch(t, ns, name, objects.MERGE_PATCH, {"spec": {"nodeName": target}})
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                     "status": "Success", "code": 201}
    if sub == "status" and req.method == "GET":
        return 200, _get(t, ns, name, store, view)
    if sub == "status" and req.method == "PATCH":
        return 200, store.patch(t, ns, name, req.content_type, req.body)
    raise ApiFailure(404, "NotFound", "the server could not find the requested resource")


def _evict(ns: str | None, name: str, store: Objects, view: Views) -> tuple[int, Any]:
    for pod in view.blocked_pods():
        if (pod["metadata"]["namespace"], pod["metadata"]["name"]) == (ns, name):
            raise ApiFailure(429, "TooManyRequests", PDB_MESSAGE)
    pod = store.delete(PODS, ns, name)  # type: ignore[arg-type]
    replace_from_replicaset(store, pod)
    return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                 "code": 201}


def replace_from_replicaset(store: Objects, pod: dict[str, Any]) -> None:
    """The ReplicaSet controller: a deleted pod of a ReplicaSet gets a Pending successor."""
    ns = pod["metadata"].get("namespace")
    owner = next((o for o in pod["metadata"].get("ownerReferences", [])
                  if o.get("kind") == "ReplicaSet"), None)
    if owner is None or store.find(REPLICASETS, ns, owner["name"]) is None:  # type: ignore[arg-type]
        return
    new = {k: v for k, v in pod.items() if k in ("apiVersion", "kind")}
    new["metadata"] = {"name": f"{owner['name']}-{suffix()}", "namespace": ns,
                       "labels": pod["metadata"].get("labels", {}),
                       "ownerReferences": pod["metadata"].get("ownerReferences", [])}
    new["spec"] = {k: v for k, v in pod.get("spec", {}).items() if k != "nodeName"}
    new["status"] = {"phase": "Pending"}
    store.create(PODS, ns, new)  # type: ignore[arg-type]


def collect_pods(store: Objects, node: str) -> None:
    """Pods bound to a Node that is gone are deleted (those of a Deployment replaced)."""
    for pod in store.list(PODS, None, f"spec.nodeName={node}"):  # type: ignore[arg-type]
        store.delete(PODS, pod["metadata"]["namespace"],  # type: ignore[arg-type]
                     pod["metadata"]["name"])
        replace_from_replicaset(store, pod)
