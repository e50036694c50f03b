"""The cluster's record of the addon manifests applied to it: a ConfigMap in kube-system.

``kubectl apply`` of an unchanged manifest changes nothing in the cluster, but the tool could not
tell the operator so: it would report every re-run as a change. So each manifest's SHA-256 is
kept under its key in ``kube-system/k8slk-ops-addons`` once kubectl applied it; a run compares
the inventory's manifests with the record and applies only those that differ. The record lives
in the cluster, not on this machine, so any operator's re-run sees it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from k8slk_ops import kubeadm
from k8slk_ops.inventory.addons import Addon, ManifestObject
from k8slk_ops.kubeadm.apply import ApplyError, ApplyOutput, parse_apply_output, result_label
from k8slk_ops.kubeadm.summary import NO_OUTPUT
from k8slk_ops.node import LinuxKitNode

NAMESPACE = "kube-system"
NAME = "k8slk-ops-addons"
# A failed apply's one-line message names this many failures; its log tail names them all.
MESSAGE_PARTS = 3
# The key saying the tool deleted kube-proxy (``cluster.kubeProxy: false``).
KUBE_PROXY_REMOVED = "kube-proxy-removed"


class AddonError(Exception):
    """kubectl could not read the record or apply a manifest; carries its words: the message
    in one line, and ``lines``, every line kubectl printed, for the report's log tail."""

    def __init__(self, message: str, lines: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.lines = list(lines)


@dataclass(frozen=True)
class FailedObject:
    """An object kubectl did not apply: who it is, where it is in the manifest (empty when
    not found there), and kubectl's cause (empty for a document kubectl reported nothing on)."""

    label: str
    where: str
    cause: str

    def line(self) -> str:
        at = f" ({self.where})" if self.where else ""
        return f"{self.label}{at}: {self.cause}" if self.cause else f"{self.label}{at}"


@dataclass(frozen=True)
class ApplyFailure:
    """A failed ``kubectl apply``, explained: the objects that failed, the documents kubectl
    neither applied nor blamed (``not_applied``), errors about no object in particular, and
    every line it printed."""

    what: str
    exit_status: int
    failed: tuple[FailedObject, ...]
    not_applied: tuple[FailedObject, ...]
    unplaced: tuple[str, ...]  # causes of errors not tied to an object
    lines: tuple[str, ...]

    def message(self) -> str:
        """The report's one line: each failed object with kubectl's cause, and what to do."""
        parts = [f.line() for f in self.failed] + list(self.unplaced)
        if self.not_applied:
            parts.append("not applied: " + ", ".join(f.line() for f in self.not_applied))
        if len(parts) > MESSAGE_PARTS:
            parts[MESSAGE_PARTS:] = [f"and {len(parts) - MESSAGE_PARTS} more"]
        why = "; ".join(parts) or NO_OUTPUT
        return (
            f"kubectl apply of {self.what} failed (exit {self.exit_status}): {why} "
            "(every line kubectl printed is in the node's log tail; fix the manifest, or "
            "first install what it needs, and run again)"
        )

    def report_lines(self) -> tuple[str, ...]:
        """kubectl's lines as printed, then each object named with its place in the file."""
        named = [f"failed: {f.label}" + (f" at {f.where}" if f.where else "") for f in self.failed]
        skipped = [f"not applied: {f.label} at {f.where}" for f in self.not_applied]
        return (*self.lines, *named, *skipped)


def explain_failure(
    what: str, exit_status: int, stdout: bytes, stderr: bytes, addon: Addon | None
) -> ApplyFailure:
    """Tie kubectl's errors to the manifest's documents: a named object to its document; the
    errors that name none (``error when creating "STDIN": ...``) to the documents stdout did
    not report, in order, when there are as many of each (kubectl reports both in document
    order); otherwise those documents are listed as not applied."""
    output = parse_apply_output(stdout.decode(errors="replace"), stderr.decode(errors="replace"))
    objects = addon.layout.objects if addon is not None else ()
    place = addon.where if addon is not None else (lambda obj: "")
    failed: list[FailedObject] = []
    blamed: set[int] = set()
    for error in output.errors:
        if error.named:
            obj = _find(objects, error)
            if obj is not None:
                blamed.add(obj.document)
            label = obj.label if obj is not None else _label(error)
            failed.append(FailedObject(label, place(obj) if obj else "", error.cause))
    silent = [
        o for o in objects
        if o.mapping and o.document not in blamed and not _reported(output, o)
    ]
    unnamed = [e for e in output.errors if not e.named and e.per_object]
    unplaced = [e.cause for e in output.errors if not e.named and not e.per_object]
    if len(unnamed) == len(silent):
        failed.extend(FailedObject(o.label, place(o), e.cause) for o, e in zip(silent, unnamed, strict=True))
        silent = []
    else:
        unplaced = [e.cause for e in unnamed] + unplaced
    not_applied = [FailedObject(o.label, place(o), "") for o in silent]
    if addon is not None and addon.layout.unreadable_line is not None:
        unplaced.append(f"(the manifest is not valid YAML at {addon.name}:"
                        f"{addon.layout.unreadable_line})")
    return ApplyFailure(what, exit_status, tuple(failed), tuple(not_applied), tuple(unplaced),
                        output.lines)


def _label(error: ApplyError) -> str:
    return ManifestObject(0, 0, True, error.kind, error.api_version, error.name,
                          error.namespace).label


def _find(objects: tuple[ManifestObject, ...], error: ApplyError) -> ManifestObject | None:
    """The document kubectl's error names (kind and name, and namespace when both say one)."""
    for obj in objects:
        if (obj.kind, obj.name) != (error.kind, error.name):
            continue
        if error.namespace and obj.namespace and error.namespace != obj.namespace:
            continue
        if error.api_version and obj.api_version and error.api_version != obj.api_version:
            continue
        return obj
    return None


def _reported(output: ApplyOutput, obj: ManifestObject) -> bool:
    return (result_label(obj.kind, obj.api_version), obj.name) in output.applied


def parse_record(stdout: str) -> dict[str, str]:
    """The data of the ConfigMap as ``kubectl get -o json`` prints it (strings only)."""
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise AddonError(f"kubectl get configmap did not print JSON: {exc}") from None
    return record_data(doc) if isinstance(doc, dict) else {}


def record_data(configmap: Mapping[str, Any]) -> dict[str, str]:
    """The record's entries, from its ConfigMap as a JSON object (strings only): read here
    for every reader, whether the ConfigMap came alone or in a List."""
    data = configmap.get("data")
    if not isinstance(data, Mapping):
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


async def apply_manifest(
    node: LinuxKitNode, manifest: bytes, what: str, addon: Addon | None = None
) -> None:
    """``kubectl apply -f -`` with the manifest on stdin; AddonError naming what failed, where
    it is in ``addon``'s file, and every line kubectl printed."""
    result = await node.kubelet_exec(["kubectl", "apply", "-f", "-"], input=manifest, timeout=120)
    if result.exit_status != 0:
        failure = explain_failure(what, result.exit_status, result.stdout, result.stderr, addon)
        raise AddonError(failure.message(), failure.report_lines())
