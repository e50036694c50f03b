"""``cluster.addons``: the manifests applied on the primary right after ``kubeadm init``.

A pod network above all: kubelet keeps every Node NotReady (``NetworkPluginNotReady``) until a
CNI configuration exists. Each entry is a file or a directory (its ``*.yaml``/``*.yml`` in name
order), relative to the inventory. The files are read once, when the inventory loads, with the
bounded reader, and the tool's few placeholders are filled in from the inventory
(``${podSubnet}`` ...). A vendor's manifest is applied as it was downloaded, so any other
``${...}`` is left as written: kube-router's shell snippets use ``${TMP}``, and such a manifest
must not need editing. Only a near miss of one of the tool's names (``${podSubet}``,
``${PodSubnet}``) is likely a typo, and it is warned about with its file:line. ``$${`` is a
literal ``${``, as it always was.

Where each object sits in a manifest (document and line) is read here too, but only when a
report needs it: kubectl names a failed object by kind and name, and says ``from "STDIN"``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from k8slk_ops.inventory.errors import InventoryError, InventoryIssue
from k8slk_ops.inventory.source import place, read_text

MANIFEST_SUFFIXES = (".yaml", ".yml")
PLACEHOLDERS = (
    "podSubnet",
    "serviceSubnet",
    "clusterName",
    "controlPlaneEndpoint",
    "kubernetesVersion",
)
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}\n]*)\}")
_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")
# A ``${name}`` this close to one of the tool's names (after case and ``_``/``-`` are set
# aside) is taken for a typo of it: two edits catch a dropped, doubled or swapped letter, and
# the tool's names are long enough (9 characters and more) that no ordinary word is that near.
NEAR_MISS_EDITS = 2
_SEPARATORS = re.compile(r"[-_]")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# All the manifests together: a pod network is under 1 MiB (Calico's operator CRDs, the
# largest, about 1.5 MiB in two files), and each is held twice while the inventory loads.
MAX_TOTAL_BYTES = 16 << 20


@dataclass(frozen=True)
class ManifestObject:
    """One document of a manifest as kubectl will see it: what it is and where it starts.
    ``kind``, ``name`` ... are empty when the document does not say (or is no mapping)."""

    document: int  # 1-based, in file order
    line: int  # 1-based line of the document's first node
    mapping: bool = False  # an object at all: kubectl skips an empty document
    kind: str = ""
    api_version: str = ""
    name: str = ""
    namespace: str = ""

    @property
    def label(self) -> str:
        """``DaemonSet kube-system/kube-router``, as an operator looks it up."""
        name = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind or 'object'} {name or '(no name)'}"


@dataclass(frozen=True)
class ManifestLayout:
    """The documents a manifest holds, in order, and where reading it stopped if it did."""

    objects: tuple[ManifestObject, ...]
    unreadable_line: int | None = None  # 1-based line of a YAML error, if any
    # The values under a Secret's ``data`` and ``stringData``: kubectl prints a failed patch
    # whole, so a report of that failure must hide them.
    secret_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Addon:
    """One manifest file, its placeholders filled in, ready for ``kubectl apply -f -``."""

    path: Path
    name: str  # the path as the inventory's directory sees it (``cni/flannel.yml``)
    text: str
    sha256: str
    # ``file:line:column: ...`` for each ``${...}`` that looks like a typo of a placeholder.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """Its key in the cluster's record of applied manifests (a ConfigMap data key)."""
        return addon_key(self.name)

    @functools.cached_property
    def layout(self) -> ManifestLayout:
        """Its documents and where they start; read on first use only (a report of a failed
        apply), since a CRD-heavy manifest is large and most runs never need it."""
        return manifest_layout(self.text)

    def where(self, obj: ManifestObject) -> str:
        """``cni/kube-router.yaml:12, document 2``: where ``obj`` is in this manifest."""
        return f"{self.name}:{obj.line}, document {obj.document}"


def addon_key(name: str) -> str:
    """A manifest's key in the cluster's record of applied manifests (a ConfigMap data key)."""
    return _KEY_CHARS.sub("_", name.replace("/", "__"))[:253]


