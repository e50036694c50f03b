"""The import contract, read from the source with ``ast`` (nothing is imported).

1. No cycle among k8slk_ops's modules, nor among its parts (a subpackage such as ``inventory/``
   or ``steps/`` counted as one): a cycle makes import order matter, lets a half-initialised
   module be seen, and ties layers that docs/architecture.md keeps apart. Every import counts,
   those under ``TYPE_CHECKING`` and inside functions too: they tie the code just the same.
2. The folders are the layers (``LAYERS``, top to bottom): a module imports from its own
   folder and from the layers below its own, never from one above; folders side by side in one
   layer import nothing of each other. Every module lives in a layer's folder.
3. ``kubeadm/`` and ``inventory/`` stay pure: they import nothing of k8slk_ops but each other
   and the plain helpers in ``PURE``, never the engine, the node layer or ``ssh/``.

Run by ``nox -s lint`` as well as with the unit tests. A failure names the modules of the
cycle, or the import, with its file and line.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "k8slk_ops"
# The layers, top to bottom (docs/architecture.md, "Layers"). ``steps/`` sits above the engine:
# a step imports what the engine hands it (``engine/context.py``, the contract in
# ``engine/step.py``), and the engine is handed the step registry by the command line.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli",),
    ("steps",),
    ("engine",),
    ("output",),
    ("drift",),
    ("cluster",),
    ("node",),
    ("ssh", "inventory"),
    ("kubeadm",),
    ("base",),
)
PURE_PARTS = ("kubeadm", "inventory")
# Modules outside the pure parts that the pure parts may import: plain data and text, no I/O.
PURE = frozenset({"base.errors", "base.hosts", "base.nextstep"})


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (or the package whose attribute is imported)
    where: str  # file:line


def modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every module of the package under ``root``."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(root: Path) -> list[Import]:
    """Every import of one of the package's modules by another, wherever it is written."""
    mods = modules(root)

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    found = []
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                         for a in node.names]
            else:
                continue
            for imported in names:
                target = known(imported) if imported.split(".")[0] == PACKAGE else None
                # A module's own packages are run before it: importing them is no edge.
                if target and target != name and not name.startswith(target + "."):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    found.append(Import(name, target, where))
    return found


def part(module: str) -> str:
    """The part a module belongs to: ``k8slk_ops.inventory.model`` -> ``k8slk_ops.inventory``."""
    return ".".join(module.split(".")[:2])


def cycles(edges: dict[str, set[str]]) -> Iterator[list[str]]:
    """One cycle through each strongly connected group of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    for group in groups:
        yield _path_around(min(group), group, edges)


def _path_around(start: str, group: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest way from ``start`` back to itself inside ``group``."""
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(edges.get(v, ()) & group):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                todo.append(w)
    raise AssertionError(f"no way back to {start} in {sorted(group)}")


def _layer_order() -> str:
    return " > ".join(" | ".join(f"{p}/" for p in layer) for layer in LAYERS[1:])


def layer_problems(root: Path, found: list[Import], skip: set[Import]) -> list[str]:
    """Modules in no layer's folder, and imports of a layer above (or beside) the importer's."""
    level = {f"{PACKAGE}.{p}": i for i, layer in enumerate(LAYERS) for p in layer}
    said = [f"{path.relative_to(root)}: {name} is in no layer: move it into the folder of its "
            f"layer ({_layer_order()}), or add a folder to LAYERS"
            for name, path in modules(root).items()
            if name != PACKAGE and part(name) not in level]
    for imp in found:
        a, b = part(imp.source), part(imp.target)
        if imp in skip or a == b or a not in level or b not in level:
            continue
        above, below = a.removeprefix(f"{PACKAGE}."), b.removeprefix(f"{PACKAGE}.")
        if level[a] == level[b]:
            said.append(f"{imp.where}: {imp.source} imports {imp.target}; {above}/ and {below}/ "
                        "sit side by side in one layer and import nothing of each other")
        elif level[a] > level[b]:
            said.append(f"{imp.where}: {imp.source} imports {imp.target}; {above}/ is below "
                        f"{below}/ (layers, top to bottom: {_layer_order()})")
    return said


def problems(root: Path) -> list[str]:
    """Everything that breaks the contract, in words."""
    found = imports(root)
    by_module: dict[str, set[str]] = {}
    by_part: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for imp in found:
        by_module.setdefault(imp.source, set()).add(imp.target)
        where.setdefault((imp.source, imp.target), imp.where)
        a, b = part(imp.source), part(imp.target)
        if a != b:
            by_part.setdefault(a, set()).add(b)
            where.setdefault((a, b), imp.where)
    said = []
    for kind, edges in (("modules", by_module), ("parts", by_part)):
        for cycle in cycles(edges):
            steps = [f"{a} -> {b} ({where[a, b]})" for a, b in itertools.pairwise(cycle)]
            said.append(f"import cycle among {kind}: " + "; ".join(steps))
    pure = {f"{PACKAGE}.{p}" for p in PURE_PARTS}
    allowed = {f"{PACKAGE}.{m}" for m in PURE}
    impure = set()
    for imp in found:
        if part(imp.source) in pure and not (part(imp.target) in pure or imp.target in allowed):
            impure.add(imp)
            said.append(f"{imp.where}: {imp.source} imports {imp.target}; kubeadm/ and "
                        f"inventory/ stay pure (they may import each other and {sorted(PURE)})")
    return said + layer_problems(root, found, impure)


