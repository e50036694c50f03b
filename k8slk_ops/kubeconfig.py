"""Kubeconfig files: point admin.conf at the control plane endpoint, merge, write 0600.

Pure transformations on the YAML text plus one careful local write (temp file created 0600,
fsync, rename), because a kubeconfig holds the cluster's admin key.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


def _yaml() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    return y


def load(text: str) -> dict[str, Any]:
    data = _yaml().load(text)
    if not isinstance(data, dict):
        raise ValueError("not a kubeconfig: the top level is not a mapping")
    return data


def dump(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    _yaml().dump(data, buf)
    return buf.getvalue()


def point_at(text: str, endpoint: str) -> str:
    """admin.conf with every cluster's server set to ``https://ENDPOINT``."""
    data = load(text)
    for entry in data.get("clusters") or []:
        cluster = entry.get("cluster") or {}
        cluster["server"] = f"https://{endpoint}"
    return dump(data)


def merge(existing: str, new: str) -> str:
    """Merge ``new`` into ``existing``: entries of the same name are replaced, others kept."""
    empty: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    base = load(existing) if existing.strip() else empty
    add = load(new)
    for section in ("clusters", "users", "contexts"):
        kept = [e for e in base.get(section) or [] if e.get("name") not in
                {n.get("name") for n in add.get(section) or []}]
        base[section] = kept + list(add.get(section) or [])
    base["current-context"] = add.get("current-context", base.get("current-context"))
    base.setdefault("apiVersion", "v1")
    base.setdefault("kind", "Config")
    return dump(base)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
