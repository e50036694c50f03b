"""The lab's fault switches for kubeadm: fail in a named phase once, or hang.

``/lab/faults/kubeadm-fail`` holds a phase name; the next ``kubeadm init`` or ``join`` that
reaches that phase fails there with kubeadm's own text for it, and the switch is consumed.
``/lab/faults/kubeadm-hang`` makes the next init or join hang until it is killed: at the first
phase it reaches (the file says ``hang``), or at the phase it names (``PHASE [LINES]``), after
printing LINES lines of what kubeadm ``--v=5`` prints while it polls the API server. A real
init prints 60-80 lines; a chatty one that hangs shows what a reader of a long log must handle.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from k8sdouble import env, kubeadmtexts
from k8sdouble.errors import PhaseError

# What kubeadm says when each phase fails (the cause it reports most often).
TEXTS = {
    "preflight": kubeadmtexts.preflight_errors([("Port-10250", "Port 10250 is in use")]),
    "certs": 'error creating PKI assets: failure loading ca certificate authority: couldn\'t '
             'load the certificate file /etc/kubernetes/pki/ca.crt: open '
             '/etc/kubernetes/pki/ca.crt: permission denied',
    "kubeconfig": 'failed to create kubeconfig file "/etc/kubernetes/admin.conf": '
                  'open /etc/kubernetes/admin.conf: permission denied',
    "etcd": 'error creating local etcd static pod manifest file: failed to create the '
            'manifest directory: permission denied',
    "control-plane": 'failed to create static pod manifest file for "kube-apiserver": '
                     'permission denied',
    "kubelet-start": "error waiting for kubelet to perform the TLS Bootstrap: timed out "
                     "waiting for the condition",
    "wait-control-plane": "couldn't initialize a Kubernetes cluster",
    "upload-config": 'error uploading the kubeadm ClusterConfiguration: unable to create '
                     'ConfigMap: etcdserver: request timed out',
    "upload-certs": "error uploading certs: error creating secret: etcdserver: request timed out",
    "mark-control-plane": "error applying control-plane label and taints: timed out waiting "
                          "for the condition",
    "bootstrap-token": "error updating or creating token: failed to create or update bootstrap "
                       "token with name bootstrap-token-abcdef: etcdserver: request timed out",
    "kubelet-finalize": "error reading kubelet client certificate: open "
                        "/var/lib/kubelet/pki/kubelet-client-current.pem: no such file",
    "addon": "unable to create a new DNS service: etcdserver: request timed out",
    "control-plane-prepare": "error downloading certs: error downloading the secret: "
                             "etcdserver: request timed out",
    "control-plane-join": "error creating local etcd static pod manifest file: timeout waiting "
                          "for etcd cluster to be available",
}
WAIT_CONTROL_PLANE_HELP = """
Unfortunately, an error has occurred:
\ttimed out waiting for the condition

This error is likely caused by:
\t- The kubelet is not running
\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)

If you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:
\t- 'systemctl status kubelet'
\t- 'journalctl -xeu kubelet'
"""


def check(phase: str) -> None:
    """Fail here if the fail switch names this phase (consuming it); hang if told to."""
    _hang_if_told(phase)
    switch = env.path(env.FAULT_FAIL)
    try:
        wanted = switch.read_text().strip()
    except OSError:
        return
    if wanted != phase:
        return
    switch.unlink(missing_ok=True)
    if phase == "wait-control-plane":
        print(WAIT_CONTROL_PLANE_HELP, flush=True)
    raise PhaseError(phase, TEXTS.get(phase, "timed out waiting for the condition"))


def _hang_if_told(phase: str) -> None:
    """Hang here (for good) if the hang switch says so, consuming it; else return."""
    hang = env.path(env.FAULT_HANG)
    try:
        words = hang.read_text().split()
    except OSError:
        return
    at = words[0] if words and words[0] != "hang" else phase
    if at != phase:
        return
    hang.unlink(missing_ok=True)
    for _ in range(int(words[1]) if len(words) > 1 else 0):
        print(_poll_line(), flush=True)
    while True:
        time.sleep(3600)


def _poll_line() -> str:
    """One klog line of kubeadm polling the API server's health."""
    now = datetime.now(UTC)
    return (f"I{now:%m%d} {now:%H:%M:%S.%f} {os.getpid():>7} round_trippers.go:553] GET "
            f"https://{env.node().address}:{env.API_PORT}/healthz?timeout=10s  in 0 milliseconds")
