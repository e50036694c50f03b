"""The upgrade gate on the lab's real etcd (Debian's 3.4.23 on three control planes): it reads
each member's running version through one member's ``etcdctl --cluster`` and lets the roll go
on (kubeadm 1.31 upgrades a stacked 3.4 to 3.5); the mirror pod, crictl and etcd itself name
that same etcd before and after the roll; a stopped member is named through the same view.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli, wait_until
from tests.e2e.test_upgrade import NEW, answering, prepared

pytestmark = pytest.mark.lab

LAB_ETCD = "registry.k8s.io/etcd:3.4.23-0"
GATE_ONLY = """name: etcd-gate
description: the etcd health gate alone
requiresCluster: true
stages:
  - name: gate
    hosts: primary
    steps:
      - etcd-healthy: {}
"""


def etcd_images(lab: Any, name: str) -> tuple[str, str]:
    """(crictl's image of the node's etcd container, its mirror pod's image)."""
    ps = lab.kubelet_exec(name, ["crictl", "ps", "--name", "etcd", "-o", "json"])
    assert ps.returncode == 0, ps.stderr
    (container,) = json.loads(ps.stdout)["containers"]
    pod = lab.kubelet_exec(name, ["kubectl", "get", "pod", "-n", "kube-system", f"etcd-{name}",
                                  "-o", "jsonpath={.spec.containers[0].image}"])
    assert pod.returncode == 0, pod.stderr
    return container["image"]["image"], pod.stdout.strip()


def test_the_gate_reads_the_real_etcds_version_and_the_roll_goes_on(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab, inventory = prepared(lab_factory, tmp_path, nodes=3, control_planes=3)
    assert {n: etcd_images(lab, n) for n in ("cp-1", "cp-2", "cp-3")} == {
        n: (LAB_ETCD, LAB_ETCD) for n in ("cp-1", "cp-2", "cp-3")}

    run = cli("upgrade", str(inventory), "--yes", log_file=tmp_path / "up.log")
    assert run.code == 0, run.stdout + run.stderr
    read = ("etcd 3.4.23 on cp-1, cp-2, cp-3; kubeadm 1.31 deploys 3.5.15 "
            "(read through cp-1 (--cluster))")
    assert read in run.log, run.log[-3000:]
    assert {n: v["version"] for n, v in answering(lab).items()} == {
        n: NEW for n in ("cp-1", "cp-2", "cp-3")}
    assert {n: etcd_images(lab, n) for n in ("cp-1", "cp-2", "cp-3")} == {
        n: (LAB_ETCD, LAB_ETCD) for n in ("cp-1", "cp-2", "cp-3")}

    book = tmp_path / "gate.yml"
    book.write_text(GATE_ONLY)
    lab.fault("cp-3", "etcd-stop")
    wait_until(lambda: not lab.kubelet_exec("cp-3", ["crictl", "ps", "--name", "etcd", "-q"])
               .stdout.strip(), 30, "cp-3's etcd to stop")
    gate = cli("run", str(book), str(inventory), "--json", log_file=tmp_path / "gate.log")
    assert gate.code == 1
    message = {n["name"]: n["message"] for n in json.loads(gate.stdout)["nodes"]}["cp-1"]
    address = lab.node("cp-3").address
    assert f"cp-3: did not answer endpoint status at https://{address}:2379" in message, message
    assert "cp-1:" not in message and "cp-2:" not in message
