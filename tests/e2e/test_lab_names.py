"""An inventory that names the lab's nodes by DNS name, as old Ansible inventories do: the names
resolve through /etc/hosts entries this test adds and removes; kubeadm is given the IPs the
connections reached, the token minted by init is the only one, and cleanup says nothing."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli, consumed_configs, kubectl_nodes

pytestmark = pytest.mark.lab
HOSTS = Path("/etc/hosts")
DOMAIN = "names.lab.test"


@contextlib.contextmanager
def hosts_entries(entries: dict[str, str]) -> Iterator[None]:
    """``name -> address`` lines in /etc/hosts for the test's duration (written in place: the
    file may be a bind mount), each tagged so that only they are taken out again."""
    tag = f"# k8slk-ops test {DOMAIN}"
    with HOSTS.open("a") as f:
        f.write("".join(f"{addr} {name} {tag}\n" for name, addr in entries.items()))
    try:
        yield
    finally:
        kept = [line for line in HOSTS.read_text().splitlines(keepends=True) if tag not in line]
        HOSTS.write_text("".join(kept))


def test_bootstrap_an_inventory_of_names(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=3, control_planes=1, settle=0.5)
    text = lab.inventory_path.read_text()
    addresses = dict(re.findall(r"name: ([\w-]+), address: ([\d.]+)", text))
    names = {node: f"{node}.{DOMAIN}" for node in addresses}
    known = lab.inventory_path.parent / "known_hosts"
    lines = known.read_text().splitlines()
    for node, ip in addresses.items():
        text = text.replace(f"address: {ip},", f"address: {names[node]},")
        lines += [names[node] + line[len(ip):] for line in lines if line.startswith(ip + " ")]
    known.write_text("\n".join(lines) + "\n")
    named = lab.inventory_path.parent / "named.yml"
    named.write_text(text)

    with hosts_entries({names[n]: ip for n, ip in addresses.items()}):
        check = cli("inventory", "check", str(named))
        assert check.code == 0, check.stderr
        run = cli("bootstrap", str(named), "--json", log_file=tmp_path / "boot.log")
    assert run.code == 0, run.stderr
    assert set(kubectl_nodes(lab)) == set(addresses)
    configs = consumed_configs(lab)
    init = next(d for d in configs if d.get("kind") == "InitConfiguration")
    assert init["localAPIEndpoint"]["advertiseAddress"] == addresses["cp-1"]
    joins = {d["nodeRegistration"]["name"]: d for d in configs if d.get("kind") == "JoinConfiguration"}
    for node in ("w-1", "w-2"):
        args = {a["name"]: a["value"] for a in joins[node]["nodeRegistration"]["kubeletExtraArgs"]}
        assert args["node-ip"] == addresses[node]
    assert "token" not in " ".join(run.report["messages"]).lower()
    assert DOMAIN not in HOSTS.read_text()  # the entries went again
