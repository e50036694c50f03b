"""The kube-apiserver double: HTTPS on the node's address, port 6443, signed by the cluster CA.

The kubelet double runs it as a static pod when ``/etc/kubernetes/manifests/kube-apiserver.yaml``
exists, with the arguments written there. Every control plane runs one, and all of them share
the cluster's state (nodes, bootstrap tokens, the uploaded certificates, the cluster version):
in the control planes' real etcd (``--etcd-servers``, the lab's default; ``etcdstore``), or,
in a lab started without it, in one JSON store under the lab's ``/lab/etcd`` named after the
cluster CA. Either is read and written under an exclusive lock per request. It outlives reboots
and any one control plane; the last control plane's ``kubeadm reset`` deletes it.

Authentication is the real kind: client certificates signed by the cluster CA (admin.conf, the
kubelets' certificates), bootstrap tokens as bearer tokens (valid, unexpired, with the
``authentication`` usage; they may only do what a joining node does), and anonymous requests only
for cluster-info, health and version. What the real kubectl asks is answered in the real
shapes: discovery (``resources``), server-side Tables (``tables``), the OpenAPI documents
``apply`` reads (``openapi``), Nodes here, every other type through the generic verbs and watches
of ``rest`` and ``objects``. The lab's own ``/lab/v1`` surface carries what kubeadm keeps in
Secrets and ConfigMaps.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import random
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from k8sdouble import (
    cluster,
    env,
    etcdstore,
    jws,
    kubeversions,
    objects,
    openapi,
    pki,
    resources,
    rest,
    tables,
)
from k8sdouble.nodes import node_json, stored_taints

WATCH_POLL = 0.1  # how often a watch reads the store for changes
BOOKMARK_SECONDS = 60.0  # kube-apiserver sends a watch's bookmark about once a minute
X509_V_FLAG_NO_CHECK_TIME = 0x200000  # OpenSSL's: the chain is checked, validity dates are not
NODE_GRACE_SECONDS = 40.0  # the node lifecycle controller's grace period before "Unknown"
ANONYMOUS = {
    "/healthz", "/readyz", "/livez", "/version",
    "/api/v1/namespaces/kube-public/configmaps/cluster-info",
}
BOOTSTRAP_ALLOWED = {
    ("GET", "/api/v1/namespaces/kube-public/configmaps/cluster-info"),
    ("POST", "/lab/v1/csr"),
    ("GET", "/lab/v1/cluster"),
    ("GET", "/lab/v1/kubeadm-certs"),
}


KUBE_SYSTEM_CONFIGMAPS = "/api/v1/namespaces/kube-system/configmaps/"


def bootstrap_may(method: str, path: str) -> bool:
    """What a bootstrap token may do: BOOTSTRAP_ALLOWED, and read kubeadm's configuration
    (kubeadm's RBAC rules kubeadm:nodes-kubeadm-config and kubeadm:kubelet-config)."""
    if (method, path) in BOOTSTRAP_ALLOWED:
        return True
    name = path[len(KUBE_SYSTEM_CONFIGMAPS):] if path.startswith(KUBE_SYSTEM_CONFIGMAPS) else ""
    return method == "GET" and (name == "kubeadm-config" or name.startswith("kubelet-config"))


# admin.conf's user from v1.29: only in the kubeadm:cluster-admins group, which kubeadm init binds
# to cluster-admin (through super-admin.conf) when its upload-config phase first needs a client.
# Until then RBAC grants it nothing beyond discovery: the lab's cluster records the binding as
# ``adminsBound`` (the init double's upload-config).
ADMIN = "cert:kubernetes-admin"


def forbidden(user: str, method: str, parts: list[str], query: dict[str, str]) -> str:
    """RBAC's refusal, as kube-apiserver words it (``nodes is forbidden: User "x" cannot list
    resource "nodes" in API group "" at the cluster scope``)."""
    group, rest = ("", parts[2:]) if parts[:1] == ["api"] else (
        parts[1] if len(parts) > 1 else "", parts[3:])
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "")
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch") in ("true", "1") else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    subject = f'{rest[0] if rest else ""} "{name}"' if name else (rest[0] if rest else "")
    return (f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
            f'group "{group}" {where}')


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _flock(fd: int, deadline: float | None) -> None:
    """An exclusive flock, waited for until ``deadline`` (monotonic) when there is one."""
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    pause = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise etcdstore.EtcdUnavailable("etcdserver: request timed out (queued)") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


