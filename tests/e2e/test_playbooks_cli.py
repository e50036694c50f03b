"""User playbooks (`run`), `inventory check` and the old Ansible INI inventories, end to end.

One module-scoped lab (1 control plane, 2 workers) is bootstrapped once; the tests then run
user playbooks against it and read it through an INI inventory written the way the old
automation wrote them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import cli

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def cluster(lab_factory_module: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    lab = lab_factory_module(nodes=3, control_planes=1)
    work = tmp_path_factory.mktemp("playbooks")
    boot = cli("bootstrap", str(lab.inventory_path), "--json", log_file=work / "boot.log")
    assert boot.code == 0, boot.stderr
    return {"lab": lab, "work": work, "inventory": lab.inventory_path}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_user_playbook_runs_commands_where_and_when_told(cluster: dict[str, Any]) -> None:
    lab, work = cluster["lab"], cluster["work"]
    book = write(work / "mark.yml", """\
name: mark-workers
description: leave a file on every worker, then list the nodes from the primary
stages:
  - name: mark
    hosts: workers
    when: {role: worker, ready: true}
    steps:
      - run: {command: "echo marked-by-playbook > /run/node/mark"}
  - name: nodes
    hosts: primary
    steps:
      - run: {command: [kubectl, get, nodes], in: kubelet}
""")
    run = cli("run", str(book), str(cluster["inventory"]), "--json", log_file=work / "mark.log")
    assert run.code == 0, run.stderr
    for worker in ("w-1", "w-2"):
        assert lab.read(worker, "/run/node/mark") == b"marked-by-playbook\n"
    assert not lab.exists("cp-1", "/run/node/mark")
    outcomes = {n["name"]: n["outcome"] for n in run.report["nodes"]}
    assert outcomes["w-1"] == outcomes["w-2"] == "ok"
    assert "w-2" in run.log and "Ready" in run.log  # kubectl's table reached the log


def test_argv_items_are_never_spliced_into_shell_code(cluster: dict[str, Any]) -> None:
    lab, work = cluster["lab"], cluster["work"]
    hostile = "x; touch /run/node/pwned"
    book = write(work / "quote.yml", f"""\
name: quoting
stages:
  - name: echo
    hosts: w-1
    steps:
      - run: {{command: [sh, -c, 'printf %s "$1" > /run/node/echoed', sh, "{hostile}"]}}
""")
    run = cli("run", str(book), str(cluster["inventory"]), log_file=work / "quote.log")
    assert run.code == 0, run.stderr
    assert lab.read("w-1", "/run/node/echoed").decode() == hostile
    assert not lab.exists("w-1", "/run/node/pwned")


def test_failing_command_names_the_node_and_the_rest_go_on(cluster: dict[str, Any]) -> None:
    lab, work = cluster["lab"], cluster["work"]
    lab.ssh("w-1", "touch /run/node/full")
    book = write(work / "fail.yml", """\
name: fail-on-one
stages:
  - name: check
    hosts: workers
    steps:
      - run: {command: "test ! -e /run/node/full || { echo no space left >&2; exit 3; }"}
""")
    run = cli("run", str(book), str(cluster["inventory"]), "--json", log_file=work / "fail.log")
    assert run.code == 1
    nodes = {n["name"]: n for n in run.report["nodes"]}
    assert nodes["w-1"]["outcome"] == "failed"
    assert nodes["w-1"]["phase"] == "run"
    assert "exited 3" in nodes["w-1"]["message"]
    assert any("no space left" in line for line in nodes["w-1"]["logTail"])
    assert nodes["w-2"]["outcome"] == "ok"


def test_playbook_typo_fails_with_file_and_line_before_connecting(
    cluster: dict[str, Any],
) -> None:
    work = cluster["work"]
    book = write(work / "typo.yml", """\
name: typo
stages:
  - name: join
    hosts: workers
    steps:
      - jion: {}
""")
    # An inventory whose nodes cannot be reached: any connection attempt would show as such.
    inventory = yaml.safe_load(cluster["inventory"].read_text())
    for node in inventory["nodes"]:
        node["address"] = "127.254.254.254"
    unreachable = write(work / "unreachable.yml", yaml.safe_dump(inventory))
    (work / "id_ed25519").write_bytes((cluster["inventory"].parent / "id_ed25519").read_bytes())
    (work / "known_hosts").write_text("")
    run = cli("run", str(book), str(unreachable), log_file=work / "typo.log")
    assert run.code == 2
    assert f"{book}:6" in run.stderr
    assert "jion" in run.stderr
    assert "connect" not in run.log


def test_ansible_ini_inventory_is_read_and_used(cluster: dict[str, Any]) -> None:
    lab, work = cluster["lab"], cluster["work"]
    yml = yaml.safe_load(cluster["inventory"].read_text())
    address = {n["name"]: n["address"] for n in yml["nodes"]}
    base = cluster["inventory"].parent
    ini = write(base / "hosts.ini", f"""\
[init-master]
cp-1 ansible_host={address["cp-1"]} ansible_user=root

[workers]
w-1 ansible_host={address["w-1"]}
w-2 ansible_host={address["w-2"]}

[all:vars]
ansible_ssh_private_key_file=id_ed25519
knownHosts=known_hosts
clusterName=lab
podSubnet={yml["cluster"]["podSubnet"]}
serviceSubnet={yml["cluster"]["serviceSubnet"]}
controlPlaneEndpoint={address["cp-1"]}
""")
    check = cli("inventory", "check", str(ini))
    assert check.code == 0, check.stderr
    assert "control planes: cp-1" in check.stdout
    assert "workers:        w-1, w-2" in check.stdout
    status = cli("status", str(ini), "--json", log_file=work / "ini-status.log")
    assert status.code == 0, status.stderr
    rows = {n["name"]: n["details"] for n in status.report["nodes"]}
    assert set(rows) == {"cp-1", "w-1", "w-2"}
    assert all(r["ready"] is True for r in rows.values())
    assert lab.nodes  # the lab is still the same cluster


def test_inventory_check_names_file_line_and_field(cluster: dict[str, Any]) -> None:
    work = cluster["work"]
    bad = write(work / "bad.yml", """\
cluster:
  name: lab
nodes:
  - {name: cp-1, address: 10.0.0.1, role: control-plane}
  - {name: w-1, adress: 10.0.0.2, role: worker}
""")
    run = cli("inventory", "check", str(bad))
    assert run.code == 2
    assert f"{bad}:5" in run.stderr
    assert "adress" in run.stderr


def test_kubeconfig_fails_cleanly_when_no_control_plane_answers(cluster: dict[str, Any]) -> None:
    lab, work = cluster["lab"], cluster["work"]
    out = work / "nothing.kubeconfig"
    lab.fault("cp-1", "ssh-stop")
    try:
        run = cli("kubeconfig", str(cluster["inventory"]), "-o", str(out),
                  log_file=work / "kc.log")
    finally:
        lab.fault("cp-1", "ssh-start")
    assert run.code == 3  # cannot start: nothing was attempted
    assert "unreachable: cp-1" in run.stderr
    assert not out.exists()
