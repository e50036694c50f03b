"""Node objects as the API serves them and kubectl prints them."""

from __future__ import annotations

import datetime as dt
import platform
from typing import Any

NETWORK_NOT_READY = ("container runtime network not ready: NetworkReady=false "
                     "reason:NetworkPluginNotReady message:Network plugin returns error: "
                     "cni plugin not initialized")
ROLE_PREFIX = "node-role.kubernetes.io/"
# Taints the API server's own controllers put on a Node from its state (not stored with it).
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def node_json(node: dict[str, Any], ready: str, created: str, heartbeat: str) -> dict[str, Any]:
    """A real-shaped v1 Node (the fields kubectl and k8slk-ops read, and a few around them)."""
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": node["name"],
        "kubernetes.io/os": "linux",
        **node.get("labels", {}),
    }
    reason = {"True": "KubeletReady", "False": "KubeletNotReady", "Unknown": "NodeStatusUnknown"}
    message = {
        "True": "kubelet is posting ready status",
        "False": NETWORK_NOT_READY,
        "Unknown": "Kubelet stopped posting node status.",
    }
    not_ready = node.get("notReady") or {}
    if ready == "False" and not_ready:
        reason = {**reason, "False": not_ready.get("reason", reason["False"])}
        message = {**message, "False": not_ready.get("message", message["False"])}
    spec: dict[str, Any] = {}
    # kubeadm's mark-control-plane taints (per minor: kubeversions) and any kubectl taint added
    taints = [dict(t) for t in node.get("taints", [])]
    if ready != "True":  # the node lifecycle controller's taint
        taints.append({"effect": "NoSchedule", "key": NOT_READY_TAINT})
    if node.get("unschedulable"):
        spec["unschedulable"] = True
        taints.append({"effect": "NoSchedule", "key": UNSCHEDULABLE_TAINT,
                       "timeAdded": heartbeat})
    if taints:
        spec["taints"] = taints
    addresses = [{"address": node["name"], "type": "Hostname"}]
    if node.get("address"):
        addresses.insert(0, {"address": node["address"], "type": "InternalIP"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node["name"], "labels": labels, "creationTimestamp": created,
                     "uid": node.get("uid", f"node-{node['name']}"),
                     "resourceVersion": str(node.get("rv") or 1),
                     "annotations": {"kubeadm.alpha.kubernetes.io/cri-socket":
                                     "unix:///var/run/containerd/containerd.sock",
                                     **node.get("annotations", {})}},
        "spec": spec,
        "status": {
            "addresses": addresses,
            "conditions": [{
                "type": "Ready", "status": ready, "reason": reason[ready],
                "message": message[ready], "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": heartbeat,
            }],
            "nodeInfo": {
                "kubeletVersion": node.get("kubeletVersion", ""),
                "kubeProxyVersion": node.get("kubeletVersion", ""),
                "containerRuntimeVersion": "containerd://1.6.20",
                "operatingSystem": "linux", "architecture": "amd64",
                "kernelVersion": platform.release(),
                "osImage": "LinuxKit Kubernetes Project",
            },
        },
    }


def stored_taints(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The taints of a Node's spec that are kept with it (the controllers' ones are not)."""
    return [dict(t) for t in spec.get("taints") or []
            if t.get("key") not in (NOT_READY_TAINT, UNSCHEDULABLE_TAINT)]


def roles(item: dict[str, Any]) -> str:
    found = sorted(k[len(ROLE_PREFIX):] for k in item["metadata"].get("labels", {})
                   if k.startswith(ROLE_PREFIX))
    return ",".join(found) or "<none>"


def status(item: dict[str, Any]) -> str:
    ready = next((c["status"] for c in item["status"].get("conditions", [])
                  if c["type"] == "Ready"), "Unknown")
    text = {"True": "Ready", "False": "NotReady"}.get(ready, "NotReady")
    if item["spec"].get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def age(created: str, now: dt.datetime | None = None) -> str:
    """kubectl's short age: 45s, 3m, 2h, 5d (two units when the first is small)."""
    now = now or dt.datetime.now(dt.UTC)
    then = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    secs = max(0, int((now - then).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 10:
        rest = secs % 60
        return f"{mins}m{rest}s" if rest else f"{mins}m"
    if mins < 180:
        return f"{mins}m"
    hours = mins // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def table(items: list[dict[str, Any]], wide: bool = False) -> str:
    header = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    if wide:
        header += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = [header]
    for item in items:
        row = [item["metadata"]["name"], status(item), roles(item),
               age(item["metadata"]["creationTimestamp"]),
               item["status"]["nodeInfo"]["kubeletVersion"]]
        if wide:
            ips = [a["address"] for a in item["status"].get("addresses", [])
                   if a["type"] == "InternalIP"]
            info = item["status"]["nodeInfo"]
            row += [ips[0] if ips else "<none>", "<none>", info.get("osImage", ""), "6.6.0",
                    info.get("containerRuntimeVersion", "")]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"
