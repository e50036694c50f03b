"""``load_inventory``: pick the format of a file and load it.

YAML is the format; an old Ansible INI inventory is recognised by its ``.ini`` extension, or,
for a file without a YAML extension (Ansible's ``hosts``), by a first line like ``[masters]``.
"""

from __future__ import annotations

import os
from pathlib import Path

from k8slk_ops.inventory.ini_loader import load_ini_inventory, looks_like_ini
from k8slk_ops.inventory.model import Inventory
from k8slk_ops.inventory.source import read_text
from k8slk_ops.inventory.yaml_loader import load_yaml_inventory

YAML_SUFFIXES = (".yml", ".yaml")


def inventory_format(path: Path, text: str) -> str:
    """``"yaml"`` or ``"ini"``: the extension decides, else the content."""
    suffix = path.suffix.lower()
    if suffix == ".ini":
        return "ini"
    if suffix in YAML_SUFFIXES:
        return "yaml"
    return "ini" if looks_like_ini(text) else "yaml"


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Load and validate an inventory file; InventoryError lists every problem with its place."""
    source = Path(path)
    text = read_text(source)
    if inventory_format(source, text) == "ini":
        return load_ini_inventory(source, text)
    return load_yaml_inventory(source, text)
