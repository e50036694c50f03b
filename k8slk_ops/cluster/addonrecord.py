"""The cluster's record of the addon manifests applied to it: a ConfigMap in kube-system.

``kubectl apply`` of an unchanged manifest changes nothing in the cluster, but the tool could not
tell the operator so: it would report every re-run as a change. So each manifest's SHA-256 is
kept under its key in ``kube-system/k8slk-ops-addons`` once kubectl applied it; a run compares
the inventory's manifests with the record and applies only those that differ. The record lives
in the cluster, not on this machine, so any operator's re-run sees it.

Beside the SHA-256, each entry names the objects its manifest held (apiVersion, kind,
namespace, name), so that an addon taken out of the inventory can be deleted (``apply
--prune``) without its file. The value is compact JSON, ``{"sha256": ..., "objects": [[
apiVersion, kind, namespace, name], ...]}``; an entry written before objects were kept is the
bare SHA-256, still read as such: its objects are unknown (``RecordEntry.objects`` None), and
it cannot be pruned by the tool. Both forms are read and written here only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from k8slk_ops import kubeadm
from k8slk_ops.inventory.addons import Addon, ManifestObject
from k8slk_ops.kubeadm.apply import ApplyError, ApplyOutput, parse_apply_output, result_label
from k8slk_ops.kubeadm.summary import NO_OUTPUT
from k8slk_ops.node.linuxkit import LinuxKitNode

NAMESPACE = "kube-system"
NAME = "k8slk-ops-addons"
# A failed apply's one-line message names this many failures; its log tail names them all.
MESSAGE_PARTS = 3
# The key saying the tool deleted kube-proxy (``cluster.kubeProxy: false``).
KUBE_PROXY_REMOVED = "kube-proxy-removed"
# An entry's objects are kept while its value stays under this size (a ConfigMap holds at most
# 1 MiB in all; Calico's operator manifests, CRDs included, make about 10 KiB of names). A
# manifest of more objects is recorded by its SHA-256 alone, as an entry of old.
MAX_ENTRY_BYTES = 128 << 10


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


@dataclass(frozen=True)
class RecordedObject:
    """One object an applied manifest held, as its document named it."""

    api_version: str
    kind: str
    namespace: str  # "" for a cluster-scoped object, or one kubectl put in its default
    name: str

    @classmethod
    def of(cls, obj: ManifestObject) -> RecordedObject:
        return cls(obj.api_version, obj.kind, obj.namespace, obj.name)

    @property
    def group(self) -> str:
        """The API group (``apps``; "" for the core group)."""
        group, _, version = self.api_version.rpartition("/")
        return group if version else ""

    @property
    def ref(self) -> str:
        """``deployment.apps/web``: the object as ``kubectl delete`` takes it (the kind in
        its group, whichever version the server prefers)."""
        kind = self.kind.lower()
        return f"{kind}.{self.group}/{self.name}" if self.group else f"{kind}/{self.name}"

    @property
    def label(self) -> str:
        """``Deployment demo/web``, as the report names it."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


@dataclass(frozen=True)
class RecordEntry:
    """One key of the record: the SHA-256 of the manifest applied, and the objects it held,
    in manifest order; ``objects`` is None for an entry that did not keep them (written by an
    older version of the tool, or of a manifest too large to list)."""

    sha256: str
    objects: tuple[RecordedObject, ...] | None = None

    @classmethod
    def of(cls, addon: Addon) -> RecordEntry:
        """The entry for ``addon`` once kubectl applied it: every document that names a kind
        and a name (kubectl skips empty documents, and rejects nameless ones)."""
        objects = tuple(RecordedObject.of(o) for o in addon.layout.objects
                        if o.mapping and o.kind and o.name)
        entry = cls(addon.sha256, objects)
        return entry if len(entry.value()) <= MAX_ENTRY_BYTES else cls(addon.sha256)

    @classmethod
    def parse(cls, value: str) -> RecordEntry:
        """An entry as the ConfigMap holds it: the JSON object, or a bare SHA-256 (of old, and
        ``true`` under ``KUBE_PROXY_REMOVED``). A JSON entry whose objects are unreadable is
        read as one without objects: nothing is deleted on a guess."""
        text = value.strip()
        if not text.startswith("{"):
            return cls(text)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            return cls(text)
        sha = doc.get("sha256") if isinstance(doc, dict) else None
        if not isinstance(sha, str):
            return cls(text)
        raw = doc.get("objects")
        if not isinstance(raw, list):
            return cls(sha)
        objects = []
        for item in raw:
            if not (isinstance(item, list) and len(item) == 4
                    and all(isinstance(part, str) for part in item)):
                return cls(sha)
            objects.append(RecordedObject(*item))
        return cls(sha, tuple(objects))

    def value(self) -> str:
        """The ConfigMap value: compact JSON, or the bare SHA-256 when objects are unknown."""
        if self.objects is None:
            return self.sha256
        objects = [[o.api_version, o.kind, o.namespace, o.name] for o in self.objects]
        return json.dumps({"sha256": self.sha256, "objects": objects}, separators=(",", ":"))


