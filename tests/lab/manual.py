"""The image README's manual steps, with plain ``ssh`` and ``ctr`` only: what an operator types
to make a cluster of LinuxKit nodes by hand. End-to-end tests use them to prove the lab (and
the doubles in it) behave like the real thing without any help from k8slk-ops."""

from __future__ import annotations

import shlex
import subprocess
from itertools import count

from tests.lab.lab import Lab

CTR = "ctr --namespace services.linuxkit"
# The CA pin, computed on the node with the reference's openssl pipeline (`pkey` rather than
# `rsa` so that it also works for an ECDSA CA).
CA_PIN = (
    "openssl x509 -pubkey -in /etc/kubernetes/pki/ca.crt | "
    "openssl pkey -pubin -outform der 2>/dev/null | "
    "openssl dgst -sha256 -hex | sed 's/^.* //'"
)
_ids = count(1)


def in_kubelet(
    lab: Lab, node: str, script: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``ssh NODE ctr ... tasks exec --exec-id ID kubelet sh -c SCRIPT`` (a fresh ID each)."""
    exec_id = f"manual-{next(_ids)}"
    return lab.ssh(
        node,
        f"{CTR} tasks exec --exec-id {exec_id} kubelet sh -c {shlex.quote(script)}",
        input=input,
    )


def write_config(lab: Lab, node: str, text: str) -> None:
    out = in_kubelet(lab, node, "cat > /run/kubeadm.yaml", input=text)
    assert out.returncode == 0, out.stderr


def trigger(lab: Lab, node: str, flag: str) -> None:
    out = in_kubelet(lab, node, f"echo {shlex.quote(flag)} > /run/kubeadm-run")
    assert out.returncode == 0, out.stderr


def init_config(lab: Lab, node: str = "cp-1", version: str = "v1.31.3") -> str:
    address = lab.node(node).address
    return f"""apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {address}
  bindPort: 6443
nodeRegistration:
  name: {node}
  criSocket: unix:///var/run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
clusterName: lab
controlPlaneEndpoint: {address}:6443
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
"""


def join_config(
    lab: Lab,
    node: str,
    token: str,
    pin: str,
    endpoint: str,
    certificate_key: str | None = None,
) -> str:
    text = f"""apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "{endpoint}"
    token: {token}
    caCertHashes:
    - "{pin}"
    unsafeSkipCAVerification: false
nodeRegistration:
  name: {node}
"""
    if certificate_key is not None:
        text += f"""controlPlane:
  localAPIEndpoint:
    advertiseAddress: {lab.node(node).address}
    bindPort: 6443
  certificateKey: "{certificate_key}"
"""
    return text


def init(lab: Lab, node: str = "cp-1") -> list[str]:
    """Init the first control plane and follow its log to the end."""
    write_config(lab, node, init_config(lab, node))
    trigger(lab, node, "init")
    lines = lab.follow(node, "kubeadm has completed")
    lab.wait_task_stopped(node)  # kubeadm.sh removes the config after its last log line
    return lines


def create_token(lab: Lab, node: str = "cp-1") -> str:
    out = in_kubelet(lab, node, "kubeadm token create --ttl 10m")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def ca_pin(lab: Lab, node: str = "cp-1") -> str:
    out = in_kubelet(lab, node, CA_PIN)
    assert out.returncode == 0, out.stderr
    return "sha256:" + out.stdout.strip()


def join(lab: Lab, node: str, token: str, pin: str, endpoint: str) -> None:
    write_config(lab, node, join_config(lab, node, token, pin, endpoint))
    trigger(lab, node, "join")


def apply_pod_network(lab: Lab, node: str = "cp-1") -> None:
    """The image README's "kubectl apply -f [podnetwork].yaml": the lab's CNI manifest, on
    stdin to the kubectl in the node's kubelet container."""
    from tests.lab.inventory import CNI_MANIFEST

    out = in_kubelet(lab, node, "kubectl apply -f -", input=CNI_MANIFEST.read_text())
    if out.returncode != 0:
        raise AssertionError(f"kubectl apply of the pod network failed: {out.stderr}")
