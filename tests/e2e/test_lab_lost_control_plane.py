"""A control plane lost for good, on the lab with its real etcd (Debian's) and this machine's
kubectl: ``remove-node --force`` takes the dead member out of etcd, a blank machine at the same
address joins as a new member, and a machine replaced before anyone ran remove-node is refused
by add-node (and by kubeadm's own check-etcd, in the double's words) until the old member goes.
etcd's membership is read with Debian's etcdctl from the host, with the cluster's certificates.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli, wait_until
from tests.lab import manual
from tests.lab.lab import Lab

pytestmark = pytest.mark.lab


def etcd_members(lab: Lab, via: str = "cp-1") -> list[dict[str, Any]]:
    """``etcdctl member list`` from the host through ``via``'s member, as an operator would."""
    pki = lab.dir / "nodes" / via / "var-node" / "etc/kubernetes/pki/etcd"
    done = subprocess.run(
        ["etcdctl", f"--endpoints=https://{lab.node(via).address}:2379",
         f"--cacert={pki}/ca.crt", f"--cert={pki}/healthcheck-client.crt",
         f"--key={pki}/healthcheck-client.key", "--command-timeout=10s",
         "member", "list", "-w", "json"],
        capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3"), timeout=30,
        check=False)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["members"])


def members_answering(lab: Lab, via: str = "cp-1") -> dict[str, bool]:
    """Member name -> its client URL answers ``endpoint health`` (Debian's etcdctl)."""
    pki = lab.dir / "nodes" / via / "var-node" / "etc/kubernetes/pki/etcd"
    out = {}
    for m in etcd_members(lab, via):
        urls = m.get("clientURLs") or []
        done = subprocess.run(
            ["etcdctl", f"--endpoints={','.join(urls)}", f"--cacert={pki}/ca.crt",
             f"--cert={pki}/healthcheck-client.crt", f"--key={pki}/healthcheck-client.key",
             "--dial-timeout=3s", "--command-timeout=10s", "endpoint", "health"],
            capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3"), timeout=30,
            check=False) if urls else None
        out[m.get("name") or m["ID"]] = done is not None and done.returncode == 0
    return out


def host_kubectl_nodes(kubeconfig: str) -> dict[str, bool]:
    """Node -> Ready, from this machine's kubectl through the kubeconfig the tool wrote."""
    done = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "nodes", "-o", "json",
                           "--request-timeout=20s"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return {item["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True"
                                          for c in item["status"]["conditions"])
            for item in json.loads(done.stdout)["items"]}


def power_off_for_good(lab: Lab, name: str) -> None:
    """The machine goes down and does not come back (``no-boot``, then a power cycle)."""
    lab.fault(name, "no-boot")
    lab.power_cycle(name)
    wait_until(lambda: Lab.open(lab.dir).state.node(name).down, 60, f"{name} down")


def test_a_dead_control_plane_leaves_etcd_and_a_blank_machine_takes_its_place(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=4, control_planes=3, load_balancer=True)
    inv = str(lab.inventory_path)
    boot = cli("bootstrap", inv, "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    kubeconfig = boot.report["data"]["kubeconfig"]
    assert len(etcd_members(lab)) == 3

    power_off_for_good(lab, "cp-3")
    status = cli("etcd", "status", inv, "--json", log_file=tmp_path / "status.log")
    stale = [m for m in status.report["messages"] if m.startswith("stale etcd member")]
    assert len(stale) == 1 and "cp-3" in stale[0] and "--force --yes" in stale[0], stale

    gone = cli("remove-node", inv, "cp-3", "--force", "--yes", "--json",
               log_file=tmp_path / "remove.log")
    assert gone.code == 0, gone.stderr
    assert [r["name"] for r in gone.report["data"]["etcdMembersRemoved"]] == ["cp-3"]
    assert sorted(m["name"] for m in etcd_members(lab)) == ["cp-1", "cp-2"]
    assert "cp-3" not in host_kubectl_nodes(kubeconfig)

    lab.fault("cp-3", "replace")
    lab.rewrite_known_hosts()  # the operator checked the new machine's host key
    added = cli("add-node", inv, "--node", "cp-3", "--json", log_file=tmp_path / "add.log")
    assert added.code == 0, added.stderr
    assert members_answering(lab) == {"cp-1": True, "cp-2": True, "cp-3": True}
    assert host_kubectl_nodes(kubeconfig) == {"cp-1": True, "cp-2": True, "cp-3": True,
                                              "w-1": True}

    # Replaced before anyone ran remove-node: add-node refuses and names the command; kubeadm
    # itself (joined by hand) fails its check-etcd phase as the real one does.
    power_off_for_good(lab, "cp-2")
    lab.fault("cp-2", "replace")
    lab.rewrite_known_hosts()
    refused = cli("add-node", inv, "--node", "cp-2", "--json", log_file=tmp_path / "add2.log")
    assert refused.code == 1, refused.stderr
    said = {n["name"]: n["message"] for n in refused.report["nodes"]}["cp-1"]
    assert f"remove-node {inv} cp-2 --force --yes" in said, said
    assert len(etcd_members(lab)) == 3

    key = manual.in_kubelet(lab, "cp-1", "kubeadm init phase upload-certs --upload-certs")
    assert key.returncode == 0, key.stderr
    endpoint = f"{lab.state.balancer}:6443"
    manual.write_config(lab, "cp-2", manual.join_config(
        lab, "cp-2", manual.create_token(lab), manual.ca_pin(lab), endpoint,
        certificate_key=key.stdout.split()[-1]))
    manual.trigger(lab, "cp-2", "join")
    lines = lab.follow("cp-2", "error execution phase")
    assert any("[check-etcd] Checking that the etcd cluster is healthy" in ln for ln in lines)
    address = lab.node("cp-2").address
    assert lines[-1].endswith(
        f"error execution phase check-etcd: etcd cluster is not healthy: failed to dial "
        f"endpoint https://{address}:2379 with maintenance client: context deadline exceeded"
    ), lines[-3:]

    lab.fault("cp-2", "replace")  # kubeadm left its files: a blank machine again
    lab.rewrite_known_hosts()
    gone = cli("remove-node", inv, "cp-2", "--force", "--yes", "--json",
               log_file=tmp_path / "remove2.log")
    assert gone.code == 0, gone.stderr
    assert sorted(m["name"] for m in etcd_members(lab)) == ["cp-1", "cp-3"]
    added = cli("add-node", inv, "--node", "cp-2", "--json", log_file=tmp_path / "add3.log")
    assert added.code == 0, added.stderr
    assert members_answering(lab) == {"cp-1": True, "cp-2": True, "cp-3": True}
    assert host_kubectl_nodes(kubeconfig) == {"cp-1": True, "cp-2": True, "cp-3": True,
                                              "w-1": True}
