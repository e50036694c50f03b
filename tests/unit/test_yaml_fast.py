"""libyaml's road through a YAML file gives what ruamel's round-trip loader gives: the same plain
values (type for type: ``yes`` a string, ``0755`` the int 755) and the same place for every
field path; what it cannot promise it hands to ruamel."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8slk_ops.inventory import yaml_fast, yaml_loader
from k8slk_ops.inventory.located import SpotLocator, YamlLocator

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not yaml_fast.available(), reason="PyYAML without libyaml")


def fast(text: str) -> tuple[Any, Any] | None:
    return yaml_fast.read_fast(
        text, yaml_loader.MAX_DEPTH, yaml_loader.MAX_VALUES, yaml_loader._number
    )


def reference(text: str) -> tuple[Any, YamlLocator]:
    tree = yaml_loader.parse_yaml(Path("f.yml"), text)
    return yaml_loader.plain(tree), YamlLocator("f.yml", tree)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (``1``, ``1.0`` and ``True`` differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def paths(value: Any, loc: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [loc, (*loc, "no-such-field"), (*loc, 99)]
    if isinstance(value, dict):
        for key, child in value.items():
            out += paths(child, (*loc, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += paths(child, (*loc, index))
    return out


def assert_same(text: str, *, must_be_fast: bool = False) -> None:
    got = fast(text)
    if got is None:
        assert not must_be_fast, "read by ruamel, not libyaml"
        return
    data, spot = got
    want, locator = reference(text)
    assert same(data, want), (data, want)
    mine = SpotLocator("f.yml", spot, lambda: locator)
    for loc in paths(want):
        assert mine.value(loc) == locator.value(loc), loc
        assert mine.key(loc) == locator.key(loc), loc


SCALARS = [
    "yes", "no", "on", "off", "y", "n", "true", "True", "TRUE", "false", "False", "FALSE",
    "tRue", "null", "Null", "NULL", "~", "nULL", "", "0755", "0o755", "0x1F", "0X1F", "0b101",
    "1_000", "-0", "+12", "-12", "12e3", "1.5", "1.", ".5", "-.5", "+.5e+3", "1_0.5", ".inf",
    "-.Inf", "+.INF", ".nan", ".NaN", ".NAN", "nan", "inf", "1:20", "190:20:30", "0.1.2",
    "127.0.0.1", "1e", "0x", "0o", "_", "__", "-", "=", "v1.31.2", "10.0.0.0/8", "a b",
    "x-y", "007", "08", "09.5", "1__0", "0x_1", "'quoted'", '"dq"', "2001-12-14",
]


@pytest.mark.parametrize("scalar", SCALARS)
def test_scalars_mean_what_ruamel_reads(scalar: str) -> None:
    text = f"plain: {scalar}\nlist: [{scalar}]\n{scalar}: key\nflow: {{k: {scalar}}}\n"
    if scalar.startswith(("'", '"')) or scalar in ("-", "="):
        text = f"plain: {scalar}\n"
    assert_same(text)


DOCUMENTS = [
    "a:\nb: 1\n",
    "a:\n- x\n-\n- - y\n  - z\nb: {c: [1, {d: e}], f: }\n",
    "a: |\n  literal\n   kept\nb: >\n  folded\n  text\n\nc: |-\n  x\n",
    "a: |\n\n  x\n    \n  y\n  \n\nb: >2-\n   x\n",
    "a: 'it''s'\nb: \"tab\\tand \\u00e9\"\nc: plain # comment\n",
    "cluster:\n  name: x\nnodes:\n  - {name: a, address: 10.0.0.1, role: control-plane}\n",
    "nodes:\n- name: a\n  labels: {zone: z1}\n- name: b\n",
    "1: one\n2.5: float\nfalse: yes\nnull: n\n",
    "a: 1\r\nb: [x,\r\n  y]\r\n",
    "a: b\rc: 'x\ry'\r",
    "a: \u00a0b\nc: d\u00a0e\n\u00a0f: \u3000\n",
    "a: {b: c,\n d: }\nx: [a: b, c]\ny: {? a}\n",
    "a: \u00e9t\u00e9\nb: \U0001f600\n",
    "   a: 1\n   b:\n     - c\n",
    "? a\n: b\n",
    "a: [\n]\nb: {\n}\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_documents_read_alike(text: str) -> None:
    assert_same(text, must_be_fast=True)


HANDED_TO_RUAMEL = [
    "",
    "# only a comment\n",
    "---\n",
    "~\n",
    "[1, 2]\n",
    "just text\n",
    "|\n#\n",
    "a: |#\n  x\n",
    "a: >#\n",
    "a: |\r\n  x\r\n",
    "a: |\n  \n    x\n",
    "a: >+\n   \n      x\n",
    "a: &x 1\nb: *x\n",
    "a: &x 1\n",
    "a: !!str 123\n",
    "a: !!int 5\n",
    "a: !custom x\n",
    "%YAML 1.1\n---\na: yes\n",
    "a: 1\n---\nb: 2\n",
    "a: 1\na: 2\n",
    "1: a\n01: b\n",
    "1: one\ntrue: two\n",
    "<<: {a: 1}\n",
    "? [a]\n: b\n",
    "a: 2001-12-14\n",
    "a: [1, 2\n",
    "a: b: c\n",
    "\ufeffa: 1\n",
    "a: \x85\n",
    "a: \x07\n",
    "a:\tb\n",
    "a: b\t# c\n",
]


@pytest.mark.parametrize("text", HANDED_TO_RUAMEL)
def test_what_might_differ_is_read_by_ruamel(text: str) -> None:
    assert fast(text) is None


@pytest.mark.parametrize("depth", range(26, 40))
def test_deep_nesting_at_the_limit(depth: int) -> None:
    block = "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + f"{'  ' * depth}v\n"
    for text in (block, "a: " + "[" * depth + "]" * depth + "\n"):
        got = fast(text)
        if got is not None:
            assert same(got[0], reference(text)[0])


def test_too_many_values_go_to_ruamel(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a: [" + ", ".join(["x"] * 50) + "]\n"
    assert yaml_fast.read_fast(text, 32, 1000, yaml_loader._number) is not None
    assert yaml_fast.read_fast(text, 32, 40, yaml_loader._number) is None


@pytest.mark.parametrize(
    "name",
    [
        "inventories/example.yml",
        "inventories/ha-example.yml",
        *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "playbooks").glob("*.yml"))),
    ],
)
def test_shipped_files_read_alike(name: str) -> None:
    assert_same((ROOT / name).read_text(), must_be_fast=True)


def test_a_big_fleet_inventory_reads_alike() -> None:
    lines = ["cluster:", "  name: fleet", "nodes:"]
    lines += [f"  - {{name: w-{i}, address: 127.1.0.{i % 250}, role: worker}}" for i in range(300)]
    assert_same("\n".join(lines) + "\n", must_be_fast=True)


_WORDS = st.sampled_from([*SCALARS, "a", "b-c", "x y", "é", "0", "1"])
_KEYS = st.sampled_from(["a", "b", "name", "0", "1", "true", "null", "0x1", "1.0", "on"])


def _render(value: Any, indent: int, flow: bool) -> str:
    """A YAML text for a generated value: block or flow, scalars plain when YAML allows."""
    if isinstance(value, dict):
        if flow or not value:
            inner = ", ".join(f"{k}: {_render(v, 0, True)}" for k, v in value.items())
            return "{" + inner + "}"
        pad = " " * indent
        out = []
        for k, v in value.items():
            child = _render(v, indent + 2, False)
            sep = "\n" if isinstance(v, dict | list) and v and not child.startswith(("{", "[")) else " "
            out.append(f"{pad}{k}:{sep}{child}")
        return "\n".join(out)
    if isinstance(value, list):
        if flow or not value:
            return "[" + ", ".join(_render(v, 0, True) for v in value) + "]"
        pad = " " * indent
        return "\n".join(f"{pad}- {_render(v, indent + 2, True)}" for v in value)
    text = str(value)
    if text.startswith(("'", '"')) or text in ("-", "=") or "," in text:
        return "'" + text.replace("'", "''") + "'"
    return text


_VALUES = st.recursive(
    _WORDS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=5), st.booleans())
def test_generated_documents_read_alike(value: dict[str, Any], flow: bool) -> None:
    text = _render(value, 0, flow) + "\n"
    try:
        reference(text)
    except yaml_loader.InventoryError:
        assert fast(text) is None  # ruamel refuses: so must the loader, in ruamel's words
        return
    assert_same(text)


_PIECES = [
    "a", "b", "0", "1", "x y", "-", " ", "  ", "\n", "\n  ", "\n- ", ": ", ":", "[", "]", "{",
    "}", ",", "'", '"', "#", " #", "?", "|", ">", "yes", "0755", "0x1", "1.5", "~", "null",
    "true", "\r\n", "é", "\\", "!", "&", "*", "%", "@", "`", "...", "---", "- ", "1_0", ".inf",
    "-1", ":x", "\t", "|-\n  ", ">+\n   ", "\n    ", "\n      ", "'x\n  y'", '"a\\"b"',
]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["", "k: ", "k:\n ", "k:\n  ", "- "]),
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=14),
)
def test_scrambled_texts_read_alike_or_go_to_ruamel(start: str, pieces: list[str]) -> None:
    """Texts made of YAML's punctuation (how ``|#`` and tabs were found to differ)."""
    text = start + "".join(pieces)
    try:
        reference(text)
    except yaml_loader.InventoryError:
        assert fast(text) is None
        return
    except AssertionError:
        return  # ruamel fails on a few texts of its own (a block header at the very end)
    assert_same(text)


def test_without_libyaml_every_file_takes_ruamels_road(monkeypatch: pytest.MonkeyPatch) -> None:
    path = ROOT / "inventories/example.yml"
    data, locator = yaml_loader.load_yaml_document(path)
    assert isinstance(locator, SpotLocator)
    monkeypatch.setattr(yaml_fast, "_CLoader", None)
    assert fast(path.read_text()) is None
    slow_data, slow_locator = yaml_loader.load_yaml_document(path)
    assert isinstance(slow_locator, YamlLocator)
    assert same(data, slow_data)
