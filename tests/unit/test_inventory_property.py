"""Whatever a file holds, loading it yields an Inventory or an InventoryError, nothing else."""

from __future__ import annotations

import copy
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from k8slk_ops.inventory import Inventory, InventoryError, load_inventory

FIELDS = [
    "cluster",
    "ssh",
    "nodes",
    "name",
    "address",
    "role",
    "labels",
    "kubernetesVersion",
    "controlPlaneEndpoint",
    "podSubnet",
    "serviceSubnet",
    "dnsDomain",
    "certSANs",
    "kubeadm",
    "ClusterConfiguration",
    "user",
    "port",
    "identityFile",
    "knownHosts",
    "hostKeyPolicy",
    "hostKeyFingerprint",
    "jumpHost",
    "connectTimeout",
    "keepaliveInterval",
    "configFile",
]
SCALAR_TEXT = [
    "control-plane",
    "worker",
    "pinned",
    "strict",
    "accept-new",
    "v1.31.3",
    "10.0.0.11",
    "10.244.0.0/16",
    "::1",
    "[::1]:6443",
    "lb:6443",
    "~/x",
    "",
    "SHA256:",
    "a@b:1",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False),
    st.sampled_from(SCALAR_TEXT),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=25,
)
documents = st.dictionaries(keys, values, max_size=5)

BASE: dict[str, Any] = {
    "cluster": {"name": "linuxkit", "podSubnet": "10.244.0.0/16"},
    "ssh": {"user": "root", "port": 22},
    "nodes": [
        {"name": "cp-1", "address": "10.0.0.11", "role": "control-plane"},
        {"name": "w-1", "address": "10.0.0.21", "role": "worker", "ssh": {"port": 2222}},
    ],
}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


BASE_PATHS = [p for p in _paths(BASE) if p]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """The valid BASE with a few places replaced by arbitrary values."""
    doc = copy.deepcopy(BASE)
    for path in draw(st.lists(st.sampled_from(BASE_PATHS), min_size=1, max_size=3)):
        parent: Any = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue
    return doc


def dump(doc: object) -> str:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    return out.getvalue()


def load_text(text: str, name: str) -> Inventory | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        try:
            return load_inventory(path)
        except InventoryError as exc:
            assert exc.issues, "an InventoryError carries at least one issue"
            for issue in exc.issues:
                assert issue.file.startswith(tmp)
                assert issue.line >= 0 and issue.column >= 0
                assert str(issue).startswith(issue.file)
            return None


SETTINGS = settings(
    max_examples=int(os.environ.get("INVENTORY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(documents)
def test_arbitrary_mappings_never_crash_the_loader(doc: dict[str, Any]) -> None:
    load_text(dump(doc), "inv.yml")


@SETTINGS
@given(mutated())
def test_near_valid_inventories_never_crash_the_loader(doc: dict[str, Any]) -> None:
    result = load_text(dump(doc), "inv.yml")
    if result is not None:
        assert result.control_planes
        assert result.endpoint.rsplit(":", 1)[1].isdigit()


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_either_loader(text: str) -> None:
    load_text(text, "inv.yml")
    load_text(text, "hosts.ini")


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["[init-master]", "[masters]", "[workers]", "[all:vars]", "[x:y]"]),
            st.from_regex(
                r"[a-z0-9.\-\[\]:]{1,12}( [a-z_]{1,12}=[^\s]{0,10}){0,3}", fullmatch=True
            ),
            st.from_regex(r"[a-zA-Z_]{1,15}=[^\n]{0,20}", fullmatch=True),
        ),
        max_size=12,
    )
)
def test_ini_like_lines_never_crash_the_ini_loader(lines: list[str]) -> None:
    load_text("\n".join(lines) + "\n", "hosts.ini")


def test_the_base_document_is_valid() -> None:
    inv = load_text(dump(BASE), "inv.yml")
    assert inv is not None and inv.ssh_for("w-1").port == 2222
