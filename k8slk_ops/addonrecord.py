"""The cluster's record of the addon manifests applied to it: a ConfigMap in kube-system.

``kubectl apply`` of an unchanged manifest changes nothing in the cluster, but the tool could not
tell the operator so: it would report every re-run as a change. So each manifest's SHA-256 is
kept under its key in ``kube-system/k8slk-ops-addons`` once kubectl applied it; a run compares
the inventory's manifests with the record and applies only those that differ. The record lives
in the cluster, not on this machine, so any operator's re-run sees it.
"""

from __future__ import annotations

import json

from k8slk_ops import kubeadm
from k8slk_ops.node import LinuxKitNode

NAMESPACE = "kube-system"
NAME = "k8slk-ops-addons"
# The key saying the tool deleted kube-proxy (``cluster.kubeProxy: false``).
KUBE_PROXY_REMOVED = "kube-proxy-removed"


class AddonError(Exception):
    """kubectl could not read the record or apply a manifest; carries its words."""


def parse_record(stdout: str) -> dict[str, str]:
    """The data of the ConfigMap as ``kubectl get -o json`` prints it (strings only)."""
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise AddonError(f"kubectl get configmap did not print JSON: {exc}") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def record_manifest(data: dict[str, str]) -> bytes:
    """The ConfigMap holding ``data``, for ``kubectl apply -f -`` (JSON is YAML)."""
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "k8slk-ops"},
        },
        "data": dict(sorted(data.items())),
    }
    return json.dumps(doc, indent=2).encode()


async def read_record(node: LinuxKitNode) -> dict[str, str]:
    """What the cluster says was applied; empty when there is no record yet."""
    result = await node.kubectl(
        "-n", NAMESPACE, "get", "configmap", NAME, "-o", "json", "--ignore-not-found", timeout=30
    )
    if result.exit_status != 0:
        raise AddonError(kubeadm.failure_summary(result.stderr or result.stdout))
    text = result.stdout.decode(errors="replace").strip()
    return parse_record(text) if text else {}


async def write_record(node: LinuxKitNode, data: dict[str, str]) -> None:
    """Replace the record with ``data``; AddonError with kubectl's words if it fails."""
    await apply_manifest(node, record_manifest(data), f"the record {NAMESPACE}/{NAME}")


async def apply_manifest(node: LinuxKitNode, manifest: bytes, what: str) -> None:
    """``kubectl apply -f -`` with the manifest on stdin; AddonError with its error."""
    result = await node.kubelet_exec(["kubectl", "apply", "-f", "-"], input=manifest, timeout=120)
    if result.exit_status != 0:
        raise AddonError(
            f"kubectl apply of {what} failed (exit {result.exit_status}): "
            + kubectl_error(result.stderr or result.stdout)
        )


def kubectl_error(output: bytes) -> str:
    """kubectl's error lines (``error: ...``, ``Error from server ...``), else its last line:
    after ``no matches for kind`` it adds a hint line that alone would not say what failed."""
    lines = output.decode(errors="replace").splitlines()
    errors = [line.strip() for line in lines if line.lstrip().lower().startswith("error")]
    if not errors:
        return kubeadm.failure_summary(output)
    return kubeadm.failure_summary(" | ".join(errors[:3]), limit=600)
