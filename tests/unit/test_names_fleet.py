"""Inventories that name nodes by DNS name (old Ansible ones do): the tool connects by name and
gives kubeadm the IP the connection reached, or the node's nodeIP."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk

DOMAIN = "fleet.test"


@pytest.fixture
def named(fleet: InProcessFleet, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fleet's inventory with names for addresses (and endpoint), the names resolving to
    the nodes' loopback addresses in this process, known_hosts keyed by name."""
    addresses = {f"{n}.{DOMAIN}": fleet.address(n) for n in fleet.names}
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(addresses.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    text = fleet.inventory.read_text()
    known = fleet.inventory.parent / "known_hosts"
    lines = known.read_text().splitlines()
    for name, ip in addresses.items():
        lines += [line.replace(f"[{ip}]", f"[{name}]") for line in lines if f"[{ip}]" in line]
        text = re.sub(rf"address: {re.escape(ip)}\b", f"address: {name}", text)
        text = text.replace(f"controlPlaneEndpoint: {ip}:", f"controlPlaneEndpoint: {name}:")
    known.write_text("\n".join(lines) + "\n")
    path = fleet.inventory.parent / "named.yml"
    path.write_text(text)
    return path


def test_bootstrap_by_names_advertises_the_ips_reached(
    fleet: InProcessFleet, named: Path, k8slk: K8slk
) -> None:
    run = k8slk("bootstrap", named, "--json")
    assert run.code == 0, run.why()
    init = fleet.configs("cp-1")[-1].decode()
    assert f'advertiseAddress: "{fleet.address("cp-1")}"' in init
    assert f"certSANs:\n  - cp-1.{DOMAIN}\n" in init  # the endpoint's name is in the certificate
    assert f"controlPlaneEndpoint: cp-1.{DOMAIN}:6443" in init
    join = fleet.configs("w-1")[-1].decode()
    assert f'- name: node-ip\n    value: "{fleet.address("w-1")}"' in join
    assert "token" not in " ".join(run.report["messages"]).lower()


def test_node_ip_wins_over_the_address_reached(
    fleet: InProcessFleet, named: Path, k8slk: K8slk
) -> None:
    named.write_text(named.read_text().replace(
        f"address: w-1.{DOMAIN},", f"address: w-1.{DOMAIN}, nodeIP: 192.0.2.50,"
    ))
    run = k8slk("bootstrap", named, "--json")
    assert run.code == 0, run.why()
    join = fleet.configs("w-1")[-1].decode()
    assert '- name: node-ip\n    value: "192.0.2.50"' in join


def test_inventory_check_refuses_a_node_ip_that_cannot_work(tmp_path: Path, k8slk: K8slk) -> None:
    yml = tmp_path / "inv.yml"
    yml.write_text(
        "cluster: {name: lab, controlPlaneEndpoint: 'api.lab.test:6443'}\nnodes:\n"
        "  - {name: cp-1, address: cp-1.lab.test, role: control-plane, nodeIP: 10.0.0.1}\n"
        "  - {name: w-1, address: w-1.lab.test, role: worker, nodeIP: w-1.lab.test}\n"
        "  - {name: w-2, address: w-2.lab.test, role: worker, nodeIP: 10.0.0.1}\n"
    )
    run = k8slk("inventory", "check", yml)
    assert run.code == 2, run.why()
    assert f"{yml}:4:" in run.stderr and "nodeIP: must be an IP address" in run.stderr
    yml.write_text(yml.read_text().replace("nodeIP: w-1.lab.test", "nodeIP: 10.0.0.2"))
    run = k8slk("inventory", "check", yml)
    assert run.code == 2, run.why()
    assert f"{yml}:5:" in run.stderr and "duplicate node IP '10.0.0.1'" in run.stderr
    ini = tmp_path / "hosts"
    ini.write_text("[init-master]\ncp-1.lab.test nodeIP=10.0.0.300\n[all:vars]\nclusterName=lab\n")
    run = k8slk("inventory", "check", ini)
    assert run.code == 2 and f"{ini}:2:" in run.stderr and "nodeIP" in run.stderr, run.why()


def test_names_alone_pass_inventory_check(tmp_path: Path, k8slk: K8slk) -> None:
    ini = tmp_path / "hosts"
    ini.write_text("[init-master]\ncp-1.lab.test\n[workers]\nw-1.lab.test nodeIP=10.0.0.21\n"
                   "[all:vars]\nclusterName=lab\n")
    run = k8slk("inventory", "check", ini)
    assert run.code == 0, run.why()
