"""Preflight lines and the short reason of a failed kubeadm run."""

from __future__ import annotations

from k8slk_ops.kubeadm import (
    FailureKind,
    Severity,
    classify_kubeadm_error,
    diagnose_kubeadm_error,
    parse_preflight_errors,
)

FRAME = "[preflight] Some fatal errors occurred:\n"
IGNORE = (
    "[preflight] If you know what you are doing, you can make a check non-fatal with "
    "`--ignore-preflight-errors=...`\n"
)
STACK = "To see the stack trace of this error execute with --v=5 or higher\n"

TAIL_OLD = (
    "[preflight] Running pre-flight checks\n"
    "\t[WARNING Swap]: swap is enabled; production deployments should disable swap\n"
    "error execution phase preflight: " + FRAME + "\t[ERROR Mem]: the system RAM (621 MB) is "
    "less than the minimum 1700 MB\n"
    "\t[ERROR NumCPU]: the number of available CPUs 1 is less than the required 2\n"
    "\t[ERROR Port-10250]: Port 10250 is in use\n"
    "\t[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf "
    "already exists\n"
    "\t[ERROR DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty\n" + IGNORE + STACK
)

TAIL_NEW = (
    FRAME + "\t[ERROR Mem]: the system RAM (621 MB) is less than the minimum 1700 MB\n"
    "\t[ERROR CRI]: container runtime is not running\n"
    + IGNORE
    + "error: error execution phase preflight: preflight checks failed\n"
    + STACK
)


def test_preflight_old_tail() -> None:
    issues = parse_preflight_errors(TAIL_OLD)
    assert [(i.severity, i.check) for i in issues] == [
        (Severity.WARNING, "Swap"),
        (Severity.ERROR, "Mem"),
        (Severity.ERROR, "NumCPU"),
        (Severity.ERROR, "Port-10250"),
        (Severity.ERROR, "FileAvailable--etc-kubernetes-kubelet.conf"),
        (Severity.ERROR, "DirAvailable--var-lib-etcd"),
    ]
    assert issues[1].message == "the system RAM (621 MB) is less than the minimum 1700 MB"
    assert issues[3].message == "Port 10250 is in use"
    assert issues[1].fatal and not issues[0].fatal


def test_preflight_new_tail_and_lists() -> None:
    assert [i.check for i in parse_preflight_errors(TAIL_NEW)] == ["Mem", "CRI"]
    assert parse_preflight_errors(TAIL_NEW.splitlines()) == parse_preflight_errors(TAIL_NEW)
    assert parse_preflight_errors("all good\n") == []


def test_classify_preflight() -> None:
    for tail in (TAIL_OLD, TAIL_NEW):
        failure = diagnose_kubeadm_error(tail)
        assert failure.kind is FailureKind.PREFLIGHT
        assert failure.phase == "preflight"
        assert "[Mem] the system RAM (621 MB)" in failure.reason
        assert "Swap" not in failure.reason


def test_classify_bad_token() -> None:
    lines = [
        "[preflight] Running pre-flight checks",
        "error execution phase preflight: couldn't validate the identity of the API Server: "
        'could not find a JWS signature in the cluster-info ConfigMap for token ID "5xf60f"',
        STACK.strip(),
    ]
    failure = diagnose_kubeadm_error(lines)
    assert failure.kind is FailureKind.BAD_TOKEN
    assert "5xf60f" in failure.reason and failure.phase == "preflight"
    assert classify_kubeadm_error(lines) == failure.reason


def test_classify_ca_pin_mismatch() -> None:
    pin = "sha256:" + "1f" * 32
    text = (
        "error execution phase preflight: couldn't validate the identity of the API Server: "
        f'cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "{pin}" '
        "are pinned\n"
    )
    failure = diagnose_kubeadm_error(text)
    assert failure.kind is FailureKind.CA_PIN_MISMATCH
    assert pin in failure.reason


def test_classify_certificate_key_expired() -> None:
    text = (
        "error execution phase control-plane-prepare/download-certs: error downloading certs: "
        'error downloading the secret: Secret "kubeadm-certs" was not found in the "kube-system" '
        "Namespace. This Secret might have expired. Please, run `kubeadm init phase upload-certs "
        "--upload-certs` on a control plane to generate a new one\n"
    )
    failure = diagnose_kubeadm_error(text)
    assert failure.kind is FailureKind.CERTIFICATE_KEY
    assert failure.phase == "control-plane-prepare/download-certs"


def test_classify_phase_and_fallbacks() -> None:
    text = (
        "[kubelet-check] Initial timeout of 40s passed.\n"
        "error execution phase wait-control-plane: couldn't initialize a Kubernetes cluster\n"
        + STACK
    )
    failure = diagnose_kubeadm_error(text)
    assert failure.kind is FailureKind.PHASE
    assert failure.phase == "wait-control-plane"
    assert failure.reason == (
        "failed in phase wait-control-plane: couldn't initialize a Kubernetes cluster"
    )
    logged = "\n".join(f"2024-01-01T00:00:00Z kubeadm.out {x}" for x in text.splitlines())
    assert diagnose_kubeadm_error(logged) == failure
    assert classify_kubeadm_error([]) == "kubeadm failed without output"
    assert classify_kubeadm_error(["something odd"]) == "kubeadm failed: something odd"
    other = diagnose_kubeadm_error("unable to fetch config: dial tcp refused\nbye\n")
    assert other.kind is FailureKind.OTHER
    assert other.reason == "kubeadm failed: unable to fetch config: dial tcp refused"
    assert len(classify_kubeadm_error(["error " + "x" * 1000])) <= 300
