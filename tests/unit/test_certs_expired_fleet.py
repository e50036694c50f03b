"""Certificates that have already expired, in-process against the fleet: the API refuses every
client, ``status`` and ``certs check`` name the expired certificates and ``certs renew`` as the
fix, and ``certs renew`` brings the API back through SSH alone (lock files, kubeadm given the
cluster's configuration) one control plane at a time."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk

EVERY_CERT = (
    "admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client",
    "controller-manager.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server",
    "front-proxy-client", "scheduler.conf", "super-admin.conf",
)
LOCK_FILE = "/run/k8slk-ops.lock"


@pytest.fixture
def expired(fleet_factory: object, k8slk: K8slk) -> InProcessFleet:
    """One control plane and two workers; every leaf certificate of cp-1 expired."""
    fleet = fleet_factory(3, 1)  # type: ignore[operator]
    assert k8slk("bootstrap", fleet.inventory, "--json").code == 0
    fleet.expire_certs_now("cp-1", EVERY_CERT)
    return fleet


def test_status_names_the_expired_certificates_and_certs_renew(
    expired: InProcessFleet, k8slk: K8slk
) -> None:
    status = k8slk("status", expired.inventory, "--json")
    assert status.code == 1
    said = "\n".join(status.report["messages"])
    assert "x509: certificate has expired or is not yet valid" in said  # the API's refusal
    assert "certificates expired on cp-1" in said
    for name in ("apiserver", "admin.conf", "etcd-server"):
        assert name in said
    assert f"k8slk-ops certs renew {expired.inventory} --within-days 30 --yes" in said
    assert status.nodes["cp-1"]["details"]["certsDaysLeft"] < 0

    check = k8slk("certs", "check", expired.inventory, "--json")
    assert check.code == 1
    assert check.outcomes["cp-1"] == "failed"
    assert "certs renew" in "\n".join(check.report["messages"])


def test_renew_goes_through_ssh_alone_and_brings_the_api_back(
    expired: InProcessFleet, k8slk: K8slk
) -> None:
    # etcd refuses its expired healthcheck-client certificate: no snapshot can be taken first,
    # and the renewal goes on without one (tests/unit/test_snapshot_guard_fleet.py)
    run = k8slk("certs", "renew", expired.inventory, "--within-days", "30", "--yes", "--json")
    assert run.code == 0, run.why()
    said = "\n".join(run.report["messages"])
    assert "goes on through SSH alone" in said
    state = expired.certificates("cp-1")
    assert sorted(state.renewals) == sorted(EVERY_CERT)
    # kubeadm never fell back to its defaults: it had the cluster's own configuration.
    assert state.defaults == 0 and state.configs and all(c for c in state.configs)
    docs = {d["kind"]: d for d in yaml.safe_load_all(state.configs[0] or "")}
    assert docs["ClusterConfiguration"]["clusterName"] == "fleet"
    assert "bootstrapTokens" not in docs["InitConfiguration"]  # no secret in the file
    # The file is gone, and so are the lock files the run took.
    assert expired.file("cp-1", "/run/node/k8slk-ops-certs.yaml") is None
    assert expired.file("cp-1", LOCK_FILE) is None
    # The API serves the renewed certificate and answers again.
    served = run.nodes["cp-1"]["details"]["servingCertificate"]
    assert int(served["serial"], 16) == state.serials["apiserver"]
    assert run.nodes["cp-1"]["details"]["certsDaysLeft"] >= 364
    status = k8slk("status", expired.inventory, "--json")
    assert status.code == 0, status.why()
    assert all(n["details"]["ready"] for n in status.nodes.values())
    assert k8slk("certs", "check", expired.inventory, "--warn-days", "30").code == 0


def test_renew_without_the_api_refuses_while_another_run_holds_the_lock_files(
    expired: InProcessFleet, k8slk: K8slk
) -> None:
    holder = {"run_id": "20260101T000000-abcdef", "user": "ops", "host": "elsewhere",
              "pid": 4242, "command": "upgrade", "since": 0.0}
    expired.write_file("cp-1", LOCK_FILE, json.dumps(holder).encode())
    run = k8slk("certs", "renew", expired.inventory, "--within-days", "30", "--yes", "--json")
    assert run.code == 3, run.why()
    assert "20260101T000000-abcdef" in run.stderr
    assert expired.certificates("cp-1").renewals == []


def test_status_names_a_worker_whose_kubelet_certificate_expired_with_its_fix(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 1)  # type: ignore[operator]
    assert k8slk("bootstrap", fleet.inventory, "--json").code == 0
    worker = "w-1"
    fleet.expire_kubelet_cert(worker)
    status = k8slk("status", fleet.inventory, "--json")
    assert status.code == 1
    said = "\n".join(status.report["messages"])
    assert f"the kubelet client certificate of {worker} expired" in said
    assert f"`k8slk-ops remove-node {fleet.inventory} {worker} --yes`" in said
    assert f"`k8slk-ops add-node {fleet.inventory} --node {worker}`" in said
    assert "kubeletCertExpire" in status.nodes[worker]["details"]
    # A Ready node's kubelet certificate is not read (status stays one round trip per node).
    others = [n for n in status.nodes if n != worker]
    assert all("kubeletCertExpire" not in status.nodes[n]["details"] for n in others)


def test_two_control_planes_all_expired_are_renewed_first_then_restarted_in_turn(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 2)  # type: ignore[operator]
    assert k8slk("bootstrap", fleet.inventory, "--json").code == 0
    for cp in ("cp-1", "cp-2"):
        fleet.expire_certs_now(cp, EVERY_CERT)
    assert k8slk("status", fleet.inventory, "--json").code == 1
    run = k8slk("certs", "renew", fleet.inventory, "--within-days", "30", "--yes", "--json")
    assert run.code == 0, run.why()
    phases = re.findall(r"^\S+Z cp-\d (renew|restart) ", run.stderr, re.M)  # plain lines, in order
    renews = [i for i, phase in enumerate(phases) if phase == "renew"]
    restarts = [i for i, phase in enumerate(phases) if phase == "restart"]
    assert renews and restarts and max(renews) < min(restarts)  # every renewal, then restarts
    for cp in ("cp-1", "cp-2"):
        state = fleet.certificates(cp)
        assert sorted(state.renewals) == sorted(EVERY_CERT) and state.defaults == 0
        served = run.nodes[cp]["details"]["servingCertificate"]
        assert int(served["serial"], 16) == state.serials["apiserver"]
    assert k8slk("certs", "check", fleet.inventory, "--warn-days", "30").code == 0


def test_a_renewal_an_earlier_run_did_not_restart_is_restarted(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(2, 1)  # type: ignore[operator]
    assert k8slk("bootstrap", fleet.inventory, "--json").code == 0
    fleet.renew_certs("cp-1", "apiserver")  # kubeadm ran; nothing restarted
    state = fleet.certificates("cp-1")
    assert state.served != fleet.file("cp-1", "/var/node/etc/kubernetes/pki/apiserver.crt")
    run = k8slk("certs", "renew", fleet.inventory, "--within-days", "30", "--yes", "--json")
    assert run.code == 0, run.why()
    assert run.nodes["cp-1"]["details"]["renewed"] == []  # nothing due
    assert state.served == fleet.file("cp-1", "/var/node/etc/kubernetes/pki/apiserver.crt")
    assert run.outcomes["cp-1"] == "ok"
    again = k8slk("certs", "renew", fleet.inventory, "--within-days", "30", "--yes", "--json")
    assert again.outcomes["cp-1"] == "unchanged"