class ClusterState:
    """The cluster as etcd holds it: one JSON document shared by every control plane's API.

    Each request runs in a ``transaction()``: an exclusive flock on the store's lock file
    (other API processes) and a thread lock (this one's handler threads), the document
    reloaded when another process changed it, and written back whole by ``save()``.
    """

    def __init__(self, path: str, defaults: dict[str, Any],
                 etcd: etcdstore.EtcdClient | None = None) -> None:
        self.etcd = etcd  # the document lives in a real etcd (etcdstore.py), else in the file
        self.path = env.path(path)
        self.lock_path = self.path.with_suffix(".lock")
        self.lock = threading.Lock()
        self.defaults = defaults
        self.data: dict[str, Any] = {}
        self._seen: tuple[int, int, int] | None = None
        self.started = time.time()  # heartbeats older than this instance get a new grace
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(etcdstore.EtcdUnavailable):  # etcd starting: read it per request
            self._reload()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The request's turn at the document. With a real etcd the turn is waited for no
        longer than a real API server waits for etcd: requests queued behind ones whose etcd
        does not answer time out as they would have in parallel on a real server, rather than
        one etcd timeout after another."""
        wait = None if self.etcd is None else etcdstore.TIMEOUT
        deadline = time.monotonic() + (wait or 0)
        if not self.lock.acquire(timeout=-1 if wait is None else wait):
            raise etcdstore.EtcdUnavailable("etcdserver: request timed out (queued)")
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                _flock(fd, None if wait is None else deadline)
                self._reload()
                yield
            finally:
                os.close(fd)  # releases the flock
        finally:
            self.lock.release()

    def _reload(self) -> None:
        if self.etcd is not None:
            raw = self.etcd.get(etcdstore.STATE_KEY)
            self._seen = None
            self.data = {}
            if raw is not None:
                self.data = json.loads(raw)
            self._fill_defaults()
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if self._seen is not None or not self.data:
                self.data = {"nodes": {}, "tokens": {}, "certs": None, "clusterInfo": None,
                             "members": [], "config": None, "heartbeats": {}}
                self.data.update(self.defaults)
                self._seen = None
            return
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            self.data = json.loads(self.path.read_text())
            for key, value in self.defaults.items():
                self.data.setdefault(key, value)
            self.data.setdefault("heartbeats", {})
            self._seen = seen

    def _fill_defaults(self) -> None:
        empty = {"nodes": {}, "tokens": {}, "certs": None, "clusterInfo": None, "members": [],
                 "config": None, "heartbeats": {}}
        for key, value in {**empty, **self.defaults}.items():
            self.data.setdefault(key, value)

    def save(self) -> None:
        if self.etcd is not None:
            self.etcd.save_state(self.data, self.data.get("nodes") or {})
            return
        env.write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True), 0o600)
        st = self.path.stat()
        self._seen = (st.st_ino, st.st_size, st.st_mtime_ns)

    def valid_tokens(self, now: float) -> dict[str, dict[str, Any]]:
        return {tid: t for tid, t in self.data["tokens"].items()
                if t.get("expires") is None or t["expires"] > now}

    def prune(self, now: float) -> None:
        """Expired tokens go, and with the upload-certs proxy token the certificates it guards."""
        certs = self.data.get("certs")
        if certs and certs["expires"] <= now:
            self.data["certs"] = None


@dataclass(frozen=True)
class Request:
    """One API request as the handlers need it."""

    method: str
    path: str
    who: str
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    accept: str = "application/json"
    content_type: str = "application/json"


class Api:
    """Request handling, independent of HTTP plumbing: (status, JSON body) per call."""

    def __init__(self, state: ClusterState, pki_dir: str, server_address: str = "",
                 version: str = "v1.31.3") -> None:
        self.state = state
        self.pki_dir = pki_dir
        self.server_address = server_address
        # This server's own release (its --kubernetes-version): what it serves, as each API
        # server of a cluster mid-upgrade serves its own minor's group versions.
        self.minor = kubeversions.minor(version)

    def handle(self, method: str, path: str, who: str, body: Any,
               request: Request | None = None) -> tuple[int, Any]:
        if method == "GET" and not who.startswith("bootstrap:"):
            served = self._from_memory(path)
            if served is not None:
                return 200, served
        try:
            return self._handle(method, path, who, body, request)
        except etcdstore.EtcdUnavailable as exc:  # as a real API server whose etcd is gone
            return 500, _status(500, "", str(exc).split(" (", 1)[0])

    def _from_memory(self, path: str) -> Any:
        """Discovery and OpenAPI documents, which a real API server serves from memory: they
        answer while its etcd does not (kubectl's discovery works, its get then fails)."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] in (["api"], ["apis"]):
            return resources.discovery(parts, self.server_address, self.minor)
        if parts[:2] == ["openapi", "v3"]:
            return openapi.root(self.minor) if len(parts) == 2 else \
                openapi.group_version("/".join(parts[2:]), self.minor)
        return None

    def _handle(self, method: str, path: str, who: str, body: Any,
                request: Request | None = None) -> tuple[int, Any]:
        req = request or Request(method, path, who, body)
        now = time.time()
        st = self.state
        with st.transaction():
            st.prune(now)
            if who.startswith("bootstrap:") and not bootstrap_may(method, path):
                return 403, _status(403, "Forbidden", f'User "system:bootstrap:{who[10:]}" '
                                    f'cannot {method.lower()} resource "{path}"')
            parts = [p for p in path.split("/") if p]
            if who == ADMIN and self.minor >= 29 and parts[:1] != ["lab"] and \
                    not st.data.get("adminsBound"):
                return 403, _status(403, "Forbidden", forbidden(
                    "kubernetes-admin", method, parts, req.query))
            if path == "/api/v1/namespaces/kube-public/configmaps/cluster-info" and (
                    method == "PUT" or not self._objects(now).find(
                        objects.CONFIGMAPS, "kube-public", "cluster-info")):
                return self._cluster_info(method, body, now)
            if parts[:3] == ["api", "v1", "nodes"] and (parts[4:] == [] or (
                    parts[4:] == ["status"] and method == "GET")):
                return self._nodes(req, parts[3:4], now)
            if parts[:3] == ["lab", "v1", "tokens"]:
                return self._tokens(method, parts[3:], body, now)
            if path == "/lab/v1/kubeadm-certs":
                return self._certs(method, body, now)
            if path == "/lab/v1/cluster":
                if method == "PATCH":
                    st.data.update(body or {})
                    st.save()
                return 200, {k: st.data.get(k) for k in (
                    "version", "leader", "members", "controlPlaneEndpoint", "clusterName",
                    "config")}
            if path == "/lab/v1/csr" and method == "POST":
                return self._sign(body)
            if parts[:1] in (["api"], ["apis"]):
                return self._rest(req, parts, now)
            if parts[:2] == ["openapi", "v3"] and method == "GET":
                doc = openapi.root(self.minor) if len(parts) == 2 else \
                    openapi.group_version("/".join(parts[2:]), self.minor)
                if doc is not None:
                    return 200, doc
        return 404, _status(404, "NotFound", "the server could not find the requested resource")

    def _objects(self, now: float) -> objects.Objects:
        return objects.Objects(self.state.data, now)

    def _rest(self, req: Request, parts: list[str], now: float) -> tuple[int, Any]:
        """Discovery and the generic REST verbs of every other type."""
        found = resources.discovery(parts, self.server_address, self.minor)
        if found is not None:
            return (200, found) if req.method == "GET" else \
                (405, _status(405, "MethodNotAllowed", "the server does not allow this method "
                              "on the requested resource"))
        route = rest.parse(parts, self.minor)
        if route is None:
            return 404, _status(404, "NotFound", "the server could not find the requested "
                                "resource")
        store = self._objects(now)
        view = rest.Views(store, self._node_list(now), self._drain_blocks())
        try:
            status, answer = rest.serve(req, route, store, view)
        except objects.ApiFailure as exc:
            return exc.code, _status(exc.code, exc.reason, exc.message)
        if req.method != "GET":
            self.state.save()
        return status, answer

    def _node_list(self, now: float) -> list[dict[str, Any]]:
        return [self._node_view(n, now) for _, n in sorted(self.state.data["nodes"].items())]

    @staticmethod
    def _drain_blocks() -> dict[str, str]:
        """Node name -> ``namespace/pod`` its PodDisruptionBudget keeps (the lab's fault)."""
        blocks = {}
        prefix = env.FAULT_DRAIN_BLOCK.split("{", 1)[0]
        folder = env.path(prefix).parent
        if folder.is_dir():
            for marker in folder.glob(env.path(prefix).name + "*"):
                with contextlib.suppress(OSError):
                    blocks[marker.name[len(env.path(prefix).name):]] = marker.read_text().strip()
        return blocks

    def _cluster_info(self, method: str, body: Any, now: float) -> tuple[int, Any]:
        st = self.state
        if method == "PUT":
            st.data["clusterInfo"] = body["kubeconfig"]
            st.save()
            return 200, {}
        kubeconfig = st.data.get("clusterInfo")
        if not kubeconfig:
            return 404, _status(404, "NotFound", 'configmaps "cluster-info" not found')
        data = {"kubeconfig": kubeconfig}
        for tid, tok in st.valid_tokens(now).items():
            if "signing" in tok.get("usages", []):
                data[f"jws-kubeconfig-{tid}"] = jws.sign_detached(kubeconfig, tid, tok["secret"])
        return 200, {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                     "metadata": {"name": "cluster-info", "namespace": "kube-public"}}

    def _nodes(self, req: Request, rest_: list[str], now: float) -> tuple[int, Any]:
        nodes: dict[str, dict[str, Any]] = self.state.data["nodes"]
        method, body = req.method, req.body
        if not rest_:
            if method == "GET":
                items = [i for i in self._node_list(now)
                         if objects.matches_labels(i, req.query.get("labelSelector", ""))
                         and objects.matches_fields(i, req.query.get("fieldSelector", ""))]
                if tables.wants_table(req.accept):
                    return 200, tables.table("Node", items, self._objects(now).resource_version(),
                                             req.query.get("includeObject", "Metadata"))
                return 200, {"apiVersion": "v1", "kind": "NodeList", "items": items,
                             "metadata": {"resourceVersion":
                                          self._objects(now).resource_version()}}
            if method == "POST":
                name = body["metadata"]["name"]
                if name in nodes:
                    return 409, _status(409, "AlreadyExists", f'nodes "{name}" already exists')
                version = self._objects(now).next_version()
                nodes[name] = {
                    "name": name, "labels": body["metadata"].get("labels", {}),
                    "unschedulable": False, "ready": False, "created": now,
                    "kubeletVersion": body.get("kubeletVersion", ""),
                    "address": body.get("address", ""), "rv": version, "createdRv": version,
                }
                self.state.data.setdefault("deletedNodes", {}).pop(name, None)
                self.state.data["heartbeats"][name] = now
                self.state.save()
                return 201, self._node_view(nodes[name], now)
        name = rest_[0]
        node = nodes.get(name)
        if node is None:
            return 404, _status(404, "NotFound", f'nodes "{name}" not found')
        if method == "GET":
            view = self._node_view(node, now)
            if tables.wants_table(req.accept):
                return 200, tables.table("Node", [view], self._objects(now).resource_version(),
                                         req.query.get("includeObject", "Metadata"))
            return 200, view
        if method == "DELETE":
            node["rv"] = self._objects(now).next_version()
            gone = self._node_view(node, now)
            del nodes[name]
            # As etcd's history for a watch from before the deletion: the Node's last state.
            self.state.data.setdefault("deletedNodes", {})[name] = gone
            self.state.data["heartbeats"].pop(name, None)
            rest.collect_pods(self._objects(now), name)  # the pod garbage collector's part
            self.state.save()
            return 200, gone
        if method == "PATCH":
            if req.content_type.split(";")[0].strip() != "application/json":
                return self._patch_node_object(req, node, now)
            return self._patch_node(node, body, now)
        return 405, _status(405, "MethodNotAllowed", "method not allowed")

    def _patch_node_object(self, req: Request, node: dict[str, Any],
                           now: float) -> tuple[int, Any]:
        """A kubectl patch (cordon, uncordon, label, annotate) of the Node object."""
        view = self._node_view(node, now)
        kind = req.content_type.split(";")[0].strip()
        if kind == objects.MERGE_PATCH:
            new = objects.merge_patch(view, req.body)
        elif kind == objects.STRATEGIC_PATCH:
            new = objects.strategic_merge(view, req.body)
        else:
            return 415, _status(415, "UnsupportedMediaType", "the body of the request was in an "
                                f"unknown format - accepted media types include: "
                                f"{objects.MERGE_PATCH}, {objects.STRATEGIC_PATCH}")
        node["unschedulable"] = bool((new.get("spec") or {}).get("unschedulable"))
        node["labels"] = dict((new.get("metadata") or {}).get("labels") or {})
        node["annotations"] = dict((new.get("metadata") or {}).get("annotations") or {})
        node["taints"] = stored_taints(new.get("spec") or {})
        node["rv"] = self._objects(now).next_version()
        self.state.save()
        return 200, self._node_view(node, now)

    def _patch_node(self, node: dict[str, Any], body: Any, now: float) -> tuple[int, Any]:
        """The lab's own node patch (kubelet heartbeats, kubeadm's control-plane marks)."""
        changed = False
        for key in ("unschedulable", "ready", "kubeletVersion", "address", "notReady", "taints"):
            if key in body and node.get(key) != body[key]:
                node[key] = body[key]
                changed = True
        for label, value in (body.get("labels") or {}).items():
            if node["labels"].get(label) != value:
                node["labels"][label] = value
                changed = True
        if body.get("heartbeat"):
            self.state.data["heartbeats"][node["name"]] = now
            changed = True
        if changed:
            node["rv"] = self._objects(now).next_version()
            self.state.save()
        return 200, self._node_view(node, now)

    def _node_view(self, node: dict[str, Any], now: float) -> dict[str, Any]:
        # Like the node lifecycle controller: an API that (re)started gives every kubelet its
        # grace period again, counted from when it started.
        seen = max(self.state.data["heartbeats"].get(node["name"], 0.0), self.state.started)
        status = "True" if node["ready"] else "False"
        if now - seen > NODE_GRACE_SECONDS:
            status = "Unknown"
        return node_json(node, status, rfc3339(node["created"]), rfc3339(seen))

    def _tokens(self, method: str, rest: list[str], body: Any, now: float) -> tuple[int, Any]:
        tokens: dict[str, dict[str, Any]] = self.state.data["tokens"]
        if method == "GET" and not rest:
            return 200, {"items": [dict(t, id=tid) for tid, t in sorted(tokens.items())],
                         "now": now}
        if method == "POST" and not rest:
            tid = body["id"]
            if tid in tokens:
                return 409, _status(409, "AlreadyExists",
                                    f'secrets "bootstrap-token-{tid}" already exists')
            ttl = body.get("ttl")
            tokens[tid] = {
                "secret": body["secret"], "description": body.get("description", ""),
                "usages": body.get("usages", ["authentication", "signing"]),
                "groups": body.get("groups", ["system:bootstrappers:kubeadm:default-node-token"]),
                "expires": None if not ttl else now + float(ttl), "created": now,
            }
            self.state.save()
            return 201, {"id": tid}
        if method == "DELETE" and rest:
            tid = rest[0]
            if tid not in tokens:
                return 404, _status(404, "NotFound", f'secrets "bootstrap-token-{tid}" not found')
            del tokens[tid]
            self.state.save()
            return 200, {}
        return 405, _status(405, "MethodNotAllowed", "method not allowed")

    def _certs(self, method: str, body: Any, now: float) -> tuple[int, Any]:
        st = self.state
        if method == "PUT":
            st.data["certs"] = {"data": body["data"], "expires": now + float(body["ttl"])}
            st.save()
            return 200, {}
        if not st.data.get("certs"):
            return 404, _status(404, "NotFound", 'secrets "kubeadm-certs" not found')
        return 200, st.data["certs"]

    def _sign(self, body: Any) -> tuple[int, Any]:
        """Sign a kubelet's client certificate, as the CSR approver and signer would."""
        from cryptography import x509  # only the first control plane signs

        csr = x509.load_pem_x509_csr(body["csr"].encode())
        ca = pki.load_pair(f"{self.pki_dir}/ca.crt", f"{self.pki_dir}/ca.key")
        name = body["name"]
        cert = pki.issue(ca, f"system:node:{name}", ("system:nodes",), client=True,
                         public_key=csr.public_key()).cert
        return 201, {"cert": cert.public_bytes(pki.serialization.Encoding.PEM).decode()}


def _version(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _by_key(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["metadata"].get("namespace", ""), i["metadata"]["name"]): i for i in items}


def watch_events(before: dict[tuple[str, str], dict[str, Any]],
                 after: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[str, Any]]:
    """The watch events that turn ``before`` into ``after``."""
    events: list[tuple[str, Any]] = []
    for key, obj in after.items():
        if key not in before:
            events.append(("ADDED", obj))
        elif before[key] != obj:
            events.append(("MODIFIED", obj))
    events += [("DELETED", obj) for key, obj in before.items() if key not in after]
    return events


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure" if code >= 300 else "Success",
            "message": message, "reason": reason, "code": code}


