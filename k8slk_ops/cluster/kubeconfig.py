"""Kubeconfig files: the operator's admin kubeconfig, built from what a node hands over.

A node's admin.conf is not trusted as it is: a compromised control plane could put an ``exec``
plugin, an ``auth-provider``, a ``proxy-url`` or ``insecure-skip-tls-verify`` in it, and the
operator's next kubectl would run or trust it. The kubeconfig written here is built from the
fields kubeadm itself writes (the CA data, the client certificate and key, names) plus the
endpoint from the inventory; anything else is refused with its place.

The operator's own file under ``--merge`` is theirs: its entries are kept as they are, only its
shape is checked. Writing is careful: temp file created 0600, fsync, rename; a symbolic link
is written through (its target is replaced atomically, the link stays).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from k8slk_ops.base import localfile

SECTIONS = ("clusters", "users", "contexts")
# What kubeadm writes in admin.conf, section by section: nothing else is carried over.
ALLOWED = {
    "clusters": ("cluster", ("certificate-authority-data", "server")),
    "users": ("user", ("client-certificate-data", "client-key-data")),
    "contexts": ("context", ("cluster", "user")),
}
TOP_LEVEL = ("apiVersion", "kind", "preferences", "current-context", *SECTIONS)
MAX_BYTES = 1 << 20


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used: said with the field at fault."""


def _yaml() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    return y


def load(text: str) -> dict[str, Any]:
    try:
        data = _yaml().load(text)
    except YAMLError as exc:
        raise KubeconfigError(f"not a kubeconfig: {exc}") from None
    if not isinstance(data, dict):
        raise KubeconfigError("not a kubeconfig: the top level is not a mapping")
    return data


