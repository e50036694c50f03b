"""``certs check``, ``certs renew`` and ``--metrics-file``, in-process against the fleet, whose
control planes answer ``kubeadm certs check-expiration`` and ``renew`` as kubeadm does and whose
API serves its old certificate until its static pod restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk

EVERY_CERT = {
    "admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client",
    "controller-manager.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server",
    "front-proxy-client", "scheduler.conf", "super-admin.conf",
}
CAS = {"ca", "etcd-ca", "front-proxy-ca"}


def metrics(path: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a metrics file, parsed by prometheus_client: (name, labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    hits = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(hits) == 1, f"{name} {labels}: {hits}"
    return hits[0]


@pytest.fixture
def ha(fleet_factory: object, k8slk: K8slk) -> InProcessFleet:
    fleet = fleet_factory(3, 2)  # type: ignore[operator]
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    return fleet


def test_certs_check_lists_every_certificate_of_every_control_plane(
    ha: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    prom = tmp_path / "certs.prom"
    run = k8slk("certs", "check", ha.inventory, "--json", "--metrics-file", prom)
    assert run.code == 0, run.why()
    cps = {name: node for name, node in run.nodes.items() if node["role"] == "control-plane"}
    assert set(cps) == {"cp-1", "cp-2"}
    for node in cps.values():
        rows = node["details"]["certificates"]
        assert {r["name"] for r in rows if not r["authority"]} == EVERY_CERT
        assert {r["name"] for r in rows if r["authority"]} == CAS
        assert all(364 <= r["daysLeft"] <= 365 for r in rows if not r["authority"])
        assert 3640 < node["details"]["caDaysLeft"] <= 3650
    assert "apiserver-etcd-client" in run.stderr  # the text table, a row per certificate
    samples = metrics(prom)
    left = value(samples, "k8slk_ops_certificate_remaining_seconds", node="cp-2",
                 command="certs check")
    assert 364 * 86400 < left <= 365 * 86400
    assert value(samples, "k8slk_ops_ca_remaining_seconds", node="cp-1") > 3640 * 86400
    assert value(samples, "k8slk_ops_run_exit_code") == 0


def test_certs_check_exits_1_when_one_expires_within_warn_days(
    ha: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    ha.expire_certs("cp-2", ("apiserver",), days=5)
    prom = tmp_path / "certs.prom"
    run = k8slk("certs", "check", ha.inventory, "--json", "--metrics-file", prom)
    assert run.code == 1
    assert run.outcomes["cp-2"] == "failed" and run.outcomes["cp-1"] == "unchanged"
    assert "apiserver (4d)" in run.nodes["cp-2"]["message"] or "apiserver (5d)" in \
        run.nodes["cp-2"]["message"]
    samples = metrics(prom)
    assert value(samples, "k8slk_ops_run_exit_code") == 1
    assert value(samples, "k8slk_ops_run_result", result="failed") == 1
    assert value(samples, "k8slk_ops_run_nodes", outcome="failed") == 1
    assert value(samples, "k8slk_ops_certificate_remaining_seconds", node="cp-2") < 5 * 86400
    # A shorter warning window lets it pass.
    assert k8slk("certs", "check", ha.inventory, "--warn-days", "3").code == 0
    # status reads the same rows: the same earliest expiry.
    status = k8slk("status", ha.inventory, "--json")
    assert status.nodes["cp-2"]["details"]["certsDaysLeft"] == \
        run.nodes["cp-2"]["details"]["certsDaysLeft"]


def test_certs_renew_renews_exactly_the_expiring_ones_and_the_api_serves_the_new_one(
    ha: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    ha.expire_certs("cp-1", ("apiserver", "admin.conf"), days=5)
    ha.expire_certs("cp-2", ("etcd-peer",), days=8)
    before = {n: dict(ha.certificates(n).expires) for n in ("cp-1", "cp-2")}
    kubeconfig = ha.inventory.parent / "fleet.kubeconfig"  # where `kubeconfig` writes it
    assert k8slk("kubeconfig", ha.inventory).code == 0
    old_kubeconfig = kubeconfig.read_text()
    prom = tmp_path / "renew.prom"
    run = k8slk("certs", "renew", ha.inventory, "--within-days", "30", "--yes", "--json",
                "--metrics-file", prom)
    assert run.code == 0, run.why()
    assert ha.certificates("cp-1").renewals == ["admin.conf", "apiserver"]
    assert ha.certificates("cp-2").renewals == ["etcd-peer"]
    for name in ("cp-1", "cp-2"):
        after = ha.certificates(name).expires
        renewed = set(ha.certificates(name).renewals)
        assert {c for c in after if after[c] != before[name][c]} == renewed
    served = run.nodes["cp-1"]["details"]["servingCertificate"]
    assert int(served["serial"], 16) == ha.certificates("cp-1").serials["apiserver"]
    assert ha.certificates("cp-1").served == ha.file("cp-1", "/var/node/etc/kubernetes/pki/"
                                                              "apiserver.crt")
    assert run.outcomes["cp-1"] == "ok" and run.nodes["cp-1"]["details"]["certsDaysLeft"] >= 364
    assert value(metrics(prom), "k8slk_ops_certificate_remaining_seconds", node="cp-1") > \
        364 * 86400
    # Renewing admin.conf refreshed the local kubeconfig (new client certificate).
    assert kubeconfig.read_text() != old_kubeconfig

    second = k8slk("certs", "renew", ha.inventory, "--yes", "--json")
    assert second.code == 0, second.why()
    assert ha.certificates("cp-1").renewals == ["admin.conf", "apiserver"]
    assert set(second.outcomes.values()) <= {"unchanged", "skipped"}
    assert second.outcomes["cp-1"] == "unchanged"
    assert second.report["changed"] is False


def test_certs_renew_all_and_zero(ha: InProcessFleet, k8slk: K8slk) -> None:
    zero = k8slk("certs", "renew", ha.inventory, "--within-days", "0", "--yes", "--json")
    assert zero.code == 0, zero.why()
    assert ha.certificates("cp-1").renewals == []
    every = k8slk("certs", "renew", ha.inventory, "--within-days", "all", "--yes")
    assert every.code == 0, every.why()
    assert set(ha.certificates("cp-2").renewals) == EVERY_CERT
    assert "certificate authorities expire ca " in every.stderr  # never renewed: said


def test_certs_renew_without_a_terminal_needs_yes_and_touches_nothing(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    ha.expire_certs("cp-1", ("apiserver",))
    calls = ha.commands()
    prom = ha.inventory.parent / "refused.prom"
    run = k8slk("certs", "renew", ha.inventory, "--metrics-file", prom)
    assert run.code == 2
    assert "--yes" in run.stderr
    assert value(metrics(prom), "k8slk_ops_run_result", result="usage") == 1
    assert ha.commands() == calls
    assert ha.certificates("cp-1").renewals == []
    assert k8slk("certs", "renew", ha.inventory, "--within-days", "soon", "--yes").code == 2


def test_a_failed_run_still_writes_its_metrics(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    prom = tmp_path / "m.prom"
    fleet.unreachable("cp-1")
    run = k8slk("status", fleet.inventory, "--metrics-file", prom)
    assert run.code != 0
    samples = metrics(prom)
    assert value(samples, "k8slk_ops_run_exit_code", command="status") == run.code
    assert value(samples, "k8slk_ops_run_success") == 0
    assert oct(prom.stat().st_mode & 0o777) == "0o644"
    assert not prom.with_name("m.prom.tmp").exists()
    bad = k8slk("bootstrap", tmp_path / "missing.yaml", "--metrics-file", prom)
    assert bad.code == 2
    assert value(metrics(prom), "k8slk_ops_run_result", command="bootstrap", result="usage") == 1


def test_certs_renew_moves_back_manifests_an_earlier_run_left_out(
    ha: InProcessFleet, k8slk: K8slk
) -> None:
    ha.call(lambda: setattr(ha.certificates("cp-2"), "parked", True))  # a run died mid-restart
    run = k8slk("certs", "renew", ha.inventory, "--yes")
    assert run.code == 0, run.why()
    assert ha.certificates("cp-2").parked is False
    assert "moved back: kube-apiserver.yaml" in run.stderr


def test_bootstrap_and_status_write_their_metrics(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    prom = tmp_path / "boot.prom"
    boot = k8slk("bootstrap", fleet.inventory, "--metrics-file", prom)
    assert boot.code == 0, boot.why()
    got = metrics(prom)
    assert value(got, "k8slk_ops_run_nodes", command="bootstrap", cluster="fleet",
                 outcome="ok") == 3
    assert value(got, "k8slk_ops_run_result", result="ok") == 1
    assert value(got, "k8slk_ops_run_duration_seconds") > 0
    status = k8slk("status", fleet.inventory, "--metrics-file", prom)
    assert status.code == 0, status.why()
    got = metrics(prom)
    assert value(got, "k8slk_ops_run_nodes", command="status", outcome="unchanged") == 3
    assert value(got, "k8slk_ops_certificate_remaining_seconds", node="cp-1") > 364 * 86400
    assert value(got, "k8slk_ops_ca_remaining_seconds", node="cp-1") > 3640 * 86400
    assert not any(n == "k8slk_ops_certificate_remaining_seconds" and ("node", "w-1") in ls
                   for n, ls in got)  # workers have no kubeadm certificates
