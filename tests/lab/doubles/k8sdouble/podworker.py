"""The kubelet's pods: DaemonSet pods on this node, Pending pods it may take, the pod network.

Each sync (every ``SYNC`` seconds while the node is registered):

- each static pod manifest in /etc/kubernetes/manifests has its mirror pod
  (``kube-apiserver-<node>`` ...), which kubectl drain leaves alone as it does on a real node;
- every DaemonSet whose pod template fits this node (nodeSelector, tolerations of the node's
  taints) has one Running pod bound to it, made here as the DaemonSet controller would; a pod
  of an older template (its ``controller-revision-hash``) is replaced, one whose DaemonSet is
  gone or no longer fits is deleted;
- a DaemonSet pod that mounts hostPath ``/etc/cni/net.d`` and a ConfigMap holding
  ``cni-conf.json`` (the shape of flannel's and kube-router's manifests) installs that content
  as ``/etc/cni/net.d/10-<daemonset>.conflist`` when it starts, as their install-cni containers do;
- with a pod network (a CNI config in ``/etc/cni/net.d``, or the lab's strictness off) and a
  Ready node, one Pending pod that fits is bound here through ``pods/binding`` (the scheduler's
  part; a pod another kubelet bound first answers 409) and started.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import yaml

from k8sdouble import env
from k8sdouble.client import Client
from k8sdouble.errors import ApiError
from k8sdouble.rest import REVISION_LABEL, fits, template_hash

SYNC = 2.0
MERGE = "application/merge-patch+json"
CNI_KEY = "cni-conf.json"
CNI_SUFFIXES = (".conf", ".conflist", ".json")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def log(message: str) -> None:
    print(f"kubelet: {message}", flush=True)


def network_ready() -> bool:
    """Whether the runtime's network is up: a CNI config is in /etc/cni/net.d."""
    folder = env.path(env.CNI_CONF_DIR)
    try:
        return any(p.suffix in CNI_SUFFIXES for p in folder.iterdir() if p.is_file())
    except OSError:
        return False


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _suffix() -> str:
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


def _images(doc: dict[str, Any]) -> list[str]:
    return [c.get("image", "") for c in doc.get("spec", {}).get("containers", [])]


