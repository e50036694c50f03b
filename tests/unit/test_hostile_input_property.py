"""Generated hostile inventories and playbooks: a clean refusal with file:line, never a crash.

Each example goes through ``k8slk-ops inventory check`` (in process) or the playbook loader.
The property: exit 0 or 2, no traceback, every error line names the file and a line, and the
memory the load takes stays far under 200 MB (measured with tracemalloc). Wall time is
measured and shown (``-s``), never asserted; the worst cases must be refused.
"""

from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from k8slk_ops.base.errors import UsageError
from k8slk_ops.cli.main import app
from k8slk_ops.engine.playbook import load_playbook
from k8slk_ops.steps import STEPS

MAX_BYTES = 200 * 1024 * 1024
GOOD_INVENTORY = (
    "cluster: {name: lab}\nnodes:\n  - {name: cp-1, address: 10.0.0.11, role: control-plane}\n"
)
GOOD_PLAYBOOK = "name: x\nstages:\n  - name: a\n    hosts: all\n    steps:\n      - preflight: {}\n"
slowest: list[float] = [0.0]


def _laughs(levels: int, width: int) -> str:
    lines = [f"l0: &l0 [{','.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


hostile_pieces = st.one_of(
    st.builds(_laughs, st.integers(2, 9), st.integers(2, 9)),
    st.integers(30, 3000).map(lambda n: "x: " + "[" * n + "]" * n + "\n"),
    st.integers(30, 3000).map(lambda n: "x: " + "{a: " * n + "}" * n + "\n"),
    st.integers(30, 300).map(lambda n: "".join(" " * i + "a:\n" for i in range(n))),
    st.sampled_from(
        [
            "\x00",
            "\x1b[2J",
            "a: \x01\n",
            "base: &b {user: root}\nssh:\n  <<: *b\n",
            "cluster: {name: lab}\ncluster: {name: again}\n",
            "nodes: *undefined\n",
            "? [a, b]\n: c\n",
            "!!python/object:os.system {}\n",
            "cluster: !!binary aGVsbG8=\n",
            "- - - - -\n",
            "'unterminated\n",
            "\t- tab\n",
            "%YAML 1.1\n---\na: 1\n...\n---\nb: 2\n",
        ]
    ),
    st.text(max_size=200),
)
ini_pieces = st.one_of(
    st.sampled_from(
        [
            "[workers]\nw[0:9999][0:9999]\n",
            "[workers]\nn[a:z][a:z][a:z][a:z]\n",
            "[workers]\nn[A:z]\n",
            "[workers]\nw[0:99999]\n",
            "[workers]\nw[9:0]\n",
            "[all:vars]\nansible_ssh_common_args='-o ProxyCommand=x\n",
            "[init-master]\ncp-1 ansible_host=10.0.0.11 ansible_port=x\n",
        ]
    ),
    st.text(alphabet="[]:0123456789abz=\n -", max_size=80).map(lambda t: "[workers]\n" + t),
)


def _measure(action: object) -> None:
    assert callable(action)
    tracemalloc.start()
    start = time.monotonic()
    try:
        action()
    finally:
        slowest[0] = max(slowest[0], time.monotonic() - start)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MAX_BYTES, f"{peak / 2**20:.0f} MiB"


def _check_inventory(path: Path) -> None:
    result = CliRunner().invoke(app, ["inventory", "check", str(path)])
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        for line in result.output.strip().splitlines():
            if line.startswith("... and "):
                continue
            assert re.match(rf"{re.escape(str(path))}:\d+(:\d+)?: ", line), line


def _check_playbook(path: Path) -> None:
    try:
        load_playbook(path, STEPS)
    except UsageError as exc:
        for line in str(exc).splitlines():
            assert re.match(rf"{re.escape(str(path))}:\d+(:\d+)?: ", line), line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(piece=hostile_pieces, where=st.sampled_from(["alone", "before", "after"]), raw=st.booleans())
def test_hostile_yaml_inventories_are_refused_cleanly(
    tmp_path: Path, piece: str, where: str, raw: bool
) -> None:
    text = {"alone": piece, "before": piece + GOOD_INVENTORY, "after": GOOD_INVENTORY + piece}[where]
    path = tmp_path / "inv.yml"
    data = text.encode("utf-8", "surrogatepass")
    path.write_bytes(data + (b"\xff\xfe" if raw else b""))
    _measure(lambda: _check_inventory(path))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(piece=ini_pieces)
def test_hostile_ini_inventories_are_refused_cleanly(tmp_path: Path, piece: str) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[init-master]\ncp-1 ansible_host=10.0.0.11\n[all:vars]\nclusterName=lab\n" + piece)
    _measure(lambda: _check_inventory(path))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(piece=hostile_pieces, where=st.sampled_from(["alone", "before", "after"]))
def test_hostile_playbooks_are_refused_cleanly(tmp_path: Path, piece: str, where: str) -> None:
    text = {"alone": piece, "before": piece + GOOD_PLAYBOOK, "after": GOOD_PLAYBOOK + piece}[where]
    path = tmp_path / "pb.yml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _measure(lambda: _check_playbook(path))


WORST_INVENTORIES = [
    ("inv.yml", _laughs(9, 9)),
    ("inv.yml", "x: " + "[" * 3000 + "]" * 3000 + "\n"),
    ("inv.yml", "nodes: *undefined\n"),
    ("hosts.ini", "[init-master]\ncp-1 ansible_host=10.0.0.11\n[workers]\nw[0:9999][0:9999]\n"),
    ("hosts.ini", "[init-master]\ncp-1 ansible_host=10.0.0.11\n[workers]\nn[a:z][a:z][a:z][a:z]\n"),
]


@pytest.mark.parametrize(("name", "text"), WORST_INVENTORIES)
def test_the_worst_hostile_inventories_are_refused_with_their_place(
    tmp_path: Path, name: str, text: str
) -> None:
    """The property above allows exit 0; these must be refused (exit 2) with file:line, within
    the memory bound. Wall time is shown with ``-s`` and never asserted."""
    path = tmp_path / name
    path.write_text(text)
    _measure(lambda: _check_refused(path))
    print(f"slowest hostile load so far: {slowest[0]:.2f}s")


def _check_refused(path: Path) -> None:
    result = CliRunner().invoke(app, ["inventory", "check", str(path)])
    assert result.exit_code == 2, (result.output, result.exception)
    _check_inventory(path)


# Nodes no one answers for: a loopback port nothing listens on refuses at once.
UNREACHABLE_INVENTORY = (
    "cluster: {name: lab}\nssh: {port: 1, connectTimeout: 2}\n"
    "nodes:\n  - {name: cp-1, address: 127.0.0.1, role: control-plane}\n"
)


def _dry_run(playbook: Path, inventory: Path, bad: Path, tmp: Path) -> None:
    """``run --dry-run``: refused with file:line (2), or run against nodes that cannot be
    reached (1 or 3) when the generated text happens to be valid; never a traceback."""
    result = CliRunner().invoke(
        app, ["run", str(playbook), str(inventory), "--dry-run"],
        env={"XDG_CACHE_HOME": str(tmp / "cache")},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1, 2, 3), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = [ln for ln in result.output.strip().splitlines()
                 if ln.startswith((str(bad), f"error: {bad}"))]
        assert lines, result.output
        for line in lines:
            assert re.match(rf"(error: )?{re.escape(str(bad))}:\d+(:\d+)?: ", line), line


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(piece=hostile_pieces, where=st.sampled_from(["alone", "before", "after"]),
       inventory_side=st.booleans())
def test_hostile_input_through_run_dry_run_is_refused_cleanly(
    tmp_path: Path, piece: str, where: str, inventory_side: bool
) -> None:
    good = GOOD_INVENTORY if inventory_side else GOOD_PLAYBOOK
    text = {"alone": piece, "before": piece + good, "after": good + piece}[where]
    playbook, inventory = tmp_path / "pb.yml", tmp_path / "inv.yml"
    playbook.write_text(GOOD_PLAYBOOK)
    inventory.write_text(UNREACHABLE_INVENTORY)
    bad = inventory if inventory_side else playbook
    bad.write_bytes(text.encode("utf-8", "surrogatepass"))
    _measure(lambda: _dry_run(playbook, inventory, bad, tmp_path))
