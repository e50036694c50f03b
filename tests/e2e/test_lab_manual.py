"""The image README's manual steps, by hand (plain ssh and ctr), on the lab: init the first
control plane, mint a token, compute the CA pin on the node, join the workers, and see every
node Ready. If this passes, the lab is a faithful place to test k8slk-ops in."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.lab import Lab
from tests.lab.fixture import require_doubles
from tests.lab.manual import apply_pod_network, ca_pin, create_token, in_kubelet, init, join

pytestmark = pytest.mark.lab

WAITING = "Waiting for /run/kubeadm-run to exist before running kubeadm commands"
COMPLETED = "kubeadm has completed... removing configuration"
PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ kubeadm\.out ")


def messages(lines: list[str]) -> list[str]:
    for line in lines:
        assert PREFIX.match(line), line
    return [PREFIX.sub("", line) for line in lines]


def pin_of(pem: bytes) -> str:
    spki = x509.load_pem_x509_certificate(pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def ready_nodes(lab: Lab) -> dict[str, bool]:
    out = in_kubelet(lab, "cp-1", "kubectl get nodes -o json")
    assert out.returncode == 0, out.stderr
    ready = {}
    for item in json.loads(out.stdout)["items"]:
        conds = {c["type"]: c["status"] for c in item["status"]["conditions"]}
        ready[item["metadata"]["name"]] = conds.get("Ready") == "True"
    return ready


def wait_all_ready(lab: Lab, names: set[str], timeout: float = 60) -> dict[str, bool]:
    """Node readiness can only be asked for (nothing streams it here): ask with backoff."""
    deadline, pause = time.monotonic() + timeout, 0.1
    while True:
        ready = ready_nodes(lab)
        if (set(ready) == names and all(ready.values())) or time.monotonic() > deadline:
            return ready
        time.sleep(pause)
        pause = min(pause * 2, 2)


def test_readme_manual_steps(lab_factory: Any) -> None:
    require_doubles()
    lab = lab_factory(nodes=3, control_planes=1)
    cp = lab.node("cp-1")

    # Init: config and trigger written from inside the kubelet container, the log followed.
    init_log = messages(init(lab))
    assert init_log[:3] == [
        WAITING,
        "sleeping a bit more to make sure file is written",
        "Found kubeadm flag init",
    ]
    assert "Your Kubernetes control-plane has initialized successfully!" in init_log
    assert init_log[-1] == COMPLETED
    assert not lab.exists("cp-1", "/run/node/kubeadm.yaml")  # removed: it held secrets
    assert lab.exists("cp-1", "/run/node/kubeadm-run")  # never removed
    assert lab.exists("cp-1", "/var/node/var/lib/kubelet/config.yaml")  # the marker

    # Join credentials, made on the node.
    token = create_token(lab)
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token)
    pin = ca_pin(lab)
    assert pin == pin_of(lab.read("cp-1", "/var/node/etc/kubernetes/pki/ca.crt"))
    assert any(f"--discovery-token-ca-cert-hash {pin}" in m for m in init_log)

    for worker in ("w-1", "w-2"):
        join(lab, worker, token, pin, f"{cp.address}:6443")
    for worker in ("w-1", "w-2"):
        log = messages(lab.follow(worker, "kubeadm has completed"))
        assert "Found kubeadm flag join" in log
        assert "This node has joined the cluster:" in log
        assert log[-1] == COMPLETED

    # The image README's next step: a pod network; without one kubelet stays NotReady.
    assert ready_nodes(lab) == {"cp-1": False, "w-1": False, "w-2": False}
    apply_pod_network(lab)
    ready = wait_all_ready(lab, {"cp-1", "w-1", "w-2"})
    assert ready == {"cp-1": True, "w-1": True, "w-2": True}
