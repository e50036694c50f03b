"""The inventory: the typed model of a cluster and the loaders of its files.

The only package that knows file formats. ``load_inventory`` reads YAML or an old Ansible INI
inventory and returns a frozen ``Inventory``, or raises ``InventoryError`` listing every
problem as ``file:line:column: field: message``.
"""

from k8slk_ops.inventory.errors import InventoryError, InventoryIssue
from k8slk_ops.inventory.loader import inventory_format, load_inventory
from k8slk_ops.inventory.model import (
    ClusterSpec,
    HostKeyPolicy,
    Inventory,
    KubeadmOverrides,
    NodeSpec,
    Role,
    SSHOverrides,
    SSHSettings,
)
from k8slk_ops.inventory.summary import summarize

__all__ = [
    "ClusterSpec",
    "HostKeyPolicy",
    "Inventory",
    "InventoryError",
    "InventoryIssue",
    "KubeadmOverrides",
    "NodeSpec",
    "Role",
    "SSHOverrides",
    "SSHSettings",
    "inventory_format",
    "load_inventory",
    "summarize",
]
