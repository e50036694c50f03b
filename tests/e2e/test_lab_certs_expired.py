"""Every certificate of the control plane expired, on the lab: real etcd (which refuses an
expired certificate in its handshake), the API double (which serves its expired certificate and
refuses an expired client's) and this machine's real kubectl.

The lab's ``certs-expire --days 0`` re-issues cp-1's leaf certificates (same CA) to lapse at
once, and a reboot makes the control plane load them, as a cluster left off past its first
anniversary does. Then no client reaches the API; ``status`` and ``certs check`` name the
expired certificates and ``certs renew``; ``certs renew`` works through SSH alone and brings
the API back; a freshly fetched kubeconfig lists every node Ready with the real kubectl.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.e2e.helpers import cli, wait_until
from tests.lab.image import real_kubectls

pytestmark = pytest.mark.lab

EVERY_CERT = (
    "admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client",
    "controller-manager.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server",
    "front-proxy-client", "scheduler.conf", "super-admin.conf",
)
APISERVER_CRT = "/var/node/etc/kubernetes/pki/apiserver.crt"


def host_kubectl() -> str:
    found = real_kubectls()
    if not found:
        pytest.skip("no real kubectl on this host")
    return found[max(found)]


def ready(kubeconfig: Path) -> dict[str, str]:
    """node -> its Ready condition's status, as the real kubectl lists them ({} on failure).

    kubectl retries its discovery on an answer cut off (the balancer closing a connection no
    control plane took), 32 s a request by default: each request is bounded to 10 s, and a
    kubectl still trying after 90 s got nowhere as surely as one that gave up."""
    try:
        out = subprocess.run([host_kubectl(), "--kubeconfig", str(kubeconfig),
                              "--request-timeout", "10s", "get", "nodes", "-o", "json"],
                             capture_output=True, text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        return {}
    if out.returncode != 0:
        return {}
    return {i["metadata"]["name"]: next(c["status"] for c in i["status"]["conditions"]
                                        if c["type"] == "Ready")
            for i in json.loads(out.stdout)["items"]}


def test_every_certificate_expired_status_names_the_fix_and_certs_renew_brings_the_api_back(
    lab_factory: Any, tmp_path: Path
) -> None:
    host_kubectl()
    lab = lab_factory(nodes=3, control_planes=1)
    expire_and_renew(lab, tmp_path, ("cp-1",))


def test_three_control_planes_behind_the_balancer_all_expired_come_back(
    lab_factory: Any, tmp_path: Path
) -> None:
    """etcd's members refuse each other's expired peer certificates: certs renew renews every
    control plane first, then restarts them one at a time."""
    host_kubectl()
    lab = lab_factory(nodes=4, control_planes=3, settle=0.5, load_balancer=True)
    expire_and_renew(lab, tmp_path, ("cp-1", "cp-2", "cp-3"))


def expire_and_renew(lab: Any, tmp_path: Path, control_planes: tuple[str, ...]) -> None:
    inventory = str(lab.inventory_path)
    boot = cli("bootstrap", inventory, "--json", log_file=tmp_path / "boot.log", timeout=900)
    assert boot.code == 0, boot.stderr[-3000:]

    for cp in control_planes:
        lab.fault(cp, "certs-expire", "--days", "0", *EVERY_CERT)
    for cp in control_planes:
        lab.fault(cp, "reboot")
    lab.rewrite_known_hosts()
    old = tmp_path / "old.kubeconfig"
    old.write_bytes(lab.read("cp-1", "/var/node/etc/kubernetes/admin.conf"))
    assert ready(old) == {}  # the real kubectl gets nowhere either

    status = cli("status", inventory, "--json", log_file=tmp_path / "status.log")
    assert status.code == 1, status.stderr[-3000:]
    said = "\n".join(status.report["messages"])
    assert "the Kubernetes API does not answer" in said
    for cp in control_planes:
        line = next(m for m in status.report["messages"]
                    if m.startswith(f"certificates expired on {cp}: "))
        for name in EVERY_CERT:
            assert name in line
    fix = f"k8slk-ops certs renew {inventory} --within-days 30 --yes"
    assert fix in said

    check = cli("certs", "check", inventory, "--json", log_file=tmp_path / "check.log")
    assert check.code == 1
    assert fix in "\n".join(check.report["messages"])

    # etcd refuses its own expired certificates: no snapshot can be taken before the renewal,
    # and the run, which is the fix, goes on without one and says so.
    renew = cli("certs", "renew", inventory, "--within-days", "30", "--yes", "--json",
                log_file=tmp_path / "renew.log", timeout=1200)
    assert renew.code == 0, renew.stderr[-3000:]
    assert "Take `k8slk-ops etcd snapshot` once it is done" in renew.stderr
    assert any("goes on through SSH alone" in m for m in renew.report["messages"])
    for cp in control_planes:
        node = next(n for n in renew.report["nodes"] if n["name"] == cp)
        assert sorted(node["details"]["renewed"]) == sorted(EVERY_CERT)
        on_disk = x509.load_pem_x509_certificate(lab.read(cp, APISERVER_CRT))
        assert int(node["details"]["servingCertificate"]["serial"], 16) == on_disk.serial_number
        assert not lab.exists(cp, "/run/node/k8slk-ops-certs.yaml")
        assert not lab.exists(cp, "/run/k8slk-ops.lock")

    fresh = tmp_path / "fresh.kubeconfig"
    fetched = cli("kubeconfig", inventory, "--output", str(fresh), log_file=tmp_path / "kc.log")
    assert fetched.code == 0, fetched.stderr[-3000:]
    names = {n.name for n in lab.nodes}
    wait_until(lambda: ready(fresh) == dict.fromkeys(names, "True"), timeout=180,
               what="every node Ready through the real kubectl")

    checked = cli("certs", "check", inventory, "--warn-days", "30", "--json",
                  log_file=tmp_path / "check2.log")
    assert checked.code == 0, checked.stderr[-3000:]
    after = cli("status", inventory, "--json", log_file=tmp_path / "status2.log")
    assert after.code == 0, after.stderr[-3000:]