def manifest_layout(text: str) -> ManifestLayout:
    """Each document's kind, apiVersion, name and namespace and its first line, from YAML
    nodes (aliases are not expanded, nothing is built); stops at the first YAML error."""
    objects: list[ManifestObject] = []
    secrets: list[str] = []
    try:
        for number, node in enumerate(yaml.compose_all(text, Loader=_Loader), start=1):
            objects.append(_manifest_object(number, node))
            if objects[-1].kind == "Secret":
                secrets += _secret_values(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        last = max(1, len(text.splitlines()))  # an error at the end is put on the last line
        at = min(mark.line + 1, last) if mark is not None else 0
        return ManifestLayout(tuple(objects), at, tuple(secrets))
    return ManifestLayout(tuple(objects), None, tuple(secrets))


def _secret_values(node: yaml.Node) -> list[str]:
    values: list[str] = []
    for key, value in node.value if isinstance(node, yaml.MappingNode) else ():
        if _scalar(key) in ("data", "stringData") and isinstance(value, yaml.MappingNode):
            values += [v for v in _scalars(value).values() if v]
    return values


def _manifest_object(number: int, node: Any) -> ManifestObject:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        return ManifestObject(number, line)
    top = _scalars(node)
    meta = next((v for k, v in node.value if _scalar(k) == "metadata"), None)
    inner = _scalars(meta) if isinstance(meta, yaml.MappingNode) else {}
    return ManifestObject(number, line, True, top.get("kind", ""), top.get("apiVersion", ""),
                          inner.get("name", ""), inner.get("namespace", ""))


def _scalar(node: Any) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _scalars(node: yaml.MappingNode) -> dict[str, str]:
    """A mapping's scalar keys with scalar values."""
    out: dict[str, str] = {}
    for key, value in node.value:
        k, v = _scalar(key), _scalar(value)
        if k is not None and v is not None:
            out.setdefault(k, v)
    return out


def _squashed(name: str) -> str:
    return _SEPARATORS.sub("", name).lower()


def _edits(a: str, b: str) -> int:
    """Levenshtein distance, adjacent swaps counting one (Damerau's optimal string alignment)."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, start=1):
        row = [i]
        for j, cb in enumerate(b, start=1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def near_miss(name: str) -> str | None:
    """The placeholder ``name`` probably meant (a typo or another case), or None."""
    squashed = _squashed(name)
    close = [
        (_edits(squashed, p.lower()), p)
        for p in PLACEHOLDERS
        if abs(len(squashed) - len(p)) <= NEAR_MISS_EDITS  # else more edits apart than that
    ]
    best = min(close, default=None)
    return best[1] if best is not None and best[0] <= NEAR_MISS_EDITS else None


def manifest_files(entry: Path) -> list[Path]:
    """The files one ``addons`` entry names: itself, or a directory's manifests in name order."""
    if entry.is_dir():
        return sorted(
            (p for p in entry.iterdir() if p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file()),
            key=lambda p: p.name,
        )
    return [entry]


def substitute(
    path: Path, text: str, values: dict[str, str | None]
) -> tuple[str, tuple[str, ...]]:
    """``text`` with the tool's placeholders filled in, and a warning at each ``${...}`` left
    as written that looks like a typo of one; InventoryError at a placeholder that needs an
    inventory value that is not set."""
    problems: list[InventoryIssue] = []
    warnings: list[str] = []

    def fill(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1)
        line, column = place(text, match.start())
        if name not in values:
            meant = near_miss(name)
            if meant is not None:
                warnings.append(
                    f"WARNING: {path}:{line}:{column}: ${{{name}}} is left as written; if "
                    f"${{{meant}}} was meant, spell it so (the tool fills in only "
                    + ", ".join(f"${{{p}}}" for p in PLACEHOLDERS)
                    + ")"
                )
            return match.group(0)
        value = values[name]
        if value is None:
            problems.append(
                InventoryIssue(
                    str(path),
                    line,
                    column,
                    "",
                    f"${{{name}}} needs cluster.{name} set in the inventory",
                )
            )
            return match.group(0)
        return value

    result = _PLACEHOLDER.sub(fill, text)
    if problems:
        raise InventoryError(problems)
    return result, tuple(warnings)


def load_addons(
    entries: Iterable[Path],
    base_dir: Path,
    values: dict[str, str | None],
    issue_at: Callable[[int, str], InventoryIssue],
) -> tuple[Addon, ...]:
    """Every manifest the entries name, read and filled in; InventoryError lists all problems.
    ``issue_at(index, message)`` places a problem with an entry at its line in the inventory.

    The cost is bounded before anything is read: a file named twice is refused from the names
    alone (400 entries naming one 1 MiB file once took 467 MB before that was said), and the
    files together may hold at most ``MAX_TOTAL_BYTES``; the entry that goes over is named."""
    problems: list[InventoryIssue] = []
    wanted: list[tuple[int, Path, str]] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(entries):
        if not entry.exists():
            problems.append(issue_at(index, f"no such file or directory: {entry}"))
            continue
        files = manifest_files(entry)
        if not files:
            problems.append(issue_at(index, f"{entry} holds no *.yaml or *.yml manifest"))
        for path in files:
            name = _name(path, base_dir)
            key = addon_key(name)
            if key in seen:
                problems.append(issue_at(index, f"{name} is listed twice"
                                         + (f" (as {seen[key]})" if seen[key] != name else "")))
                continue
            seen[key] = name
            wanted.append((index, path, name))
    if problems:
        raise InventoryError(problems)
    addons: list[Addon] = []
    total = 0
    for index, path, name in wanted:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0  # read_text says why it cannot be read
        if total + size > MAX_TOTAL_BYTES:
            problems.append(issue_at(index, (
                f"the addon manifests hold more than {MAX_TOTAL_BYTES >> 20} MiB together "
                f"({total} bytes before {name}, which has {size}); apply the rest with kubectl "
                "after the bootstrap, or split the cluster's addons")))
            break
        try:
            raw = read_text(path)
            total += len(raw.encode())
            text, warnings = substitute(path, raw, values)
        except InventoryError as exc:
            problems.extend(exc.issues)
            continue
        digest = hashlib.sha256(text.encode()).hexdigest()
        addons.append(Addon(path, name, text, digest, warnings))
    if problems:
        raise InventoryError(problems)
    return tuple(addons)


def _name(path: Path, base_dir: Path) -> str:
    """The path as the inventory's directory sees it (the record's key is made from it)."""
    try:
        return path.relative_to(base_dir).as_posix()
    except ValueError:
        return path.as_posix().lstrip("/")
