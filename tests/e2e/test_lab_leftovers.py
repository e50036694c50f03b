"""A failed init or join on the lab leaves no kubeadm config (token, certificate key) on its
node; the kubeadm-certs Secret the run uploaded is deleted when it ends; a token init never
made is no warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli

pytestmark = pytest.mark.lab
CONFIG = "/run/node/kubeadm.yaml"


def test_failed_init_leaves_no_config(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=2, control_planes=1)
    lab.fault("cp-1", "kubeadm-fail", "preflight")
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "run.log")
    assert run.code == 1, run.stderr
    assert {n["name"]: n["outcome"] for n in run.report["nodes"]}["cp-1"] == "failed"
    assert not lab.exists("cp-1", CONFIG)
    assert f"removed {CONFIG}" in run.log
    assert "token" not in " ".join(run.report["messages"]).lower(), run.report["messages"]


def test_failed_join_leaves_no_config_and_the_certificates_go(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=3, control_planes=2, settle=0.5)  # cp-1, cp-2, w-1
    lab.fault("w-1", "kubeadm-fail", "kubelet-start")
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "run.log")
    assert run.code == 1, run.stderr
    outcomes = {n["name"]: n["outcome"] for n in run.report["nodes"]}
    assert outcomes == {"cp-1": "ok", "cp-2": "ok", "w-1": "failed"}
    assert not lab.exists("w-1", CONFIG)
    secret = lab.kubelet_exec("cp-1", ["kubectl", "get", "secret", "kubeadm-certs", "-n",
                                       "kube-system"])
    assert "NotFound" in secret.stderr, secret.stdout
    assert "deleted the kubeadm-certs Secret" in run.log