class PodWorker:
    def __init__(self, client: Client, node: env.Node, running: set[str] | None = None) -> None:
        self.client = client
        self.node = node
        # The DaemonSet pods this kubelet runs (by uid; the kubelet's, kept across syncs). A
        # pod bound to this node that it does not run (its object outlived the machine: a new
        # one at the node's name, an etcd restored from a snapshot) is started, as a kubelet
        # starts every pod bound to it: its install-cni part puts the CNI config in place.
        self.running: set[str] = set() if running is None else running

    def sync(self, node_ready: bool) -> None:
        me = self.client.request("GET", f"/api/v1/nodes/{self.node.name}")
        mine = self.client.request(
            "GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.node.name}")["items"]
        daemonsets = self.client.request("GET", "/apis/apps/v1/daemonsets")["items"]
        self._mirror_pods(me, mine)
        self._daemonset_pods(me, mine, daemonsets)
        schedulable = not me.get("spec", {}).get("unschedulable")
        if node_ready and schedulable and (network_ready() or not self.node.strict_network):
            self._take_pending(me)

    def _mirror_pods(self, me: dict[str, Any], mine: list[dict[str, Any]]) -> None:
        have = {p["metadata"]["name"]: p for p in mine
                if MIRROR_ANNOTATION in p["metadata"].get("annotations", {})}
        wanted = {}
        folder = env.path(env.MANIFESTS)
        for manifest in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            try:
                doc = yaml.safe_load(manifest.read_text()) or {}
            except (OSError, yaml.YAMLError):
                continue
            name = f"{doc.get('metadata', {}).get('name', manifest.stem)}-{self.node.name}"
            wanted[name] = doc
        for name, pod in have.items():
            if name not in wanted:
                self._delete(pod)
        for name, doc in wanted.items():
            if name in have and _images(have[name]) == _images(doc):
                continue
            if name in have:  # the manifest changed (an upgrade): a new mirror pod, as a kubelet
                self._delete(have[name])
            spec = dict(doc.get("spec", {}), nodeName=self.node.name)
            meta = doc.get("metadata", {})
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": name, "namespace": meta.get("namespace", "kube-system"),
                "labels": meta.get("labels", {}),
                "annotations": {MIRROR_ANNOTATION: secrets.token_hex(16),
                                "kubernetes.io/config.source": "file"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.node.name,
                                     "uid": me["metadata"]["uid"], "controller": True}]},
                "spec": spec, "status": self._running(spec)}
            try:
                self.client.request("POST", f"/api/v1/namespaces/{body['metadata']['namespace']}"
                                    "/pods", body)
            except ApiError as exc:
                log(f"mirror pod {name}: {exc.message}")

    def _daemonset_pods(self, me: dict[str, Any], mine: list[dict[str, Any]],
                        daemonsets: list[dict[str, Any]]) -> None:
        by_owner = {}
        for pod in mine:
            for ref in pod["metadata"].get("ownerReferences", []):
                if ref.get("kind") == "DaemonSet":
                    by_owner[ref.get("uid")] = pod
        wanted = {ds["metadata"]["uid"]: ds for ds in daemonsets
                  if fits(ds["spec"]["template"], me)}
        for uid, pod in by_owner.items():
            ds = wanted.get(uid)
            revision = pod["metadata"].get("labels", {}).get(REVISION_LABEL)
            if ds is None or revision != template_hash(ds["spec"]["template"]):
                self._delete(pod)
        for uid, ds in wanted.items():
            pod = by_owner.get(uid)
            if pod is None or pod["metadata"].get("labels", {}).get(REVISION_LABEL) != \
                    template_hash(ds["spec"]["template"]):
                self._start_daemon_pod(ds)
            elif pod["metadata"].get("uid") not in self.running:
                self._install_cni(ds)
                self.running.add(pod["metadata"].get("uid", ""))

    def _start_daemon_pod(self, ds: dict[str, Any]) -> None:
        meta, template = ds["metadata"], ds["spec"]["template"]
        ns = meta["namespace"]
        self._install_cni(ds)
        spec = dict(template.get("spec", {}), nodeName=self.node.name)
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{meta['name']}-{_suffix()}", "namespace": ns,
                         "labels": {**template.get("metadata", {}).get("labels", {}),
                                    REVISION_LABEL: template_hash(template)},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                              "name": meta["name"], "uid": meta["uid"],
                                              "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": spec, "status": self._running(spec),
        }
        try:
            made = self.client.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)
            self.running.add(str((made.get("metadata") or {}).get("uid", "")))
            log(f"started pod {ns}/{pod['metadata']['name']} of DaemonSet {meta['name']}")
        except ApiError as exc:
            log(f"DaemonSet {ns}/{meta['name']}: {exc.message}")

    def _install_cni(self, ds: dict[str, Any]) -> None:
        spec = ds["spec"]["template"].get("spec", {})
        volumes = spec.get("volumes") or []
        if not any((v.get("hostPath") or {}).get("path", "").rstrip("/") == env.CNI_CONF_DIR
                   for v in volumes):
            return
        ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
        for volume in volumes:
            cm = (volume.get("configMap") or {}).get("name")
            if not cm:
                continue
            try:
                data = self.client.request(
                    "GET", f"/api/v1/namespaces/{ns}/configmaps/{cm}").get("data") or {}
            except ApiError:
                continue
            if CNI_KEY in data:
                target = f"{env.CNI_CONF_DIR}/10-{name}.conflist"
                current = env.path(target)
                if not current.exists() or current.read_text() != data[CNI_KEY]:
                    env.write_atomic(target, data[CNI_KEY], 0o644)
                    log(f"installed CNI config {target} from ConfigMap {ns}/{cm}")
                return

    def _running(self, spec: dict[str, Any]) -> dict[str, Any]:
        containers = spec.get("containers", [])
        ip = self.node.address if spec.get("hostNetwork") else \
            f"10.244.{int.from_bytes(secrets.token_bytes(1), 'big')}.{secrets.randbelow(250) + 2}"
        return {
            "phase": "Running", "hostIP": self.node.address, "podIP": ip, "startTime": _now(),
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": _now()}],
            "containerStatuses": [{"name": c.get("name", ""), "image": c.get("image", ""),
                                   "ready": True, "started": True, "restartCount": 0,
                                   "state": {"running": {"startedAt": _now()}}}
                                  for c in containers],
        }

    def _take_pending(self, me: dict[str, Any]) -> None:
        pending = self.client.request(
            "GET", "/api/v1/pods?fieldSelector=status.phase%3DPending")["items"]
        for pod in pending:
            if pod.get("spec", {}).get("nodeName") or not fits(pod, me):
                continue
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            try:
                self.client.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/binding", {
                    "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.node.name}})
                self.client.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status",
                                    {"status": self._running(pod["spec"])}, MERGE)
            except ApiError:
                continue  # bound elsewhere first, or gone
            log(f"started pod {ns}/{name}")
            return  # one per sync: pods spread over the nodes that have a network

    def _delete(self, pod: dict[str, Any]) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        try:
            self.client.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}")
            log(f"deleted pod {ns}/{name}")
        except ApiError:
            pass
