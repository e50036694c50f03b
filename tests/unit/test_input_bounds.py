"""Small hostile files cost little: bounded size, nodes, depth and host ranges, with a line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from k8slk_ops.base.errors import UsageError
from k8slk_ops.engine.playbook import load_playbook
from k8slk_ops.inventory import InventoryError, load_inventory, validate, yaml_loader
from k8slk_ops.inventory.ini_loader import expand_pattern
from k8slk_ops.steps import STEPS

GOOD = """\
cluster: {name: lab}
nodes:
  - {name: cp-1, address: 10.0.0.11, role: control-plane}
"""


def _error(path: Path) -> str:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    return str(info.value)


def _billion_laughs() -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_aliases_are_refused_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(_billion_laughs())
    message = _error(path)
    assert re.search(rf"{re.escape(str(path))}:2:\d+: .*alias", message), message


def test_a_merge_key_alias_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("base: &b {user: root}\nssh:\n  <<: *b\n")
    assert re.search(r"inv\.yml:3:\d+: .*alias", _error(path))


def test_aliases_in_group_vars_are_refused(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(_billion_laughs())
    path = tmp_path / "hosts.ini"
    path.write_text("[init-master]\ncp-1 ansible_host=10.0.0.11\n")
    assert re.search(r"all\.yml:2:\d+: .*alias", _error(path))


def test_aliases_in_a_playbook_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pb.yml"
    path.write_text(_billion_laughs())
    with pytest.raises(UsageError, match=r"pb\.yml:2:\d+: .*alias"):
        load_playbook(path, STEPS)


def test_deep_nesting_is_refused_fast_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("cluster:\n  x: " + "[" * 5000 + "]" * 5000 + "\n")
    message = _error(path)
    assert re.search(r"inv\.yml:2:\d+: .*nest", message), message
    assert "recursion" not in message


def test_deep_block_nesting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("".join(" " * i + "a:\n" for i in range(1000)))
    message = _error(path)
    assert re.search(r"inv\.yml:\d+:\d+: .*nest", message), message


def test_too_many_values_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_loader, "MAX_VALUES", 1000)
    path = tmp_path / "inv.yml"
    path.write_text("cluster:\n- " + "\n- ".join(["a"] * 1000) + "\n")
    message = _error(path)
    assert re.search(r"inv\.yml:\d+:\d+: .*more than [0-9,]+ values", message), message


def test_a_file_over_one_mebibyte_is_refused_with_a_line(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(GOOD + ("# padding\n" * 120_000))
    message = _error(path)
    assert re.search(r"inv\.yml:\d+: .*larger than 1 MiB", message), message


def test_a_link_to_a_device_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    os.symlink("/dev/zero", path)
    assert "not a regular file" in _error(path)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    os.mkfifo(path)
    assert "not a regular file" in _error(path)


def test_a_link_to_a_regular_file_is_read(tmp_path: Path) -> None:
    real = tmp_path / "real.yml"
    real.write_text(GOOD)
    link = tmp_path / "inv.yml"
    os.symlink(real, link)
    assert load_inventory(link).cluster.name == "lab"


def test_non_utf8_names_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_bytes(b"cluster:\n  name: a\xffb\n")
    assert re.search(r"inv\.yml:2:10: not UTF-8", _error(path))


def test_nul_names_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("cluster:\n  name: a\x00b\n")
    assert re.search(r"inv\.yml:2:10: .*NUL", _error(path))


def test_other_control_characters_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("cluster:\n  name: a\x01b\n")
    message = _error(path)
    assert re.search(r"inv\.yml:2:\d+: ", message), message
    assert "position" not in message


def test_the_product_of_host_ranges_is_bounded() -> None:
    with pytest.raises(ValueError, match="over 10000 hosts"):
        expand_pattern("w[0:9999][0:9999]")


def test_letter_ranges_are_bounded_and_within_one_case() -> None:
    assert expand_pattern("n[a:c]") == ["na", "nb", "nc"]
    with pytest.raises(ValueError, match="letters of one case"):
        expand_pattern("n[A:z]")
    with pytest.raises(ValueError, match="over 10000 hosts"):
        expand_pattern("n[a:z][a:z][a:z][a:z]")


def test_an_ini_file_cannot_declare_more_hosts_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[workers]\n" + "".join(f"w{i}-[0:999]\n" for i in range(12)))
    message = _error(path)
    assert re.search(r"hosts\.ini:\d+:1: .*more than 10000 hosts", message), message


def test_a_yaml_inventory_cannot_list_more_nodes_than_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate, "MAX_NODES", 100)
    path = tmp_path / "inv.yml"
    nodes = "".join(
        f"  - {{name: w{i}, address: 10.{i // 65536}.{i // 256 % 256}.{i % 256}, role: worker}}\n"
        for i in range(101)
    )
    path.write_text("cluster: {name: lab}\nnodes:\n" + nodes)
    message = _error(path)
    assert re.search(r"inv\.yml:2:1: nodes: .*at most 100", message), message