def forget_command(key: str) -> str:
    """The kubectl command that takes ``key`` out of the record, for an operator to run."""
    return (f"kubectl -n {NAMESPACE} patch configmap {NAME} --type json -p "
            f"'[{{\"op\": \"remove\", \"path\": \"/data/{key}\"}}]'")


def left_entries(record: Mapping[str, RecordEntry], keys: Iterable[str]
                 ) -> list[tuple[str, RecordEntry]]:
    """The entries of manifests no longer listed (``keys`` are the inventory's), by key;
    never ``KUBE_PROXY_REMOVED``, which records no manifest."""
    listed = {*keys, KUBE_PROXY_REMOVED}
    return sorted(((k, e) for k, e in record.items() if k not in listed), key=lambda ke: ke[0])


def parse_record(stdout: str) -> dict[str, RecordEntry]:
    """The entries of the ConfigMap as ``kubectl get -o json`` prints it (strings only)."""
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise AddonError(f"kubectl get configmap did not print JSON: {exc}") from None
    return record_data(doc) if isinstance(doc, dict) else {}


def record_data(configmap: Mapping[str, Any]) -> dict[str, RecordEntry]:
    """The record's entries, from its ConfigMap as a JSON object (strings only): read here
    for every reader, whether the ConfigMap came alone or in a List."""
    data = configmap.get("data")
    if not isinstance(data, Mapping):
        return {}
    return {k: RecordEntry.parse(v) for k, v in data.items()
            if isinstance(k, str) and isinstance(v, str)}


def record_manifest(record: Mapping[str, RecordEntry]) -> bytes:
    """The ConfigMap holding ``record``, for ``kubectl apply -f -`` (JSON is YAML)."""
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "k8slk-ops"},
        },
        "data": {key: entry.value() for key, entry in sorted(record.items())},
    }
    return json.dumps(doc, indent=2).encode()


async def read_record(node: LinuxKitNode) -> dict[str, RecordEntry]:
    """What the cluster says was applied; empty when there is no record yet."""
    result = await node.kubectl(
        "-n", NAMESPACE, "get", "configmap", NAME, "-o", "json", "--ignore-not-found", timeout=30
    )
    if result.exit_status != 0:
        raise AddonError(kubeadm.failure_summary(result.stderr or result.stdout))
    text = result.stdout.decode(errors="replace").strip()
    return parse_record(text) if text else {}


async def write_record(node: LinuxKitNode, record: Mapping[str, RecordEntry]) -> None:
    """Replace the record with ``record``; AddonError with kubectl's words if it fails."""
    await apply_manifest(node, record_manifest(record), f"the record {NAMESPACE}/{NAME}")


async def apply_manifest(
    node: LinuxKitNode, manifest: bytes, what: str, addon: Addon | None = None
) -> None:
    """``kubectl apply -f -`` with the manifest on stdin; AddonError naming what failed, where
    it is in ``addon``'s file, and every line kubectl printed."""
    result = await node.kubelet_exec(["kubectl", "apply", "-f", "-"], input=manifest, timeout=120)
    if result.exit_status != 0:
        failure = explain_failure(what, result.exit_status, result.stdout, result.stderr, addon)
        raise AddonError(failure.message(), failure.report_lines())