def dump(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    _yaml().dump(data, buf)
    return buf.getvalue()


def point_at(text: str, endpoint: str, source: str = "admin.conf") -> str:
    """A kubeconfig from ``text`` (a node's admin.conf) with only the fields kubeadm writes,
    every cluster's server set to ``https://ENDPOINT``; KubeconfigError names anything else."""
    data = load(text)
    for key in data:
        if key not in TOP_LEVEL:
            raise _refused(source, str(key))
    if data.get("preferences") not in (None, {}):
        raise _refused(source, "preferences")
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    for section in SECTIONS:
        items = _list(source, data, section)
        out[section] = [_allowed_entry(source, section, i, e) for i, e in enumerate(items)]
    names = {s: {e["name"] for e in out[s]} for s in ("clusters", "users")}
    for index, entry in enumerate(out["contexts"]):
        for ref, section in (("cluster", "clusters"), ("user", "users")):
            if entry["context"].get(ref) not in names[section]:
                raise KubeconfigError(
                    f"{source}: contexts[{index}].context.{ref} names "
                    f"{entry['context'].get(ref)!r}, which is not among its {section}"
                )
    current = data.get("current-context")
    if current is not None and current not in {e["name"] for e in out["contexts"]}:
        raise KubeconfigError(f"{source}: current-context {current!r} is not among its contexts")
    if current is not None:
        out["current-context"] = current
    out["preferences"] = {}
    for entry in out["clusters"]:
        entry["cluster"]["server"] = f"https://{endpoint}"
    return dump(out)


def _refused(source: str, where: str) -> KubeconfigError:
    return KubeconfigError(
        f"{source}: {where} is not something kubeadm writes in admin.conf; refusing to hand it "
        "over (a kubeconfig can make kubectl run commands, use a proxy or skip TLS checks). "
        "Check the control plane: its admin.conf was changed"
    )


def _list(source: str, data: Mapping[str, Any], section: str) -> list[Any]:
    value = data.get(section)
    if value is None:
        return []
    if not isinstance(value, list):
        raise KubeconfigError(f"{source}: {section} must be a list")
    return value


def _allowed_entry(source: str, section: str, index: int, entry: object) -> dict[str, Any]:
    inner_key, fields = ALLOWED[section]
    where = f"{section}[{index}]"
    if not isinstance(entry, dict):
        raise KubeconfigError(f"{source}: {where} must be a mapping")
    for key in entry:
        if key not in ("name", inner_key):
            raise _refused(source, f"{where}.{key}")
    name, inner = entry.get("name"), entry.get(inner_key)
    if not isinstance(name, str) or not name:
        raise KubeconfigError(f"{source}: {where}.name must be a non-empty string")
    if not isinstance(inner, dict):
        raise KubeconfigError(f"{source}: {where}.{inner_key} must be a mapping")
    kept: dict[str, str] = {}
    for key, value in inner.items():
        if key not in fields:
            raise _refused(source, f"{where}.{inner_key}.{key}")
        if not isinstance(value, str):
            raise KubeconfigError(f"{source}: {where}.{inner_key}.{key} must be a string")
        kept[str(key)] = value
    return {"name": name, inner_key: kept}


def merge(
    existing: str, new: str, source: str = "the existing kubeconfig", cluster: str | None = None
) -> str:
    """Merge ``new`` into ``existing``: entries of the same name are replaced, others kept.

    With ``cluster`` (the inventory's cluster name) the new entries are first named per
    cluster (:func:`scoped`): kubeadm names every cluster's admin user ``kubernetes-admin``,
    so merging a second cluster would otherwise replace the first one's user, and the first
    cluster's context would then present the second cluster's key."""
    empty: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    try:
        base = load(existing) if existing.strip() else empty
    except KubeconfigError as exc:
        raise KubeconfigError(f"cannot merge into {source}: {exc}") from None
    add = load(new)
    if cluster is not None:
        add = scoped(add, cluster)
    for section in SECTIONS:
        entries = _named_entries(base, section, source)
        replaced = {e["name"] for e in _named_entries(add, section, "the new kubeconfig")}
        kept = [e for e in entries if e["name"] not in replaced]
        base[section] = kept + list(add.get(section) or [])
    base["current-context"] = add.get("current-context", base.get("current-context"))
    base.setdefault("apiVersion", "v1")
    base.setdefault("kind", "Config")
    return dump(base)


def scoped_name(name: str, cluster: str) -> str:
    """``kubernetes-admin`` -> ``kubernetes-admin@CLUSTER``; a name that already says the
    cluster (``kubernetes-admin@CLUSTER``, ``CLUSTER``) is kept."""
    return name if name == cluster or name.endswith(f"@{cluster}") else f"{name}@{cluster}"


def scoped(doc: dict[str, Any], cluster: str) -> dict[str, Any]:
    """``doc`` (a kubeconfig from :func:`point_at`) with its clusters, users and contexts
    named per cluster, the contexts' references and the current context following."""
    out = dict(doc)
    for section in SECTIONS:
        out[section] = [
            {**entry, "name": scoped_name(entry["name"], cluster)}
            for entry in _named_entries(doc, section, "the new kubeconfig")
        ]
    for entry in out["contexts"]:
        inner = dict(entry.get("context") or {})
        for ref in ("cluster", "user"):
            if isinstance(inner.get(ref), str):
                inner[ref] = scoped_name(inner[ref], cluster)
        entry["context"] = inner
    if isinstance(doc.get("current-context"), str):
        out["current-context"] = scoped_name(doc["current-context"], cluster)
    return out


def _named_entries(doc: Mapping[str, Any], section: str, source: str) -> list[dict[str, Any]]:
    value = doc.get(section)
    if value is None:
        return []
    if not isinstance(value, list):
        raise KubeconfigError(f"cannot merge into {source}: {section} is not a list")
    for index, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigError(
                f"cannot merge into {source}: {section}[{index}] is not a mapping with a name"
            )
    return value


def read_existing(path: Path) -> str | None:
    """The text of the kubeconfig at ``path`` (through a link), None when there is none.

    Only a regular file is read: a FIFO would block, a device never end."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KubeconfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise KubeconfigError(f"{path} is not a regular file; refusing to read or replace it")
        data = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise KubeconfigError(f"{path} is larger than 1 MiB; refusing to merge into it")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise KubeconfigError(f"{path} is not UTF-8 text") from None


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` atomically with mode 0600 from the first byte; return the file written.

    A symbolic link is written through (the operator's own ``~/.kube/config`` may be a link
    into their dotfiles): its target is replaced, the link stays. A target that is not a
    regular file (``/dev/null``, a FIFO) is refused. The writing is
    :mod:`k8slk_ops.base.localfile`'s, shared with every file this tool replaces."""
    try:
        return localfile.replace(path, text.encode(), 0o600, follow_link=True)
    except localfile.UnsafeTarget as exc:
        raise KubeconfigError(str(exc)) from None
