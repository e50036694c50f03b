"""certs check and certs renew on the lab, whose kubeadm double reads and renews the real files
and whose kubelet restarts the API (which loads its serving certificate at start) when its
manifest leaves /etc/kubernetes/manifests and comes back; every run writes --metrics-file.

One module-scoped cluster of two control planes. The lab's ``certs-expire`` knob re-issues some
certificates (same CA) to expire in 9 days.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from k8slk_ops.cluster import pkiarchive
from tests.e2e.helpers import cli

pytestmark = pytest.mark.lab

APISERVER_CRT = "/var/node/etc/kubernetes/pki/apiserver.crt"
EVERY_CERT = {
    "admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client",
    "controller-manager.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server",
    "front-proxy-client", "scheduler.conf", "super-admin.conf",
}
EXPIRING = {"cp-1": ("apiserver", "admin.conf"), "cp-2": ("etcd-peer", "front-proxy-client")}


def samples(path: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(path.read_text())
            for s in family.samples}


def sample(path: Path, name: str, **labels: str) -> float:
    hits = [v for (n, ls), v in samples(path).items() if n == name and set(labels.items()) <= ls]
    assert len(hits) == 1, (name, labels, path.read_text())
    return hits[0]


def dates(run: Any) -> dict[str, dict[str, str]]:
    """node -> certificate -> expiry, from a --json report."""
    return {n["name"]: {c["name"]: c["expires"] for c in n["details"].get("certificates", [])}
            for n in run.report["nodes"] if n["role"] == "control-plane"}


def served(lab: Any, name: str) -> x509.Certificate:
    """The certificate the node's API serves, as a client on the host sees it."""
    pem = ssl.get_server_certificate((lab.node(name).address, 6443))
    return x509.load_pem_x509_certificate(pem.encode())