def _valid_now(peer: dict[str, Any], now: float) -> bool:
    """Whether a client certificate (as ``getpeercert`` gives it) is valid at ``now``."""
    try:
        start = ssl.cert_time_to_seconds(str(peer["notBefore"]))
        end = ssl.cert_time_to_seconds(str(peer["notAfter"]))
    except (KeyError, ValueError):
        return False
    return start <= now <= end


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], ctx: ssl.SSLContext, app: Api,
                 version: str) -> None:
        self.ctx = ctx
        self.app = app
        self.version = version
        super().__init__(addr, Handler)

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        super().server_bind()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.request.settimeout(30)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            self.request.close()
            raise
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the real apiserver does not log every request either

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _who(self, now: float) -> str | None:
        """The caller: ``cert:CN``, ``bootstrap:ID``, ``anonymous``, or None for a bad token."""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[7:].strip()
            tid, _, secret = token.partition(".")
            state = self.server.app.state
            with state.transaction():
                tok = state.valid_tokens(now).get(tid)
            if tok is None or tok["secret"] != secret or "authentication" not in tok["usages"]:
                return None
            return f"bootstrap:{tid}"
        peer = self.request.getpeercert()
        if peer and not _valid_now(peer, now):
            return None  # "Unable to authenticate the request: x509: certificate has expired"
        if peer:
            for rdn in peer.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        return f"cert:{value}"
            return "cert:"
        return "anonymous"

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path in ("/healthz", "/readyz", "/livez"):
            etcd = self.server.app.state.etcd
            if etcd is not None and path != "/livez":
                try:
                    etcd.get(etcdstore.STATE_KEY)
                except etcdstore.EtcdUnavailable:  # as a real one: the etcd check fails
                    return self._reply(500, b"[-]etcd failed: reason withheld\n"
                                       + f"{path[1:]} check failed".encode(), "text/plain")
            return self._reply(200, b"ok", "text/plain")
        if path == "/version":
            v = self.server.version.lstrip("v").split(".")
            return self._json(200, {"major": v[0], "minor": v[1],
                                    "gitVersion": self.server.version, "platform": "linux/amd64"})
        try:
            who = self._who(time.time())
        except etcdstore.EtcdUnavailable as exc:  # a bootstrap token is read from etcd
            return self._json(500, _status(500, "", str(exc).split(" (", 1)[0]))
        if who is None or (who == "anonymous" and path not in ANONYMOUS):
            return self._json(401, _status(401, "Unauthorized", "Unauthorized"))
        if path == "/openapi/v2" and method == "GET":
            return self._reply(200, openapi.v2_document(self.server.version), openapi.V2_CONTENT_TYPE)
        try:
            body = json.loads(raw) if raw else None
            req = Request(method, path, who, body, dict(parse_qsl(url.query)),
                          self.headers.get("Accept") or "application/json",
                          self.headers.get("Content-Type") or "application/json")
            if method == "GET" and req.query.get("watch") in ("true", "1"):
                return self._watch(req)
            status, answer = self.server.app.handle(method, path, who, body, req)
        except (KeyError, TypeError, ValueError) as exc:
            status, answer = 400, _status(400, "BadRequest", f"bad request: {exc}")
        self._json(status, answer)

    def _watch(self, req: Request) -> None:
        """A watch, as kube-apiserver's: chunked JSON events, one per line, until
        ``timeoutSeconds`` (without it, a random time between the server's 30 min
        min-request-timeout and twice that), then the end of the stream.

        Without a resourceVersion (or with ``0``) every object comes first as ADDED. From a
        resourceVersion R, as a watch from a list's R (``kubectl get --watch``): the objects
        changed after R (ADDED when made after R, else MODIFIED) and the Nodes deleted after R
        (DELETED, their last state), then every later change. Each event's object carries its
        own resourceVersion. With ``allowWatchBookmarks=true`` a BOOKMARK (the kind and the
        store's resourceVersion only) comes every BOOKMARK_SECONDS. The store is read every
        WATCH_POLL seconds (a real server is told by etcd at once)."""
        plain = replace(req, accept="application/json", query={
            k: v for k, v in req.query.items()
            if k not in ("watch", "resourceVersion", "timeoutSeconds", "allowWatchBookmarks")})
        status, answer = self.server.app.handle("GET", req.path, req.who, None, plain)
        if status != 200 or not isinstance(answer, dict) or "items" not in answer:
            return self._json(status, answer)
        since = req.query.get("resourceVersion", "")
        try:
            after = int(since) if since not in ("", "0") else None
        except ValueError:
            return self._json(400, _status(400, "BadRequest",
                                           f'invalid resource version: "{since}"'))
        kind = str(answer.get("kind", "")).removesuffix("List")
        bookmarks = req.query.get("allowWatchBookmarks") in ("true", "1")
        asked = float(req.query.get("timeoutSeconds") or 0)
        deadline = time.monotonic() + (asked if asked > 0 else random.uniform(1800, 3600))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            current = _by_key(answer["items"])
            first = self._since(after, current, kind) if after is not None else \
                [("ADDED", obj) for obj in current.values()]
            self._events(req, first)
            seen = current
            bookmark_at = time.monotonic() + BOOKMARK_SECONDS
            while time.monotonic() < deadline:
                time.sleep(min(WATCH_POLL, max(0.0, deadline - time.monotonic())))
                status, answer = self.server.app.handle("GET", req.path, req.who, None, plain)
                if status != 200:
                    break
                current = _by_key(answer["items"])
                self._events(req, watch_events(seen, current))
                seen = current
                if bookmarks and time.monotonic() >= bookmark_at:
                    bookmark_at = time.monotonic() + BOOKMARK_SECONDS
                    version = str((answer.get("metadata") or {}).get("resourceVersion", ""))
                    self._chunk(json.dumps({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": answer.get("apiVersion", "v1"),
                        "metadata": {"resourceVersion": version}}}).encode() + b"\n")
            self._chunk(b"")
        except OSError:
            pass  # the client went away

    def _since(self, after: int, current: dict[tuple[str, str], dict[str, Any]],
               kind: str) -> list[tuple[str, Any]]:
        """The events a watch from resourceVersion ``after`` starts with."""
        events: list[tuple[str, Any]] = []
        state = self.server.app.state
        with state.transaction():
            nodes = dict(state.data.get("nodes") or {})
            deleted = dict(state.data.get("deletedNodes") or {})
        for obj in current.values():
            if _version(obj) <= after:
                continue
            made = int((nodes.get(obj["metadata"]["name"]) or {}).get("createdRv") or 0) \
                if kind == "Node" else 0
            events.append(("ADDED" if made > after else "MODIFIED", obj))
        if kind == "Node":
            for name, gone in deleted.items():
                if ("", name) not in current and _version(gone) > after:
                    events.append(("DELETED", gone))
        return events

    def _events(self, req: Request, events: list[tuple[str, Any]]) -> None:
        for kind, obj in events:
            if tables.wants_table(req.accept):
                obj = tables.table(obj.get("kind", ""), [obj], "",
                                   req.query.get("includeObject", "Metadata"))
            self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, obj: Any) -> None:
        self._reply(status, json.dumps(obj).encode(), "application/json")

    def _reply(self, status: int, data: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _wait_for_storage(etcd: etcdstore.EtcdClient) -> None:
    """A real API server opens its port only once its storage answers (until then it retries,
    or exits and the kubelet starts it again): a control plane just booted is not served
    through a load balancer before its etcd member has rejoined its peers."""
    said = False
    while True:
        try:
            etcd.get(etcdstore.STATE_KEY)
            return
        except etcdstore.EtcdUnavailable as exc:
            if not said:
                print(f"kube-apiserver: waiting for etcd: {exc}", flush=True)
                said = True
            time.sleep(0.5)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kube-apiserver")
    parser.add_argument("--advertise-address", required=True)
    parser.add_argument("--secure-port", type=int, default=env.API_PORT)
    parser.add_argument("--tls-cert-file", required=True)
    parser.add_argument("--tls-private-key-file", required=True)
    parser.add_argument("--client-ca-file", required=True)
    parser.add_argument("--kubernetes-version", default="v1.31.3")
    parser.add_argument("--lab-state", default="", help="default: the store of this CA's cluster")
    parser.add_argument("--etcd-servers", default="")
    parser.add_argument("--etcd-cafile", default="")
    parser.add_argument("--etcd-certfile", default="")
    parser.add_argument("--etcd-keyfile", default="")
    args, _ = parser.parse_known_args(argv)
    pki_dir = os.path.dirname(args.client_ca_file)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(env.path(args.tls_cert_file)), str(env.path(args.tls_private_key_file)))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    # As kube-apiserver: the handshake asks for a client certificate and checks its chain, and
    # an expired one is refused by the authenticator (401 Unauthorized, see Handler._who), not
    # in the handshake (Go's tls.RequestClientCert there; etcd, which refuses in the handshake,
    # is the real one in the lab).
    ctx.verify_flags = ssl.VerifyFlags(ctx.verify_flags | X509_V_FLAG_NO_CHECK_TIME)
    ctx.load_verify_locations(str(env.path(args.client_ca_file)))

    store = args.lab_state or cluster.store_path(args.client_ca_file)
    etcd = None
    if args.etcd_servers:
        etcd = etcdstore.EtcdClient(args.etcd_servers.split(",")[0], args.etcd_cafile,
                                    args.etcd_certfile, args.etcd_keyfile)
    if etcd is not None:
        _wait_for_storage(etcd)
    state = ClusterState(store, {"version": args.kubernetes_version}, etcd)
    app = Api(state, pki_dir, f"{args.advertise_address}:{args.secure_port}",
              args.kubernetes_version)
    server = Server((args.advertise_address, args.secure_port), ctx, app,
                    args.kubernetes_version)
    print(f"kube-apiserver serving on https://{args.advertise_address}:{args.secure_port}",
          flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
