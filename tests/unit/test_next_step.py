"""The next step of each failure class, from kubeadm's and the SSH layer's own texts, and the
typed report rows rendered in their own columns: the table, the JSON report and the plain lines."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from k8slk_ops.base.nextstep import NextStep, Rerun
from k8slk_ops.cluster.etcdctl import EndpointStatus, MemberHealth, MemberInfo
from k8slk_ops.kubeadm import FailureKind, diagnose_kubeadm_error
from k8slk_ops.kubeadm.taskstate import KubeadmLogState
from k8slk_ops.node.linuxkit import KubeadmResult, stopped_result
from k8slk_ops.output.events import NodeReport, Outcome, RunReport
from k8slk_ops.output.redact import Redactor
from k8slk_ops.output.report import JsonReporter, LogFileReporter, PlainReporter
from k8slk_ops.output.rows import (
    CertificateRow,
    CertsRow,
    CertSummary,
    EtcdRow,
    Layout,
    StatusRow,
)
from k8slk_ops.ssh import (
    AuthenticationFailed,
    ConnectionLost,
    HostKeyMismatch,
    HostKeyUnknown,
    SSHTarget,
    Unreachable,
    next_step,
)

INV = "/srv/inv.yml"
WORKER = Rerun.of(INV, "w-17", primary=False)
ADD = "k8slk-ops add-node /srv/inv.yml --node w-17"
RESET = "k8slk-ops reset /srv/inv.yml --node w-17"
REBOOT = "reboot the node (kubeadm runs once per boot on a LinuxKit node)"
STACK = "To see the stack trace of this error execute with --v=5 or higher"


def preflight(*errors: str) -> str:
    return "\n".join([
        "[preflight] Running pre-flight checks",
        "error execution phase preflight: [preflight] Some fatal errors occurred:",
        *(f"\t[ERROR {e}" for e in errors),
        "[preflight] If you know what you are doing, you can make a check non-fatal with "
        "`--ignore-preflight-errors=...`",
        STACK,
    ])


def step_of(output: str) -> NextStep:
    return diagnose_kubeadm_error(output).next_step(WORKER)


# -- kubeadm ---------------------------------------------------------------------------------------


def test_too_little_memory_then_reboot_then_add_node() -> None:
    step = step_of(preflight("Mem]: the system RAM (621 MB) is less than the minimum 1700 MB"))
    assert step == NextStep(
        "give the node more memory (the system RAM (621 MB) is less than the minimum 1700 MB); "
        f"{REBOOT}, then run `{ADD}`", ADD)


def test_too_few_cpus() -> None:
    step = step_of(preflight("NumCPU]: the number of available CPUs 1 is less than the "
                             "required 2"))
    assert step.action.startswith(
        "give the node more CPUs (the number of available CPUs 1 is less than the required 2); "
        f"{REBOOT}")
    assert step.command == ADD


def test_swap_on() -> None:
    step = step_of(preflight("Swap]: running with swap on is not supported. Please disable swap"))
    assert step.action.startswith("turn swap off on the node")
    assert REBOOT in step.action and step.command == ADD


def test_a_port_in_use_and_leftovers_name_the_reset() -> None:
    step = step_of(preflight("Port-10250]: Port 10250 is in use",
                             "DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty"))
    assert step.action.startswith(
        f"free port 10250 on the node (an earlier Kubernetes holds it: `{RESET}`); "
        f"remove what an earlier kubeadm left (/var/lib/etcd is not empty): `{RESET}`; {REBOOT}")
    assert step.command == ADD


def test_every_failed_check_is_named_and_warnings_are_not() -> None:
    output = preflight("Mem]: the system RAM (621 MB) is less than the minimum 1700 MB",
                       "CRI]: container runtime is not running")
    output = "\t[WARNING Swap]: swap is enabled\n" + output
    step = step_of(output)
    assert "more memory" in step.action
    assert "fix [CRI]: container runtime is not running" in step.action
    assert "swap" not in step.action


def test_a_wrong_ca_pin_points_at_the_endpoint() -> None:
    output = ('error execution phase preflight: couldn\'t validate the identity of the API '
              'Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public '
              'keys "sha256:abc" are pinned\n' + STACK)
    failure = diagnose_kubeadm_error(output)
    assert failure.kind is FailureKind.CA_PIN_MISMATCH
    step = failure.next_step(WORKER)
    assert "controlPlaneEndpoint" in step.action and INV in step.action
    assert step.action.endswith(f"{REBOOT}, then run `{ADD}`") and step.command == ADD


def test_an_expired_token_needs_only_the_reboot_and_a_new_run() -> None:
    output = ("error execution phase preflight: couldn't validate the identity of the API "
              "Server: could not find a JWS signature in the cluster-info ConfigMap for token "
              'ID "5xf60f"\n' + STACK)
    failure = diagnose_kubeadm_error(output)
    assert failure.kind is FailureKind.BAD_TOKEN
    step = failure.next_step(WORKER)
    assert "reset" not in step.action  # discovery failed before anything was written
    assert step.action.endswith(f"{REBOOT}; the run mints a fresh token, then run `{ADD}`")


@pytest.mark.parametrize("phase,text", [
    ("kubelet-start", "error waiting for kubelet to perform the TLS Bootstrap: timed out "
                      "waiting for the condition"),
    ("wait-control-plane", "couldn't initialize a Kubernetes cluster"),
])
def test_a_kubelet_that_never_came_up(phase: str, text: str) -> None:
    output = ("\tThe kubelet is not running\n\ttimed out waiting for the condition\n"
              f"error execution phase {phase}: {text}\n{STACK}")
    failure = diagnose_kubeadm_error(output)
    assert failure.kind is FailureKind.KUBELET_TIMEOUT
    assert failure.reason == f"failed in phase {phase}: {text}"  # the reason is unchanged
    step = failure.next_step(WORKER)
    assert "/var/log/kubelet.log" in step.action
    assert f"reset the node (`{RESET}`) and {REBOOT}" in step.action and step.command == ADD


def test_an_unclassified_failure_past_preflight_resets_and_reboots() -> None:
    output = ("error execution phase control-plane: failed to create static pod manifest file: "
              "permission denied\n" + STACK)
    step = step_of(output)
    assert step == NextStep(
        f"fix what kubeadm said (the log tail above), reset the node (`{RESET}`) and {REBOOT}, "
        f"then run `{ADD}`", ADD)


def test_the_primary_reruns_bootstrap() -> None:
    primary = Rerun.of(INV, "cp-1", primary=True)
    step = diagnose_kubeadm_error(preflight("NumCPU]: 1 < 2")).next_step(primary)
    assert step.command == "k8slk-ops bootstrap /srv/inv.yml"


def test_a_wait_that_ran_out_and_a_script_that_stopped_early() -> None:
    timed_out = KubeadmResult(False, "kubeadm join did not finish within 600s", [], [],
                              None, True)
    step = timed_out.next_step(WORKER)
    assert step.action.startswith("kubeadm may still be running: follow "
                                  "/var/log/kubeadm.out.log on the node")
    assert step.command == ADD
    early = stopped_result(["2026-01-01T00:00:00Z kubeadm.out Waiting for /run/kubeadm-run to "
                            "exist before running kubeadm commands"])
    assert not early.ok and early.failure is None
    assert early.next_step(WORKER) == NextStep(
        f"reset the node (`{RESET}`) and {REBOOT}, then run `{ADD}`", ADD)


def test_the_log_state_keeps_kubeadms_failure() -> None:
    state = KubeadmLogState()
    state.feed_all(["Waiting for /run/kubeadm-run to exist before running kubeadm commands",
                    "Found kubeadm flag join",
                    *preflight("Mem]: the system RAM (621 MB) is less than the minimum "
                               "1700 MB").splitlines()])
    state.task_stopped()
    assert state.failure is not None and state.failure.kind is FailureKind.PREFLIGHT
    assert state.reason == state.failure.reason


# -- SSH -------------------------------------------------------------------------------------------


TARGET = SSHTarget("w-17", "10.0.0.17", port=2222, identity_file=Path("/k/id_ed25519"))
LOGIN = "ssh -p 2222 -i /k/id_ed25519 root@10.0.0.17"
STATUS = "k8slk-ops status /srv/inv.yml"


def test_an_unreachable_node() -> None:
    exc = Unreachable("node w-17 is unreachable", cause=OSError("refused"), attempts=4)
    step = next_step(exc, login=TARGET.login_command(), rerun=STATUS)
    assert step == NextStep(
        f"bring the node up (powered on, sshd and network answering: `{LOGIN}` must log in), "
        f"then run `{STATUS}`", STATUS)


def test_refused_keys_and_a_lost_connection() -> None:
    refused = next_step(AuthenticationFailed("no"), login=LOGIN, rerun=STATUS)
    assert "ssh.identityFile" in refused.action and refused.command == STATUS
    lost = next_step(ConnectionLost("gone"), login=LOGIN, rerun=STATUS)
    assert "stopped answering mid-command" in lost.action and lost.command == STATUS


@pytest.mark.parametrize("kind", [HostKeyMismatch, HostKeyUnknown])
def test_a_changed_host_key(kind: type[HostKeyMismatch] | type[HostKeyUnknown]) -> None:
    common = {"node": "w-17", "address": "10.0.0.17", "port": 2222, "presented": "SHA256:new",
              "known_hosts": Path("/k/known_hosts")}
    exc = (HostKeyMismatch.build(**common, expected=("SHA256:old",), source="known_hosts")
           if kind is HostKeyMismatch else HostKeyUnknown.build(**common))
    step = next_step(exc, login=LOGIN, rerun=STATUS)
    forget = "ssh-keygen -R '[10.0.0.17]:2222' -f /k/known_hosts"
    assert step.command == forget
    assert f"forget the old key: `{forget}`" in step.action
    assert "prints SHA256:new" in step.action
    assert f"run `{STATUS}` with ssh.hostKeyPolicy: accept-new" in step.action
    assert forget in str(exc)  # the refusal and the row give the same command


def test_port_22_is_named_bare_in_known_hosts() -> None:
    exc = HostKeyUnknown.build(node="w", address="10.0.0.1", port=22, presented="SHA256:x",
                               known_hosts=None)
    assert exc.next_step(STATUS).command == "ssh-keygen -R 10.0.0.1 -f ~/.ssh/known_hosts"


# -- typed rows, rendered --------------------------------------------------------------------------

NOW = datetime(2026, 12, 7, tzinfo=UTC)
UNREACHABLE = NextStep("bring the node up, then run `k8slk-ops status inv.yml`",
                       "k8slk-ops status inv.yml")


def render(report: RunReport, tmp_path: Path) -> tuple[str, dict[str, object], str]:
    """(the plain lines, the JSON document, the log file's lines) of one finished report."""
    plain, out = io.StringIO(), io.StringIO()
    JsonReporter(PlainReporter(Redactor(), plain), Redactor(), out).finish(report)
    log = LogFileReporter(tmp_path / "run.log", Redactor())
    log.finish(report)
    log.close()
    return plain.getvalue(), json.loads(out.getvalue()), (tmp_path / "run.log").read_text()


def row_of(text: str, node: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.startswith(f"{node} "))


def test_status_rows_in_their_columns(tmp_path: Path) -> None:
    report = RunReport("status", "c", "inv.yml", layout=Layout.STATUS, nodes=[
        NodeReport("cp-1", "control-plane", "a", Outcome.UNCHANGED, row=StatusRow(
            True, "ok", kubelet_task="running", kubeadm="completed", kubeadm_version="v1.31.3",
            kubelet_version="v1.31.3", registered=True, ready=True,
            certs=CertSummary((), NOW + timedelta(days=300), 300))),
        NodeReport("w-1", "worker", "b", Outcome.UNREACHABLE, next_step=UNREACHABLE,
                   row=StatusRow(False, "not checked", error="connection refused")),
        NodeReport("w-2", "worker", "c", Outcome.FAILED, message="facts unreadable"),
    ])
    plain, doc, log = render(report, tmp_path)
    assert plain.splitlines()[0].split() == ["NODE", "ROLE", "REACHABLE", "HOST", "KEY",
                                             "KUBELET", "KUBEADM", "KUBEADM", "VER", "KUBELET",
                                             "VER", "CLUSTER", "CERTS", "NOTE", "NEXT"]
    assert row_of(plain, "cp-1") == ["cp-1", "control-plane", "yes", "ok", "running",
                                     "completed", "v1.31.3", "v1.31.3", "Ready", "300d"]
    assert row_of(plain, "w-1")[:5] == ["w-1", "worker", "no", "not", "checked"]
    assert " ".join(row_of(plain, "w-1")).endswith(UNREACHABLE.action)
    assert row_of(plain, "w-2")[:3] == ["w-2", "worker", "yes"]  # it answered
    nodes = {n["name"]: n for n in doc["nodes"]}  # type: ignore[attr-defined]
    assert nodes["cp-1"]["details"]["certsDaysLeft"] == 300 and nodes["cp-1"]["next"] is None
    assert nodes["w-1"]["details"] == {"reachable": False, "hostKey": "not checked",
                                       "error": "connection refused"}
    assert nodes["w-1"]["next"] == {"action": UNREACHABLE.action,
                                    "command": UNREACHABLE.command}
    assert f"result w-1 unreachable phase= ; next: {UNREACHABLE.action}" in log


def test_outcome_rows_never_become_status_rows(tmp_path: Path) -> None:
    """An unreachable node in a changing command's report leaves every row in the outcome
    columns: the layout is the command's."""
    report = RunReport("remove-node", "c", "inv.yml", nodes=[
        NodeReport("cp-1", "control-plane", "a", Outcome.UNCHANGED),
        NodeReport("cp-3", "control-plane", "c", Outcome.UNREACHABLE, message="refused",
                   next_step=UNREACHABLE),
    ])
    plain, doc, _ = render(report, tmp_path)
    assert plain.splitlines()[0].split() == ["NODE", "ROLE", "RESULT", "PHASE", "TIME",
                                             "VERSION", "MESSAGE", "NEXT"]
    assert row_of(plain, "cp-1") == ["cp-1", "control-plane", "unchanged"]
    assert [n["details"] for n in doc["nodes"]] == [{}, {}]  # type: ignore[index]


def test_no_next_column_when_nothing_failed(tmp_path: Path) -> None:
    report = RunReport("add-node", "c", "inv.yml",
                       nodes=[NodeReport("w-1", "worker", "a", Outcome.OK)])
    plain, doc, log = render(report, tmp_path)
    assert "NEXT" not in plain and "next:" not in log
    assert doc["nodes"][0]["next"] is None  # type: ignore[index]


def test_etcd_rows_in_their_columns(tmp_path: Path) -> None:
    healthy = MemberHealth("cp-1", True, "", EndpointStatus(0xA1, 0xA1, "3.5.15", 20480, 4),
                           (MemberInfo(0xA1, "cp-1", ("https://10.0.0.1:2380",)),))
    report = RunReport("etcd status", "c", "inv.yml", layout=Layout.ETCD, nodes=[
        NodeReport("cp-1", "control-plane", "a", Outcome.UNCHANGED, row=EtcdRow(healthy)),
        NodeReport("cp-2", "control-plane", "b", Outcome.FAILED,
                   row=EtcdRow(MemberHealth("cp-2", False, "etcd pod not running")),
                   message="etcd pod not running"),
        NodeReport("w-1", "worker", "c", Outcome.UNCHANGED),
    ])
    plain, doc, _ = render(report, tmp_path)
    assert plain.splitlines()[0].split() == ["NODE", "ROLE", "RESULT", "MEMBER", "LEADER", "DB",
                                             "BYTES", "ETCD", "VER", "MEMBERS", "HEALTH"]
    assert row_of(plain, "cp-1") == ["cp-1", "control-plane", "unchanged", "a1", "yes", "20480",
                                     "3.5.15", "1", "healthy"]
    assert row_of(plain, "cp-2")[3:] == ["unhealthy:", "etcd", "pod", "not", "running"]
    assert row_of(plain, "w-1") == ["w-1", "worker", "unchanged"]
    assert doc["nodes"][0]["details"]["etcd"]["leader"] is True  # type: ignore[index]


def test_certificate_rows_after_the_outcomes(tmp_path: Path) -> None:
    cert = CertificateRow("apiserver", False, NOW + timedelta(days=5), 5, "ca", False, False)
    ca = CertificateRow("ca", True, NOW + timedelta(days=3000), 3000, None, False, False)
    row = CertsRow(CertSummary((), cert.expires, 5, ca.expires, 3000), [cert, ca])
    report = RunReport("certs check", "c", "inv.yml", layout=Layout.CERTIFICATES, nodes=[
        NodeReport("cp-1", "control-plane", "a", Outcome.FAILED, row=row,
                   message="1 certificate(s) expire within 30 days: apiserver (5d)")])
    plain, doc, _ = render(report, tmp_path)
    lines = plain.splitlines()
    assert lines[0].split()[:3] == ["NODE", "ROLE", "RESULT"]
    cert_header = next(i for i, line in enumerate(lines) if line.startswith("NODE  CERTIFICATE"))
    assert lines[cert_header + 1].split()[:2] == ["cp-1", "apiserver"]
    assert lines[cert_header + 2].split()[:3] == ["cp-1", "ca", "(CA)"]
    details = doc["nodes"][0]["details"]  # type: ignore[index]
    assert details["certsDaysLeft"] == 5 and details["caDaysLeft"] == 3000
    assert [c["name"] for c in details["certificates"]] == ["apiserver", "ca"]
    assert details["certificates"][1]["signedBy"] is None