@pytest.fixture(scope="module")
def cluster(lab_factory_module: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    lab = lab_factory_module(nodes=2, control_planes=2)
    work = tmp_path_factory.mktemp("certs")
    boot = cli("bootstrap", str(lab.inventory_path), "--json", log_file=work / "boot.log")
    assert boot.code == 0, boot.stderr[-3000:]
    return {"lab": lab, "work": work, "inventory": str(lab.inventory_path)}


def test_certs_check_lists_every_certificate_of_every_control_plane(
    cluster: dict[str, Any]
) -> None:
    work: Path = cluster["work"]
    prom = work / "check.prom"
    run = cli("certs", "check", cluster["inventory"], "--json", "--metrics-file", str(prom),
              log_file=work / "check.log")
    assert run.code == 0, run.stderr
    found = dates(run)
    assert set(found) == {"cp-1", "cp-2"}
    for name, certs in found.items():
        assert set(certs) == EVERY_CERT | {"ca", "etcd-ca", "front-proxy-ca"}, name
    assert "front-proxy-client" in run.stderr  # the plain table on stderr (no terminal)
    # No terminal: no live view, plain timestamped lines.
    assert "\x1b[" not in run.stderr
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ cp-2 certs start: ", run.stderr, re.M)
    for name in ("cp-1", "cp-2"):
        left = sample(prom, "k8slk_ops_certificate_remaining_seconds", node=name,
                      command="certs check")
        assert 364 * 86400 < left <= 365 * 86400
        assert sample(prom, "k8slk_ops_ca_remaining_seconds", node=name) > 3600 * 86400
    assert sample(prom, "k8slk_ops_run_success") == 1


def test_renew_renews_exactly_the_expiring_ones_and_the_api_serves_the_new_one(
    cluster: dict[str, Any]
) -> None:
    lab, work, inventory = cluster["lab"], cluster["work"], cluster["inventory"]
    assert cli("kubeconfig", inventory, log_file=work / "kc.log").code == 0
    kubeconfig = Path(inventory).parent / f"{lab_cluster_name(inventory)}.kubeconfig"
    old_kubeconfig = kubeconfig.read_text()
    for name, certs in EXPIRING.items():
        lab.fault(name, "certs-expire", *certs)
    warned = cli("certs", "check", inventory, "--json", "--metrics-file", str(work / "w.prom"),
                 log_file=work / "warn.log")
    assert warned.code == 1
    assert {n["name"]: n["outcome"] for n in warned.report["nodes"]
            if n["role"] == "control-plane"} == {"cp-1": "failed", "cp-2": "failed"}
    assert sample(work / "w.prom", "k8slk_ops_run_exit_code") == 1
    assert sample(work / "w.prom", "k8slk_ops_certificate_remaining_seconds",
                  node="cp-1") < 10 * 86400
    before = dates(warned)

    nope = cli("certs", "renew", inventory, log_file=work / "nope.log")
    assert nope.code == 2 and "--yes" in nope.stderr  # no terminal, no --yes: nothing touched
    # The API still serves the certificate it loaded at start, not the one re-issued on disk.
    on_disk = x509.load_pem_x509_certificate(lab.read("cp-1", APISERVER_CRT))
    assert served(lab, "cp-1").serial_number != on_disk.serial_number

    prom = work / "renew.prom"
    run = cli("certs", "renew", inventory, "--within-days", "30", "--yes", "--json",
              "--metrics-file", str(prom), log_file=work / "renew.log", timeout=600)
    assert run.code == 0, run.stderr[-3000:]
    nodes = {n["name"]: n for n in run.report["nodes"]}
    after = dates(run)
    for name, certs in EXPIRING.items():
        assert sorted(nodes[name]["details"]["renewed"]) == sorted(certs)
        changed = {c for c in after[name] if after[name][c] != before[name][c]}
        assert changed == set(certs), name  # the others keep their dates
    for name in ("cp-1", "cp-2"):
        on_disk = x509.load_pem_x509_certificate(lab.read(name, APISERVER_CRT))
        assert served(lab, name).serial_number == on_disk.serial_number
    assert after["cp-1"]["apiserver"] > before["cp-1"]["apiserver"]
    assert kubeconfig.read_text() != old_kubeconfig  # admin.conf renewed: refreshed here
    assert sample(prom, "k8slk_ops_certificate_remaining_seconds", node="cp-1") > 300 * 86400
    assert sample(prom, "k8slk_ops_run_nodes", outcome="ok") == 2

    again = cli("certs", "renew", inventory, "--yes", "--json", log_file=work / "again.log",
                timeout=600)
    assert again.code == 0, again.stderr[-3000:]
    assert all(n["details"].get("renewed") == [] for n in again.report["nodes"]
               if n["role"] == "control-plane")
    assert again.report["changed"] is False
    assert dates(again) == after


def test_renew_leaves_a_verified_snapshot_taken_before_it(cluster: dict[str, Any]) -> None:
    """The etcd snapshot that opens every renewal: in snapshots/ beside the inventory (0700),
    0600, the bytes the report's SHA-256 names, read by etcdctl, named in the messages; and
    ``etcd snapshot --pki`` beside it, holding the primary's CAs and SA keys."""
    work, inventory = cluster["work"], cluster["inventory"]
    run = cli("certs", "renew", inventory, "--yes", "--json", log_file=work / "snap.log",
              timeout=600)
    assert run.code == 0, run.stderr[-3000:]
    snap = run.report["data"]["snapshot"]
    path = Path(snap["path"])
    directory = Path(inventory).parent / "snapshots"
    assert path.parent == directory and directory.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600
    assert hashlib.sha256(path.read_bytes()).hexdigest() == snap["sha256"]
    assert snap["revision"] > 0 and snap["keys"] > 0 and snap["verifiedBy"]
    assert any(m.startswith(f"snapshot written: {path} ") for m in run.report["messages"])
    assert not list(directory.glob("*.part"))
    # etcd snapshot --pki: the kubeadm double's CAs and SA keys, byte for byte, nothing else.
    pki = cli("etcd", "snapshot", inventory, "--pki", "-o", str(work / "pki"), "--json",
              log_file=work / "pki.log")
    assert pki.code == 0, pki.stderr[-3000:]
    archive = Path(pki.report["data"]["snapshot"]["pki"]["path"])
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        assert tar.getnames() == list(pkiarchive.MEMBERS)
        for member in pkiarchive.MEMBERS:
            extracted = tar.extractfile(member)
            assert extracted is not None
            assert extracted.read() == cluster["lab"].read(
                "cp-1", f"/var/node/etc/kubernetes/pki/{member}")


def test_a_run_that_cannot_start_still_writes_its_metrics(cluster: dict[str, Any]) -> None:
    work: Path = cluster["work"]
    prom = work / "fail.prom"
    missing = work / "no-such-inventory.yaml"
    run = cli("certs", "check", str(missing), "--metrics-file", str(prom),
              log_file=work / "fail.log")
    assert run.code == 2
    assert sample(prom, "k8slk_ops_run_result", result="usage", command="certs check") == 1
    assert sample(prom, "k8slk_ops_run_exit_code") == 2


def test_renew_with_a_control_plane_unreachable_exits_1_and_says_so_in_the_metrics(
    cluster: dict[str, Any]
) -> None:
    lab, work, inventory = cluster["lab"], cluster["work"], cluster["inventory"]
    lab.fault("cp-2", "ssh-stop")
    try:
        prom = work / "unreachable.prom"
        # --force: cp-2's etcd member cannot be asked through cp-2, so etcd's health gate would
        # refuse to restart cp-1 (tests/unit/test_roll_resume_fleet.py has that refusal)
        run = cli("certs", "renew", inventory, "--within-days", "all", "--yes", "--force",
                  "--json", "--metrics-file", str(prom), log_file=work / "unreachable.log",
                  timeout=600)
    finally:
        lab.fault("cp-2", "ssh-start")
    assert run.code == 1, run.stderr[-3000:]
    outcomes = {n["name"]: n["outcome"] for n in run.report["nodes"]}
    assert outcomes["cp-2"] == "unreachable"
    assert outcomes["cp-1"] == "ok"  # the reachable control plane was still renewed
    assert sorted(next(n for n in run.report["nodes"] if n["name"] == "cp-1")["details"][
        "renewed"]) == sorted(EVERY_CERT)
    on_disk = x509.load_pem_x509_certificate(lab.read("cp-1", APISERVER_CRT))
    assert served(lab, "cp-1").serial_number == on_disk.serial_number
    assert sample(prom, "k8slk_ops_run_nodes", outcome="unreachable") == 1
    assert sample(prom, "k8slk_ops_run_result", result="failed") == 1


def lab_cluster_name(inventory: str) -> str:
    import yaml

    return str(yaml.safe_load(Path(inventory).read_text())["cluster"]["name"])
