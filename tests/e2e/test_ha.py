"""Highly available control planes: 3 control planes and 2 workers, end to end on the lab."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import cli, consumed_configs, kubectl_nodes, log_times

pytestmark = pytest.mark.lab


def test_three_control_planes_join_one_at_a_time(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=5, control_planes=3, settle=0.5)
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    inventory["cluster"]["certSANs"] = ["k8s.lab.example"]
    ha = lab.dir / "ha.yml"
    ha.write_text(yaml.safe_dump(inventory))

    run = cli("bootstrap", str(ha), "--json", log_file=tmp_path / "run.log")
    assert run.code == 0, run.stderr

    nodes = kubectl_nodes(lab)
    assert set(nodes) == {"cp-1", "cp-2", "cp-3", "w-1", "w-2"}
    assert all(n["ready"] for n in nodes.values())
    for cp in ("cp-1", "cp-2", "cp-3"):
        labels = nodes[cp]["raw"]["metadata"]["labels"]
        assert "node-role.kubernetes.io/control-plane" in labels

    joins = {
        d["nodeRegistration"]["name"]: d
        for d in consumed_configs(lab)
        if d.get("kind") == "JoinConfiguration"
    }
    for cp in ("cp-2", "cp-3"):
        assert len(joins[cp]["controlPlane"]["certificateKey"]) == 64
    assert "controlPlane" not in joins["w-1"]

    # control planes one at a time: their kubeadm runs do not overlap
    spans = sorted((log_times(lab, cp)["start"], log_times(lab, cp)["end"]) for cp in ("cp-2", "cp-3"))
    assert spans[0][1] <= spans[1][0]

    cert = lab.kubelet_exec(
        "cp-1", ["openssl", "x509", "-noout", "-text", "-in", "/etc/kubernetes/pki/apiserver.crt"]
    )
    assert "k8s.lab.example" in cert.stdout

    # Removing control planes: the run works through one that stays; etcd quorum is guarded.
    dry = cli("remove-node", str(ha), "cp-1", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "kubectl drain cp-1 (on cp-2)" in dry.stdout + dry.stderr

    carrier = cli("remove-node", str(ha), "cp-1", "--yes", "--json", log_file=tmp_path / "rm0.log")
    assert carrier.code == 1
    assert "carries the controlPlaneEndpoint" in carrier.stdout + carrier.stderr
    assert "cp-1" in kubectl_nodes(lab)

    both = cli("remove-node", str(ha), "cp-2", "cp-3", "--yes", "--json", log_file=tmp_path / "rm2.log")
    assert both.code == 1
    assert "quorum" in both.stdout + both.stderr
    assert {"cp-2", "cp-3"} <= set(kubectl_nodes(lab))

    one = cli("remove-node", str(ha), "cp-3", "--yes", "--json", log_file=tmp_path / "rm1.log")
    assert one.code == 0, one.stderr
    assert set(kubectl_nodes(lab)) == {"cp-1", "cp-2", "w-1", "w-2"}
    assert not lab.exists("cp-3", "/var/node/etc/kubernetes/manifests/kube-apiserver.yaml")


def test_behind_a_load_balancer_the_first_control_plane_can_go(
    lab_factory: Any, tmp_path: Path
) -> None:
    """With the endpoint on a load balancer, cp-1 is a control plane like the others: removing
    it works through cp-2, and the cluster (one etcd, replicated) carries on without it."""
    lab = lab_factory(nodes=4, control_planes=3, settle=0.5, load_balancer=True)
    endpoint = yaml.safe_load(lab.inventory_path.read_text())["cluster"]["controlPlaneEndpoint"]
    assert endpoint.endswith(".250:6443")
    boot = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr

    run = cli("remove-node", str(lab.inventory_path), "cp-1", "--yes", "--json",
              log_file=tmp_path / "rm.log")
    assert run.code == 0, run.stderr
    assert "kubectl drain cp-1 (on cp-2)" in run.log
    assert not lab.exists("cp-1", "/var/node/etc/kubernetes/admin.conf")
    nodes = kubectl_nodes(lab, via="cp-3")
    assert set(nodes) == {"cp-2", "cp-3", "w-1"}
    assert all(n["ready"] for n in nodes.values())

    status = cli("status", str(lab.inventory_path), "--json", log_file=tmp_path / "st.log")
    rows = {n["name"]: n["details"] for n in status.report["nodes"]}
    assert rows["cp-2"]["ready"] is True and rows["cp-1"]["registered"] is False
