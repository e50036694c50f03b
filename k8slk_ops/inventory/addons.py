"""``cluster.addons``: the manifests applied on the primary right after ``kubeadm init``.

A pod network above all: kubelet keeps every Node NotReady (``NetworkPluginNotReady``) until a
CNI configuration exists. Each entry is a file or a directory (its ``*.yaml``/``*.yml`` in name
order), relative to the inventory. The files are read once, when the inventory loads, with the
bounded reader, and a few placeholders are filled in from the inventory (``${podSubnet}`` ...).
Any other ``${...}`` is an error at its line, before anything connects: a manifest meant for
``envsubst`` would otherwise reach the cluster with the placeholder in it. ``$${`` is a literal
``${``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

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
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}\n]*)\}?")
_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")


@dataclass(frozen=True)
class Addon:
    """One manifest file, its placeholders filled in, ready for ``kubectl apply -f -``."""

    path: Path
    name: str  # the path as the inventory's directory sees it (``cni/flannel.yml``)
    text: str
    sha256: str

    @property
    def key(self) -> str:
        """Its key in the cluster's record of applied manifests (a ConfigMap data key)."""
        return _KEY_CHARS.sub("_", self.name.replace("/", "__"))[:253]


def manifest_files(entry: Path) -> list[Path]:
    """The files one ``addons`` entry names: itself, or a directory's manifests in name order."""
    if entry.is_dir():
        return sorted(
            (p for p in entry.iterdir() if p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file()),
            key=lambda p: p.name,
        )
    return [entry]


def substitute(path: Path, text: str, values: dict[str, str | None]) -> str:
    """``text`` with its placeholders filled in; InventoryError at each one that cannot be."""
    problems: list[InventoryIssue] = []

    def fill(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1)
        line, column = place(text, match.start())
        if not match.group(0).endswith("}"):
            problems.append(InventoryIssue(str(path), line, column, "", "an unclosed ${"))
            return match.group(0)
        if name not in values:
            problems.append(
                InventoryIssue(
                    str(path),
                    line,
                    column,
                    "",
                    f"unknown placeholder ${{{name}}}: the placeholders are "
                    + ", ".join(f"${{{p}}}" for p in PLACEHOLDERS)
                    + " (write $${ for a literal ${)",
                )
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
    return result


def load_addons(
    entries: Iterable[Path],
    base_dir: Path,
    values: dict[str, str | None],
    issue_at: Callable[[int, str], InventoryIssue],
) -> tuple[Addon, ...]:
    """Every manifest the entries name, read and filled in; InventoryError lists all problems.
    ``issue_at(index, message)`` places a problem with an entry at its line in the inventory."""
    addons: list[Addon] = []
    problems: list[InventoryIssue] = []
    for index, entry in enumerate(entries):
        if not entry.exists():
            problems.append(issue_at(index, f"no such file or directory: {entry}"))
            continue
        files = manifest_files(entry)
        if not files:
            problems.append(issue_at(index, f"{entry} holds no *.yaml or *.yml manifest"))
        for path in files:
            try:
                text = substitute(path, read_text(path), values)
            except InventoryError as exc:
                problems.extend(exc.issues)
                continue
            try:
                name = path.relative_to(base_dir).as_posix()
            except ValueError:
                name = path.as_posix().lstrip("/")
            digest = hashlib.sha256(text.encode()).hexdigest()
            addons.append(Addon(path, name, text, digest))
    keys = [a.key for a in addons]
    for index, addon in enumerate(addons):
        if addon.key in keys[:index]:
            problems.append(
                InventoryIssue(str(addon.path), 0, 0, "", f"{addon.name} is listed twice")
            )
    if problems:
        raise InventoryError(problems)
    return tuple(addons)
