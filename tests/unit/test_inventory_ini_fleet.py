"""An Ansible INI inventory whose workers are reached through child groups, against the
in-process fleet: the bootstrap plan joins every worker, and the host that is not a node is
named in the run's warnings, not silently dropped."""

from __future__ import annotations

from pathlib import Path

from tests.fleet import layout
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk


def ini_of(fleet: InProcessFleet) -> Path:
    """The fleet's inventory as an Ansible one: each worker in its own zone, the zones under
    ``[workers:children]``, the SSH settings in the vars of a group of every node."""
    config = fleet.config
    path = fleet.inventory.parent / "hosts.ini"
    path.write_text(
        f"""\
[init-master]
cp-1 ansible_host={fleet.address("cp-1")}

[east]
w-1 ansible_host={fleet.address("w-1")}
[west]
w-2 ansible_host={fleet.address("w-2")}
[bastion]
jump-1 ansible_host=192.0.2.1

[workers:children]
east
west
[k8s:children]
init-master
workers

[k8s:vars]
ansible_user=root
ansible_port={config.port}
ansible_ssh_private_key_file={layout.CLIENT_KEY}
knownHosts={layout.KNOWN_HOSTS}
hostKeyPolicy=strict
configFile=no-ssh-config

[all:vars]
clusterName=fleet
kubernetesVersion={config.kubernetes_version}
controlPlaneEndpoint={config.endpoint}
"""
    )
    return path


def test_the_bootstrap_plan_joins_workers_of_child_groups(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    hosts = ini_of(fleet)
    run = k8slk("plan", "bootstrap", hosts, "--json")
    assert run.code == 0, run.why()
    joins = {node for step, node in run.changes() if step == "join"}
    assert joins == {"w-1", "w-2"}
    assert ("init", "cp-1") in run.changes()
    warning = f"{hosts}:9:1: host 'jump-1' is not a node"
    assert warning in run.stderr and warning in run.log
    assert set(fleet.members()) == set()  # a plan changes nothing
