"""A lab control plane carries the taints of the Kubernetes minor it claims.

kubeadm v1.21 taints its control planes ``node-role.kubernetes.io/master:NoSchedule`` only (the
``control-plane`` taint came beside it in 1.24 and alone from 1.25, KEP-2067): a manifest
written for v1.21 that tolerates the master taint alone runs on a real v1.21 control plane, so
it must run on the lab's. One small lab, bootstrapped by the tool.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli, wait_until

pytestmark = pytest.mark.lab

MASTER = "node-role.kubernetes.io/master"
AGENT = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/master, effect: NoSchedule}]
      containers: [{name: agent, image: docker.io/library/busybox:1.36}]
"""


def test_a_v1_21_control_plane_has_the_master_taint_and_runs_what_tolerates_it(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=1, control_planes=1, kubernetes_version="v1.21.14")
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert run.code == 0, run.stderr
    got = lab.kubelet_exec("cp-1", ["kubectl", "get", "node", "cp-1", "-o", "json"])
    assert got.returncode == 0, got.stderr
    node = json.loads(got.stdout)
    assert [t["key"] for t in node["spec"].get("taints", [])] == [MASTER]
    assert MASTER in node["metadata"]["labels"]
    applied = lab.kubelet_exec("cp-1", ["kubectl", "apply", "-f", "-"], input=AGENT)
    assert applied.returncode == 0, applied.stderr

    def agent_running() -> bool:
        out = lab.kubelet_exec("cp-1", ["kubectl", "get", "pods", "-n", "kube-system", "-l",
                                        "app=agent", "-o", "json"])
        return out.returncode == 0 and any(
            p["spec"].get("nodeName") == "cp-1" and p["status"].get("phase") == "Running"
            for p in json.loads(out.stdout)["items"])

    wait_until(agent_running, timeout=60, what="the agent's pod running on cp-1")
