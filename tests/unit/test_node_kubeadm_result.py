"""How a triggered kubeadm run ended, decided from the node's whole log once its task stopped
(``stopped_result``, pure: the same state machine the live follow feeds)."""

from __future__ import annotations

from k8slk_ops.kubeadm import COMPLETED_LINE, SETTLING_LINE, WAITING_LINE
from k8slk_ops.node.linuxkit import stopped_result


def log(message: str) -> str:
    return f"2026-11-26T07:00:00Z kubeadm.out {message}"


START = [log(WAITING_LINE), log(SETTLING_LINE)]


def test_a_completed_run_is_ok_and_keeps_kubeadms_output() -> None:
    result = stopped_result([
        *START,
        log("Found kubeadm flag init"),
        log("kubeadm join 10.0.0.11:6443 --token abcdef.0123456789abcdef \\"),
        log("\t--discovery-token-ca-cert-hash sha256:" + "a" * 64 + " "),
        log(COMPLETED_LINE),
    ])
    assert result.ok and result.reason == "completed"
    assert result.output[0].startswith("kubeadm join 10.0.0.11:6443")  # init parses these
    assert result.tail()[-1] == COMPLETED_LINE


def test_a_stop_without_the_completed_line_fails_with_kubeadms_reason() -> None:
    result = stopped_result([
        *START,
        log("Found kubeadm flag join"),
        log("[preflight] Running pre-flight checks"),
        log("error execution phase kubelet-start: timed out waiting for the condition"),
    ])
    assert not result.ok
    assert "kubelet-start" in result.reason
    assert result.tail()[-1].startswith("error execution phase kubelet-start")


def test_a_bad_token_is_named_as_such() -> None:
    result = stopped_result([
        *START,
        log("Found kubeadm flag join"),
        log("error execution phase preflight: couldn't validate the identity of the API Server: "
            'could not find a JWS signature in the cluster-info ConfigMap for token ID "abcdef"'),
    ])
    assert not result.ok and "bad token" in result.reason and "expired" in result.reason


def test_a_stop_before_kubeadm_ran_and_an_empty_log() -> None:
    assert "before kubeadm ran" in stopped_result(START).reason
    assert "without a line" in stopped_result([]).reason


def test_unknown_flag_and_already_configured() -> None:
    unknown = stopped_result([*START, log("Unknown kubeadm flag joni")])
    assert not unknown.ok and "joni" in unknown.reason
    configured = stopped_result([log("Kubernetes Node already has kubelet configuration")])
    assert not configured.ok and "already has kubelet configuration" in configured.reason


def test_a_late_line_after_a_restart_belongs_to_the_new_attempt() -> None:
    first = [*START, log("Found kubeadm flag join"), log("error execution phase preflight: x")]
    result = stopped_result([*first, *START])  # the task ran again and stopped while settling
    assert not result.ok and "before kubeadm ran" in result.reason
