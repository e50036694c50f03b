"""Why kubeadm failed, from what it printed: preflight checks and a short reason.

The reason goes into the run report next to the node's last log lines, so it names what an
operator acts on: mint a new token, check the CA pin, re-upload the certificates, free a port.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from k8slk_ops.base.nextstep import REBOOT, NextStep, Rerun
from k8slk_ops.kubeadm.logs import log_message
from k8slk_ops.kubeadm.summary import SUMMARY_CHARS, clip

_CHECK_RE = re.compile(r"\A\s*\[(?P<severity>ERROR|WARNING) (?P<check>[^\]]+)\]:?\s?(?P<text>.*)\Z")
_PHASE_RE = re.compile(r"error execution phase (?P<phase>[\w./-]+)(?::\s*(?P<rest>.*))?")
_TOKEN_RE = re.compile(
    r'could not find a JWS signature in the cluster-info ConfigMap for token ID "(?P<id>[^"]*)"'
)
_TOKEN_OLD_RE = re.compile(
    r'token id "(?P<id>[^"]*)" is invalid for this cluster or it has expired'
)
_PIN_RE = re.compile(r'none of the public keys "(?P<keys>[^"]*)" are pinned')
_CERT_KEY_RES = (
    re.compile(r'Secret "kubeadm-certs" was not found'),
    re.compile(r"This Secret might have expired"),
    re.compile(r"error downloading the secret"),
    re.compile(r"error decoding certificate key"),
    re.compile(r"couldn't decrypt|message authentication failed"),
)
_ERRORISH_RE = re.compile(
    r"error|fail|fatal|unable|refused|timed out|cannot|couldn't|denied", re.IGNORECASE
)
# The phases that wait for the kubelet (its TLS bootstrap, the static pods it starts), and how
# kubeadm says such a wait ran out.
_KUBELET_PHASES = frozenset({"kubelet-start", "wait-control-plane"})
_TIMED_OUT_RE = re.compile(r"timed out waiting for the condition|context deadline exceeded")
# How kubeadm's error lines begin (after the log prefix and indentation): the live follow of a
# trigger checks the task at once when one shows up.
ERROR_STARTS = ("error execution phase", "error: ", "[ERROR ")


class Severity(enum.StrEnum):
    ERROR = "ERROR"
    WARNING = "WARNING"


@dataclass(frozen=True)
class PreflightIssue:
    """One ``[ERROR Name]: text`` or ``[WARNING Name]: text`` line."""

    severity: Severity
    check: str
    message: str

    @property
    def fatal(self) -> bool:
        return self.severity is Severity.ERROR


class FailureKind(enum.StrEnum):
    BAD_TOKEN = "bad-token"
    CA_PIN_MISMATCH = "ca-pin-mismatch"
    CERTIFICATE_KEY = "certificate-key"
    PREFLIGHT = "preflight"
    KUBELET_TIMEOUT = "kubelet-timeout"
    PHASE = "phase"
    OTHER = "other"


@dataclass(frozen=True)
class KubeadmFailure:
    """What went wrong: a kind to branch on, the phase if kubeadm named it, a short reason, and
    the failed preflight checks (for a preflight failure)."""

    kind: FailureKind
    reason: str
    phase: str | None = None
    checks: tuple[PreflightIssue, ...] = ()

    def next_step(self, rerun: Rerun) -> NextStep:
        """What the operator does about this failure on ``rerun.node``.

        kubeadm runs once per boot on a LinuxKit node, so every retry goes through a reboot; a
        failure past preflight (discovery included) has written files and a kubelet
        configuration, which ``reset`` removes first.
        """
        if self.kind is FailureKind.PREFLIGHT:
            fixes = [_check_fix(i, rerun) for i in self.checks] or ["fix what preflight says"]
            return NextStep.then(f"{'; '.join(fixes)}; {REBOOT}", rerun.join)
        if self.kind is FailureKind.BAD_TOKEN:
            return NextStep.then(
                "the token expired before the node used it (a slow boot or a long run): "
                f"{REBOOT}; the run mints a fresh token", rerun.join)
        if self.kind is FailureKind.CA_PIN_MISMATCH:
            return NextStep.then(
                "the API server the node reached is not this cluster's (its CA key is not the "
                "pinned one): check that controlPlaneEndpoint and the control planes' addresses "
                f"in {rerun.inventory} reach this cluster and nothing intercepts them; "
                f"{REBOOT}", rerun.join)
        if self.kind is FailureKind.CERTIFICATE_KEY:
            return NextStep.then(
                f"reset the node (`{rerun.reset()}`) and {REBOOT}; the run uploads the "
                "certificates again", rerun.join)
        if self.kind is FailureKind.KUBELET_TIMEOUT:
            return NextStep.then(
                "the kubelet did not come up: read /var/log/kubelet.log on the node (a "
                "misconfiguration, too little memory, a pod network that never started), fix "
                f"it, reset the node (`{rerun.reset()}`) and {REBOOT}", rerun.join)
        return NextStep.then(
            f"fix what kubeadm said (the log tail above), reset the node (`{rerun.reset()}`) "
            f"and {REBOOT}", rerun.join)


def _check_fix(issue: PreflightIssue, rerun: Rerun) -> str:
    """What fixes one failed preflight check (kubeadm's check names, v1.15 to v1.34+)."""
    check = issue.check
    if check == "Mem":
        return f"give the node more memory ({issue.message})"
    if check == "NumCPU":
        return f"give the node more CPUs ({issue.message})"
    if check == "Swap":
        return "turn swap off on the node (the kubelet does not run with swap on)"
    if check.startswith("Port-"):
        return (f"free port {check.removeprefix('Port-')} on the node (an earlier Kubernetes "
                f"holds it: `{rerun.reset()}`)")
    if check.startswith(("FileAvailable--", "DirAvailable--")):
        return f"remove what an earlier kubeadm left ({issue.message}): `{rerun.reset()}`"
    return f"fix [{check}]: {issue.message}"


def _strip(line: str) -> str:
    """The line without a node log prefix and without its line end."""
    return log_message(line.rstrip("\r\n"))


def looks_like_error(line: str) -> bool:
    """Whether a log line is one of kubeadm's error lines (a failure is likely to follow)."""
    return _strip(line).lstrip().startswith(ERROR_STARTS)


def _lines(output: str | Iterable[str]) -> list[str]:
    if isinstance(output, str):
        return [_strip(line) for line in output.splitlines()]
    return [_strip(line) for chunk in output for line in (chunk.splitlines() or [""])]


def parse_preflight_errors(output: str | Iterable[str]) -> list[PreflightIssue]:
    """Every preflight check line in ``output`` (either tail form, v1.15 to v1.34+)."""
    issues = []
    for line in _lines(output):
        m = _CHECK_RE.match(line)
        if m is not None:
            issues.append(
                PreflightIssue(Severity(m["severity"]), m["check"].strip(), m["text"].strip())
            )
    return issues


def _short(text: str) -> str:
    return clip(text, SUMMARY_CHARS)


def diagnose_kubeadm_error(output: str | Iterable[str]) -> KubeadmFailure:
    """The most telling failure in ``output``: a known cause first, then the failed phase."""
    lines = _lines(output)
    text = "\n".join(lines)
    phase_m = None
    for line in lines:
        m = _PHASE_RE.search(line)
        if m is not None:
            phase_m = m
    phase = phase_m["phase"] if phase_m is not None else None
    m = _TOKEN_RE.search(text) or _TOKEN_OLD_RE.search(text)
    if m is not None:
        return KubeadmFailure(
            FailureKind.BAD_TOKEN,
            f"bad token (ID {m['id']!r}): unknown to the cluster or expired before discovery",
            phase,
        )
    m = _PIN_RE.search(text)
    if m is not None:
        return KubeadmFailure(
            FailureKind.CA_PIN_MISMATCH,
            f"CA pin mismatch: the cluster's CA key {m['keys']} is not the pinned one",
            phase,
        )
    if any(r.search(text) for r in _CERT_KEY_RES):
        return KubeadmFailure(
            FailureKind.CERTIFICATE_KEY,
            "certificate key expired or wrong: the uploaded certificates (kubeadm-certs, "
            "2 h) are gone or do not match; upload them again",
            phase,
        )
    errors = [i for i in parse_preflight_errors(lines) if i.fatal]
    if errors:
        detail = "; ".join(f"[{i.check}] {i.message}" for i in errors)
        return KubeadmFailure(FailureKind.PREFLIGHT, _short(f"preflight: {detail}"), "preflight",
                              tuple(errors))
    if phase_m is not None:
        rest = phase_m["rest"] or ""
        reason = f"failed in phase {phase}" + (f": {rest}" if rest else "")
        kind = FailureKind.PHASE
        if phase in _KUBELET_PHASES and _TIMED_OUT_RE.search(text):
            kind = FailureKind.KUBELET_TIMEOUT
        return KubeadmFailure(kind, _short(reason), phase)
    for line in reversed(lines):
        if _ERRORISH_RE.search(line):
            return KubeadmFailure(FailureKind.OTHER, _short(f"kubeadm failed: {line.strip()}"))
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    reason = f"kubeadm failed: {last}" if last else "kubeadm failed without output"
    return KubeadmFailure(FailureKind.OTHER, _short(reason))


def classify_kubeadm_error(output: str | Iterable[str]) -> str:
    """A short reason for a failed kubeadm run (see :func:`diagnose_kubeadm_error`)."""
    return diagnose_kubeadm_error(output).reason
