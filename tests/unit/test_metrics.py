"""--metrics-file: the Prometheus text of a run's report, read back with prometheus_client's
own parser; the pure helpers of kubeadm/certs.py the certificate metrics come from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from k8slk_ops import kubeadm
from k8slk_ops.cli.main import app
from k8slk_ops.output import metrics
from k8slk_ops.output.events import NodeReport, Outcome, RunReport
from k8slk_ops.output.rows import CertsRow, CertSummary

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def report(**data: object) -> RunReport:
    r = RunReport("certs check", 'la"b\\x', "inv.yml", started=T0, ended=T0 + timedelta(seconds=42))
    r.exit_code = 1
    r.nodes = [
        NodeReport("cp-1", "control-plane", "10.0.0.1", Outcome.UNCHANGED, row=CertsRow(
            CertSummary(expires=T0 + timedelta(days=5), ca_expires=T0 + timedelta(days=3000)))),
        NodeReport("cp-2", "control-plane", "10.0.0.2", Outcome.FAILED),
        NodeReport("w-1", "worker", "10.0.0.3", Outcome.SKIPPED),
    ]
    r.data.update(data)
    return r


def test_the_run_its_nodes_and_certificates() -> None:
    text = metrics.render(report())
    got = parse(text)
    run = {"command": "certs check", "cluster": 'la"b\\x'}  # quotes and backslashes escaped
    assert got["k8slk_ops_run_start_timestamp_seconds"] == [(run, T0.timestamp())]
    assert got["k8slk_ops_run_duration_seconds"] == [(run, 42.0)]
    assert got["k8slk_ops_run_exit_code"] == [(run, 1.0)]
    assert got["k8slk_ops_run_success"] == [(run, 0.0)]
    assert got["k8slk_ops_run_result"] == [({**run, "result": "failed"}, 1.0)]
    nodes = {labels["outcome"]: v for labels, v in got["k8slk_ops_run_nodes"]}
    assert nodes == {o.value: 0.0 for o in Outcome} | {"unchanged": 1, "failed": 1, "skipped": 1}
    cp1 = {**run, "node": "cp-1"}
    left = 5 * 86400 - 42
    assert got["k8slk_ops_certificate_remaining_seconds"] == [(cp1, left)]
    assert got["k8slk_ops_certificate_expiry_timestamp_seconds"] == [
        (cp1, (T0 + timedelta(days=5)).timestamp())]
    assert got["k8slk_ops_ca_remaining_seconds"] == [(cp1, 3000 * 86400 - 42)]
    assert "k8slk_ops_etcd_snapshot_size_bytes" not in got  # no snapshot in this run
    for line in text.splitlines():
        if line.startswith("k8slk_ops_"):
            name = line.split("{")[0]
            assert f"# HELP {name} " in text and f"# TYPE {name} gauge" in text


def test_the_snapshot_the_run_took() -> None:
    taken = (T0 - timedelta(minutes=10)).timestamp()
    got = parse(metrics.render(report(snapshot={"sizeBytes": 2_500_000, "revision": 812,
                                                "timestampSeconds": taken})))
    assert got["k8slk_ops_etcd_snapshot_size_bytes"][0][1] == 2_500_000
    assert got["k8slk_ops_etcd_snapshot_revision"][0][1] == 812
    assert got["k8slk_ops_etcd_snapshot_timestamp_seconds"][0][1] == taken
    assert got["k8slk_ops_etcd_snapshot_age_seconds"][0][1] == 600 + 42


def test_written_atomically_0644_and_a_missing_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "k8slk.prom"
    target.write_text("old\n")
    target.chmod(0o600)
    metrics.write(target, report())
    assert (target.stat().st_mode & 0o777) == 0o644
    assert not (tmp_path / "k8slk.prom.tmp").exists()
    assert parse(target.read_text())["k8slk_ops_run_exit_code"][0][1] == 1
    assert metrics.check_target(target) is None
    why = metrics.check_target(tmp_path / "nope" / "k.prom")
    assert why is not None and "does not exist" in why


def test_a_run_without_a_snapshot_keeps_the_last_one(tmp_path: Path) -> None:
    target = tmp_path / "snap.prom"
    taken = (T0 - timedelta(minutes=10)).timestamp()
    metrics.write(target, report(snapshot={"sizeBytes": 2048, "revision": 7,
                                           "timestampSeconds": taken}))
    failed = report()
    failed.ended = T0 + timedelta(hours=7)
    metrics.write(target, failed)
    got = parse(target.read_text())
    assert got["k8slk_ops_etcd_snapshot_timestamp_seconds"][0][1] == taken
    assert got["k8slk_ops_etcd_snapshot_age_seconds"][0][1] == 7 * 3600 + 600
    assert got["k8slk_ops_etcd_snapshot_revision"][0][1] == 7
    assert got["k8slk_ops_run_success"][0][1] == 0


@pytest.mark.parametrize("code, result", [(0, "ok"), (1, "failed"), (2, "usage"),
                                          (3, "cannot-start"), (130, "interrupted"), (9, "error")])
def test_result_names(code: int, result: str) -> None:
    assert metrics.result_name(code) == result


def test_every_command_takes_metrics_file() -> None:
    import typer.main

    group = typer.main.get_group(app)

    def commands(g: object, path: str = "") -> list[tuple[str, object]]:
        out = []
        for name, cmd in getattr(g, "commands", {}).items():
            if hasattr(cmd, "commands"):
                out += commands(cmd, f"{path}{name} ")
            else:
                out.append((f"{path}{name}", cmd))
        return out

    found = commands(group)
    assert {"status", "bootstrap", "certs check", "certs renew"} <= {n for n, _ in found}
    for name, cmd in found:
        opts = {o for p in cmd.params for o in getattr(p, "opts", [])}  # type: ignore[attr-defined]
        assert "--metrics-file" in opts, name


# -- kubeadm/certs.py --------------------------------------------------------------------------

TABLE = """[check-expiration] Reading configuration from the cluster...

CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED
admin.conf                 Jan 06, 2026 12:00 UTC   4d              ca                      no
apiserver                  Dec 31, 2026 12:00 UTC   364d            ca                      no
front-proxy-client         Jan 20, 2026 12:00 UTC   18d             front-proxy-ca          yes
!MISSING! etcd-peer

CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED
ca                      Dec 30, 2035 12:00 UTC   9y              no
front-proxy-ca          Dec 29, 2030 12:00 UTC   4y              yes
"""


def test_node_certs_one_notion_of_earliest_and_of_due() -> None:
    certs = kubeadm.NodeCerts.parse(TABLE)
    assert certs.earliest is not None and certs.earliest.name == "admin.conf"
    assert certs.earliest_ca is not None and certs.earliest_ca.name == "front-proxy-ca"
    assert certs.missing == ("etcd-peer",)
    # Externally managed and missing certificates are never renewed; None renews all.
    assert certs.due(30, T0) == ("admin.conf",)
    assert certs.due(None, T0) == ("admin.conf", "apiserver")
    assert certs.due(0, T0) == ()
    assert kubeadm.days_left(T0 + timedelta(days=4, hours=23), T0) == 4
    assert kubeadm.days_left(T0 - timedelta(hours=1), T0) == -1


def test_certs_command_and_apiserver_address() -> None:
    assert kubeadm.certs_command("v1.19.16") == ("alpha", "certs")
    assert kubeadm.certs_command("v1.20.0") == ("certs",)
    assert kubeadm.certs_command("v1.31.3") == ("certs",)
    manifest = ("spec:\n  containers:\n  - command:\n    - kube-apiserver\n"
                "    - --advertise-address=10.1.2.3\n    - --secure-port=6444\n")
    assert kubeadm.apiserver_address(manifest) == ("10.1.2.3", 6444)
    assert kubeadm.apiserver_address(manifest.replace("    - --secure-port=6444\n", "")) == (
        "10.1.2.3", 6443)
    assert kubeadm.apiserver_address("spec: {}\n") is None


def test_inventory_check_writes_its_metrics(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    prom = tmp_path / "inv.prom"
    bad = tmp_path / "bad.yml"
    bad.write_text("cluster: [\n")
    out = CliRunner().invoke(app, ["inventory", "check", str(bad), "--metrics-file", str(prom)])
    assert out.exit_code == 2
    assert parse(prom.read_text())["k8slk_ops_run_result"][0][0]["result"] == "usage"
