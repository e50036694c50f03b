"""Proxies: a ProxyJump of the ssh config goes through the pool's jump host (the inventory's
known_hosts and policy apply to it); a ProxyCommand in INI ssh arguments is refused, not dropped."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from k8slk_ops.base.errors import UsageError
from k8slk_ops.engine.probe import targets_of
from k8slk_ops.inventory import InventoryError, load_inventory


def inventory(tmp_path: Path, config: str, extra: str = "") -> Path:
    (tmp_path / "ssh_config").write_text(textwrap.dedent(config))
    path = tmp_path / "inv.yml"
    path.write_text(textwrap.dedent(f"""\
        cluster: {{name: lab}}
        ssh: {{configFile: {tmp_path / 'ssh_config'}{extra}}}
        nodes:
          - {{name: cp-1, address: 10.9.0.11, role: control-plane}}
          - {{name: w-1, address: 10.8.0.21, role: worker}}
        """))
    return path


def test_a_proxy_jump_of_the_ssh_config_becomes_the_targets_jump_host(tmp_path: Path) -> None:
    path = inventory(tmp_path, """\
        Host 10.9.*
            ProxyJump ops@bastion.example:2222
        """)
    targets = targets_of(load_inventory(path))
    assert targets["cp-1"].jump_host == "ops@bastion.example:2222"
    assert targets["w-1"].jump_host is None


def test_the_inventory_jump_host_wins_over_the_ssh_config(tmp_path: Path) -> None:
    path = inventory(tmp_path, "Host *\n    ProxyJump elsewhere\n", ", jumpHost: 'j@gate:22'")
    assert {t.jump_host for t in targets_of(load_inventory(path)).values()} == {"j@gate:22"}


def test_a_proxy_jump_of_several_hops_is_refused(tmp_path: Path) -> None:
    path = inventory(tmp_path, "Host *\n    ProxyJump a,b\n")
    with pytest.raises(UsageError, match="several hops"):
        targets_of(load_inventory(path))


def test_a_proxy_command_in_ini_ssh_arguments_is_refused_with_its_line(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "[init-master]\ncp-1 ansible_host=10.0.0.11\n[all:vars]\nclusterName=lab\n"
        "ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p bastion\"'\n"
    )
    with pytest.raises(InventoryError) as caught:
        load_inventory(hosts)
    text = str(caught.value)
    assert f"{hosts}:5:" in text and "ProxyCommand is not supported" in text