def test_the_package_keeps_the_import_contract() -> None:
    assert problems(ROOT) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


LAYERS_SAID = ("cli/ > steps/ > engine/ > output/ > drift/ > cluster/ > node/ > ssh/ | "
               "inventory/ > kubeadm/ > base/")


def test_a_cycle_is_found_and_named_even_under_type_checking(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "",
        "engine/__init__.py": "",
        "engine/a.py": "from k8slk_ops.engine import b\n",
        "engine/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                       "    from k8slk_ops.engine.a import X\n",
    })
    assert problems(root) == [
        "import cycle among modules: k8slk_ops.engine.a -> k8slk_ops.engine.b "
        "(k8slk_ops/engine/a.py:1); k8slk_ops.engine.b -> k8slk_ops.engine.a "
        "(k8slk_ops/engine/b.py:3)",
    ]


def test_a_cycle_through_a_package_is_a_cycle_among_parts(tmp_path: Path) -> None:
    """inventory/check -> engine/playbook -> engine/yamlsource -> inventory/errors: no two
    modules import each other, but the parts do."""
    root = _tree(tmp_path, {
        "__init__.py": "",
        "inventory/__init__.py": "",
        "inventory/errors.py": "",
        "inventory/check.py": "def f():\n    from k8slk_ops.engine.playbook import Playbook\n",
        "engine/__init__.py": "",
        "engine/playbook.py": "from k8slk_ops.engine import yamlsource\n",
        "engine/yamlsource.py": "from ..inventory.errors import E\n",
    })
    said = problems(root)
    assert [s.split(":")[0] for s in said] == [
        "import cycle among parts", "k8slk_ops/inventory/check.py"]
    assert "k8slk_ops.inventory -> k8slk_ops.engine (k8slk_ops/inventory/check.py:2)" in said[0]


def test_a_pure_part_importing_the_node_layer_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "",
        "node/__init__.py": "",
        "node/linuxkit.py": "",
        "base/__init__.py": "",
        "base/errors.py": "",
        "kubeadm/__init__.py": "from k8slk_ops.base.errors import E\n",
        "kubeadm/render.py": "import k8slk_ops.node.linuxkit\n",
    })
    assert problems(root) == [
        "k8slk_ops/kubeadm/render.py:1: k8slk_ops.kubeadm.render imports "
        "k8slk_ops.node.linuxkit; kubeadm/ and inventory/ stay pure (they may import each "
        "other and ['base.errors', 'base.hosts', 'base.nextstep'])"
    ]


def test_an_import_up_the_layers_or_across_one_is_named_with_its_line(tmp_path: Path) -> None:
    """Down the layers is the way: the engine imports the cluster layer; the cluster layer
    importing the engine, or ssh/ importing inventory/ beside it, is refused."""
    root = _tree(tmp_path, {
        "__init__.py": "",
        "engine/__init__.py": "",
        "engine/context.py": "from k8slk_ops.cluster.lock import LocalLock\n",
        "cluster/__init__.py": "",
        "cluster/lock.py": "import os\n\ndef f():\n    from k8slk_ops.engine import context\n",
        "ssh/__init__.py": "",
        "ssh/pool.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                       "    from k8slk_ops.inventory.model import Inventory\n",
        "inventory/__init__.py": "",
        "inventory/model.py": "",
    })
    assert problems(root) == [
        "import cycle among modules: k8slk_ops.cluster.lock -> k8slk_ops.engine.context "
        "(k8slk_ops/cluster/lock.py:4); k8slk_ops.engine.context -> k8slk_ops.cluster.lock "
        "(k8slk_ops/engine/context.py:1)",
        "import cycle among parts: k8slk_ops.cluster -> k8slk_ops.engine "
        "(k8slk_ops/cluster/lock.py:4); k8slk_ops.engine -> k8slk_ops.cluster "
        "(k8slk_ops/engine/context.py:1)",
        "k8slk_ops/cluster/lock.py:4: k8slk_ops.cluster.lock imports k8slk_ops.engine.context; "
        f"cluster/ is below engine/ (layers, top to bottom: {LAYERS_SAID})",
        "k8slk_ops/ssh/pool.py:3: k8slk_ops.ssh.pool imports k8slk_ops.inventory.model; ssh/ "
        "and inventory/ sit side by side in one layer and import nothing of each other",
    ]


def test_a_module_outside_the_layers_folders_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "",
        "__main__.py": "from k8slk_ops.cli.console import main\n",
        "cli/__init__.py": "",
        "cli/console.py": "from k8slk_ops import helpers\n",
        "helpers.py": "",
        "plugins/__init__.py": "",
    })
    assert problems(root) == [
        f"k8slk_ops/{path}: k8slk_ops.{name} is in no layer: move it into the folder of its "
        f"layer ({LAYERS_SAID}), or add a folder to LAYERS"
        for path, name in (("helpers.py", "helpers"), ("plugins/__init__.py", "plugins"))
    ]


if __name__ == "__main__":  # python tests/unit/test_import_contract.py
    said = problems(ROOT)
    print("\n".join(said) or "import contract kept")
    raise SystemExit(1 if said else 0)
