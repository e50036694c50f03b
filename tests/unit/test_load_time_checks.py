"""What would only fail (or silently never match) at run time is refused when the files load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from k8slk_ops.base.errors import UsageError
from k8slk_ops.engine.playbook import load_playbook
from k8slk_ops.inventory import InventoryError, load_inventory
from k8slk_ops.inventory.playbook_check import check_hosts
from k8slk_ops.steps import STEPS

INVENTORY = """\
cluster: {name: lab}
nodes:
  - {name: cp-1, address: 10.0.0.11, role: control-plane}
  - {name: w-1, address: 10.0.0.21, role: worker}
"""


def _playbook(tmp_path: Path, stage: str) -> Path:
    path = tmp_path / "pb.yml"
    path.write_text("name: x\nstages:\n  - name: a\n" + stage)
    return path


@pytest.mark.parametrize(
    ("when", "words"),
    [
        ("{ready: 'true'}", "ready must be true or false"),
        ("{member: 1}", "member must be true or false"),
        ("{kubeadmState: done}", "kubeadmState must be one of"),
        ("{role: master}", "role must be one of"),
        ("{kubeadmVersion: 1.31}", "kubeadmVersion must be a string"),
        ("{labels.zone: true}", "labels.zone must be a string"),
        ("{ready: [true, 'no']}", "ready must be true or false"),
    ],
)
def test_when_values_of_the_wrong_type_are_refused_with_their_line(
    tmp_path: Path, when: str, words: str
) -> None:
    path = _playbook(tmp_path, f"    when: {when}\n    steps:\n      - preflight: {{}}\n")
    with pytest.raises(UsageError) as info:
        load_playbook(path, STEPS)
    assert re.search(r"pb\.yml:4:\d+: ", str(info.value)), info.value
    assert words in str(info.value)


def test_when_values_of_the_right_type_load(tmp_path: Path) -> None:
    path = _playbook(
        tmp_path,
        "    when: {ready: false, kubeadmState: [waiting, failed], role: worker, labels.zone: a,"
        " kubeadmVersion: v1.31.3, name: w-1}\n    steps:\n      - preflight: {}\n",
    )
    assert load_playbook(path, STEPS).stages[0].when["ready"] is False


@pytest.mark.parametrize(
    "command",
    ["'echo a\\0b'", "[echo, \"a\\0b\"]"],
)
def test_a_nul_byte_in_a_run_command_is_refused_at_load(tmp_path: Path, command: str) -> None:
    path = _playbook(tmp_path, f"    steps:\n      - run: {{command: {command}}}\n")
    path.write_text(path.read_text().replace("'echo a\\0b'", '"echo a\\0b"'))
    with pytest.raises(UsageError, match=r"pb\.yml:\d+:\d+: .*NUL"):
        load_playbook(path, STEPS)


def test_patterns_naming_nodes_the_inventory_lacks_or_that_can_match_none(tmp_path: Path) -> None:
    inv_path = tmp_path / "inv.yml"
    inv_path.write_text(INVENTORY)
    inventory = load_inventory(inv_path)
    path = tmp_path / "pb.yml"
    path.write_text(
        "name: x\nstages:\n"
        "  - name: a\n    hosts: w-9\n    steps: [{preflight: {}}]\n"
        "  - name: b\n    hosts: w-1:&control-planes\n    steps: [{preflight: {}}]\n"
        "  - name: c\n    hosts: [workers:&absent, primary:!cp-1, cp-1:&selected]\n"
        "    steps: [{preflight: {}}]\n"
    )
    problems = check_hosts(load_playbook(path, STEPS), inventory)
    assert len(problems) == 2, problems
    assert re.search(r"pb\.yml:4:\d+: stages\[0\]\.hosts: .*'w-9'", problems[0])
    assert re.search(r"pb\.yml:7:\d+: stages\[1\]\.hosts: .*matches no node", problems[1])


def test_builtin_playbooks_pass_against_an_inventory_without_workers(tmp_path: Path) -> None:
    inv_path = tmp_path / "inv.yml"
    inv_path.write_text(INVENTORY.replace("  - {name: w-1, address: 10.0.0.21, role: worker}\n", ""))
    inventory = load_inventory(inv_path)
    playbooks = Path(__file__).resolve().parents[2] / "playbooks"
    for path in sorted(playbooks.glob("*.yml")):
        assert check_hosts(load_playbook(path, STEPS), inventory) == [], path


def test_an_identity_file_that_does_not_exist_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "cluster: {name: lab}\nssh:\n  identityFile: keys/missing\n"
        "nodes:\n  - {name: cp-1, address: 10.0.0.11, role: control-plane,"
        " ssh: {identityFile: other}}\n"
        "  - {name: w-1, address: 10.0.0.21, role: worker}\n"
    )
    (tmp_path / "other").write_text("key\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    [issue] = info.value.issues
    assert (issue.line, issue.field) == (3, "ssh.identityFile")
    assert "no such file" in issue.message and "keys/missing" in issue.message


def test_a_node_identity_file_that_does_not_exist_points_at_the_node(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "cluster: {name: lab}\n"
        "nodes:\n  - {name: cp-1, address: 10.0.0.11, role: control-plane,"
        " ssh: {identityFile: gone}}\n"
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    [issue] = info.value.issues
    assert (issue.line, issue.field) == (3, "nodes[0].ssh.identityFile")
