"""The lab's kubeadm, kubectl and kubelet doubles, run as processes on simulated node roots.

Each simulated node is a temporary directory used as the doubles' root (env ``LAB_ROOT``) with
its own loopback address; the kubelet double runs in the background as kubelet.sh would start
it, and with it the API double. No container is involved, so these run anywhere Debian's
python3 with cryptography and PyYAML is installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

DOUBLES = Path(__file__).resolve().parents[1] / "lab" / "doubles"
PYTHON = "/usr/bin/python3"
STACK = "To see the stack trace of this error execute with --v=5 or higher"

pytestmark = pytest.mark.skipif(
    not Path(PYTHON).exists() or subprocess.run(
        [PYTHON, "-c", "import cryptography, yaml"], capture_output=True).returncode != 0,
    reason="Debian's python3 with cryptography and yaml is needed",
)


def free_address() -> str:
    """A loopback address with nothing on port 6443 (labs use 127.0.S.N with small S)."""
    for _ in range(100):
        addr = f"127.{random.randint(180, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"
        with socket.socket() as s:
            try:
                s.bind((addr, 6443))
            except OSError:
                continue
            return addr
    raise RuntimeError("no free loopback address")


class Node:
    """A simulated node: a root directory, an identity, and its background kubelet."""

    def __init__(self, root: Path, name: str, role: str, version: str = "v1.31.3",
                 strict_network: bool = False) -> None:
        self.root = root
        self.name = name
        self.address = free_address()
        self.kubelet: subprocess.Popen[bytes] | None = None
        (root / "lab").mkdir(parents=True)
        (root / "tmp").mkdir()
        # As in the lab: every node's /lab/etcd is one directory, the store etcd would replicate.
        shared = root.parent / "etcd"
        shared.mkdir(exist_ok=True)
        (root / "lab/etcd").symlink_to(shared)
        (root / "lab/node.json").write_text(json.dumps({
            "name": name, "address": self.address, "role": role, "kubernetesVersion": version,
            "settleSeconds": 0, "readyDelay": 0.3, "strictNetwork": strict_network,
        }))

    @property
    def env(self) -> dict[str, str]:
        return {"LAB_ROOT": str(self.root), "KUBECONFIG": "/etc/kubernetes/admin.conf",
                "PATH": os.environ["PATH"], "TMPDIR": str(self.root / "tmp")}

    def run(self, tool: str, *args: str, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PYTHON, str(DOUBLES / "bin" / tool), *args], env=self.env,
                              capture_output=True, text=True, input=input, timeout=timeout)

    def start_kubelet(self) -> None:
        """As kubelet.sh does: wait for the marker, then exec kubelet (in its own group)."""
        marker = self.root / "var/lib/kubelet/config.yaml"
        script = (f'while [ ! -e "{marker}" ]; do sleep 0.05; done; '
                  f'exec {PYTHON} {DOUBLES / "bin/kubelet"}')
        self.kubelet = subprocess.Popen(["sh", "-c", script], env=self.env,
                                        stdout=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.kubelet is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.kubelet.pid, signal.SIGKILL)
            self.kubelet.wait()

    def write(self, path: str, text: str) -> str:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return path

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Any]:
    made: list[Node] = []

    def make(name: str, role: str = "worker", version: str = "v1.31.3",
             strict_network: bool = False) -> Node:
        node = Node(tmp_path / name, name, role, version, strict_network)
        made.append(node)
        return node

    yield make
    for node in made:
        node.stop()


def init_config(node: Node, extra: str = "") -> str:
    return f"""apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {node.address}
  bindPort: 6443
nodeRegistration:
  name: {node.name}
{extra}---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.3
clusterName: lab
controlPlaneEndpoint: {node.address}:6443
apiServer:
  certSANs: [lb.example.test, 10.9.8.7]
"""


def join_config(node: Node, endpoint: str, token: str, pin: str | None,
                certificate_key: str | None = None) -> str:
    pins = f'    caCertHashes: ["{pin}"]\n' if pin else "    unsafeSkipCAVerification: true\n"
    text = f"""apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "{endpoint}"
    token: {token}
{pins}nodeRegistration:
  name: {node.name}
"""
    if certificate_key:
        text += f"""controlPlane:
  localAPIEndpoint: {{advertiseAddress: {node.address}, bindPort: 6443}}
  certificateKey: "{certificate_key}"
"""
    return text


def pin_of(node: Node) -> str:
    import hashlib

    cert = x509.load_pem_x509_certificate(node.file("/etc/kubernetes/pki/ca.crt").read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def wait_for(predicate: Any, timeout: float = 30) -> Any:
    """Poll a condition the doubles offer no event for (the API's node list)."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def ready(node: Node) -> dict[str, str]:
    out = node.run("kubectl", "get", "nodes", "-o", "json")
    if out.returncode != 0:
        return {}
    return {i["metadata"]["name"]: next(c["status"] for c in i["status"]["conditions"]
                                        if c["type"] == "Ready")
            for i in json.loads(out.stdout)["items"]}


@pytest.fixture
def cluster(nodes: Any) -> tuple[Node, str, str, str]:
    """An initialised control plane: (node, init output, token, pin)."""
    cp = nodes("cp-1", "control-plane")
    cp.start_kubelet()
    path = cp.write("/run/kubeadm.yaml", init_config(cp))
    out = cp.run("kubeadm", "init", "--config", path)
    assert out.returncode == 0, out.stdout + out.stderr
    token = cp.run("kubeadm", "token", "create", "--ttl", "10m").stdout.strip()
    return cp, out.stdout, token, pin_of(cp)


def test_init_makes_real_certificates_and_the_marker(cluster: tuple[Node, str, str, str]) -> None:
    cp, output, _, pin = cluster
    assert "Your Kubernetes control-plane has initialized successfully!" in output
    assert f"--discovery-token-ca-cert-hash {pin} \n" in output + "\n"
    assert re.search(r"\[bootstrap-token\] Using token: [a-z0-9]{6}\.[a-z0-9]{16}", output)
    assert cp.file("/var/lib/kubelet/config.yaml").exists()
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-enddate", "-ext", "subjectAltName",
         "-in", str(cp.file("/etc/kubernetes/pki/apiserver.crt"))],
        capture_output=True, text=True, check=True).stdout
    assert "kube-apiserver" in text and "notAfter=" in text
    for san in (cp.address, "10.96.0.1", "lb.example.test", "10.9.8.7", "kubernetes.default"):
        assert san in text
    admin = yaml.safe_load(cp.file("/etc/kubernetes/admin.conf").read_text())
    assert admin["clusters"][0]["cluster"]["server"] == f"https://{cp.address}:6443"
    assert oct(cp.file("/etc/kubernetes/pki/ca.key").stat().st_mode & 0o777) == "0o600"


def test_control_plane_node_turns_ready(cluster: tuple[Node, str, str, str]) -> None:
    cp = cluster[0]
    assert wait_for(lambda: ready(cp).get("cp-1") == "True")
    table = cp.run("kubectl", "get", "nodes").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert table[1].split()[:3] == ["cp-1", "Ready", "control-plane"]


def test_worker_joins_with_token_and_pin(nodes: Any, cluster: tuple[Node, str, str, str]) -> None:
    cp, _, token, pin = cluster
    w = nodes("w-1")
    w.start_kubelet()
    path = w.write("/run/kubeadm.yaml", join_config(w, f"{cp.address}:6443", token, pin))
    out = w.run("kubeadm", "join", "--config", path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "This node has joined the cluster:" in out.stdout
    assert w.file("/var/lib/kubelet/config.yaml").exists()
    assert wait_for(lambda: ready(cp).get("w-1") == "True")
    assert cp.run("kubectl", "get", "nodes").stdout.count("<none>") == 1


@pytest.mark.parametrize("case", ["token", "pin", "endpoint"])
def test_join_discovery_failures(nodes: Any, cluster: tuple[Node, str, str, str],
                                 case: str) -> None:
    cp, _, token, pin = cluster
    w = nodes("w-2")
    endpoint = f"{cp.address}:6443"
    if case == "token":
        token = "zzzzzz.0123456789abcdef"
        expected = ('could not find a JWS signature in the cluster-info ConfigMap for token ID '
                    '"zzzzzz"')
    elif case == "pin":
        actual, pin = pin, "sha256:" + "0" * 64
        expected = f'none of the public keys "{actual}" are pinned'
    else:
        endpoint = f"{free_address()}:6443"
        expected = f"dial tcp {endpoint}: connect: connection refused"
    path = w.write("/run/kubeadm.yaml", join_config(w, endpoint, token, pin))
    out = w.run("kubeadm", "join", "--config", path)
    assert out.returncode == 1
    assert "error execution phase preflight: couldn't validate the identity of the API Server" \
        in out.stderr
    assert expected in out.stderr
    assert out.stderr.rstrip().endswith(STACK)
    assert not w.file("/var/lib/kubelet/config.yaml").exists()


def test_control_plane_join_needs_the_uploaded_certificates(
        nodes: Any, cluster: tuple[Node, str, str, str]) -> None:
    cp, _, token, pin = cluster
    cp2 = nodes("cp-2", "control-plane")
    endpoint = f"{cp.address}:6443"
    key = "ab" * 32
    path = cp2.write("/run/kubeadm.yaml", join_config(cp2, endpoint, token, pin, key))
    out = cp2.run("kubeadm", "join", "--config", path)
    assert out.returncode == 1
    assert 'Secret "kubeadm-certs" was not found in the "kube-system" Namespace' in out.stderr

    up = cp.run("kubeadm", "init", "phase", "upload-certs", "--upload-certs")
    assert up.returncode == 0, up.stderr
    lines = up.stdout.splitlines()
    assert lines[1] == "[upload-certs] Using certificate key:"
    real_key = lines[2]
    assert re.fullmatch(r"[0-9a-f]{64}", real_key)
    out = cp2.run("kubeadm", "join", "--config", path)
    assert out.returncode == 1
    assert "error decoding secret data with provided key" in out.stderr

    cp2.start_kubelet()
    path = cp2.write("/run/kubeadm.yaml", join_config(cp2, endpoint, token, pin, real_key))
    out = cp2.run("kubeadm", "join", "--config", path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "a new control plane instance was created" in out.stdout
    assert pin_of(cp2) == pin  # the same CA, downloaded
    # Its own API double answers for the one cluster.
    assert wait_for(lambda: ready(cp2).get("cp-2") == "True")
    assert set(ready(cp2)) == {"cp-1", "cp-2"}
    tokens = cp.run("kubeadm", "token", "list").stdout
    assert "Proxy for managing TTL for the kubeadm-certs secret" in tokens


def test_fault_fails_init_in_the_named_phase(nodes: Any) -> None:
    cp = nodes("cp-1", "control-plane")
    cp.start_kubelet()
    cp.write("/lab/faults/kubeadm-fail", "wait-control-plane\n")
    path = cp.write("/run/kubeadm.yaml", init_config(cp))
    out = cp.run("kubeadm", "init", "--config", path)
    assert out.returncode == 1
    assert "error execution phase wait-control-plane: couldn't initialize a Kubernetes cluster" \
        in out.stderr
    assert "initialized successfully" not in out.stdout
    assert cp.file("/var/lib/kubelet/config.yaml").exists()  # kubelet-start ran before
    assert not cp.file("/lab/faults/kubeadm-fail").exists()  # one-shot


def test_hang_fault_prints_lines_then_hangs_in_the_named_phase(nodes: Any) -> None:
    cp = nodes("cp-1", "control-plane")
    cp.write("/lab/faults/kubeadm-hang", "preflight 120\n")
    path = cp.write("/run/kubeadm.yaml", init_config(cp))
    proc = subprocess.Popen([PYTHON, str(DOUBLES / "bin" / "kubeadm"), "init", "--config", path],
                            env=cp.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(121)]
        assert lines[0].startswith("[init] Using Kubernetes version: ")
        assert all(re.fullmatch(r"I\d{4} [\d:.]+ +\d+ round_trippers\.go:553\] GET "
                                rf"https://{re.escape(cp.address)}:6443/healthz\?timeout=10s  "
                                r"in 0 milliseconds\n", line) for line in lines[1:])
        assert proc.poll() is None  # hanging: nothing after preflight ran
        assert not cp.file("/etc/kubernetes/pki/ca.crt").exists()
        assert not cp.file("/lab/faults/kubeadm-hang").exists()  # one-shot
    finally:
        proc.kill()
        proc.wait()


def test_admin_conf_is_forbidden_until_init_binds_its_group(nodes: Any) -> None:
    """From v1.29 admin.conf's user is only in kubeadm:cluster-admins, which init binds to
    cluster-admin in upload-config: a kubectl with it between the API's health and that phase
    is refused by RBAC, as on a real node."""
    cp = nodes("cp-1", "control-plane")
    cp.start_kubelet()
    cp.write("/lab/faults/kubeadm-hang", "upload-config 0\n")
    path = cp.write("/run/kubeadm.yaml", init_config(cp))
    proc = subprocess.Popen([PYTHON, str(DOUBLES / "bin" / "kubeadm"), "init", "--config", path],
                            env=cp.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: not cp.file("/lab/faults/kubeadm-hang").exists())  # hanging there
        refused = cp.run("kubectl", "get", "nodes")
        assert refused.returncode == 1
        assert refused.stderr.endswith(
            'Error from server (Forbidden): nodes is forbidden: User "kubernetes-admin" cannot '
            'list resource "nodes" in API group "" at the cluster scope\n'), refused.stderr
        assert cp.run("kubectl", "version", "-o", "json").returncode == 0  # discovery is not
    finally:
        proc.kill()
        proc.wait()


def test_token_create_list_delete(cluster: tuple[Node, str, str, str]) -> None:
    cp, _, token, pin = cluster
    made = cp.run("kubeadm", "token", "create", "--ttl", "0", "--description", "forever",
                  "--print-join-command")
    assert made.returncode == 0, made.stderr
    line = made.stdout.rstrip("\n")
    m = re.fullmatch(rf"kubeadm join {re.escape(cp.address)}:6443 --token "
                     r"([a-z0-9]{6}\.[a-z0-9]{16}) --discovery-token-ca-cert-hash (\S+) ", line)
    assert m and m[2] == pin
    listed = cp.run("kubeadm", "token", "list").stdout
    assert listed.split("\n")[0].split() == ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION",
                                             "EXTRA", "GROUPS"]
    row = next(r for r in listed.splitlines() if r.startswith(m[1]))
    assert "<forever>" in row and "<never>" in row and "forever" in row
    as_json = cp.run("kubeadm", "token", "list", "-o", "json").stdout
    assert f'"token": "{token}"' in as_json
    gone = cp.run("kubeadm", "token", "delete", m[1].split(".")[0])
    assert gone.stdout.strip() == f'bootstrap token "{m[1].split(".")[0]}" deleted'
    assert m[1] not in cp.run("kubeadm", "token", "list").stdout
    bad = cp.run("kubeadm", "token", "create", "--certificate-key", "ab" * 32)
    assert bad.returncode == 1
    assert "cannot use --certificate-key without --print-join-command" in bad.stderr


def test_kubectl_double_fallback_warns_on_every_call(cluster: tuple[Node, str, str, str]) -> None:
    """The double is only the fallback for hosts without a real kubectl, and says so."""
    cp = cluster[0]
    warning = ("WARNING: this is the lab's kubectl double, not kubectl: the host has no real "
               "kubectl binary (run tests/lab/install-deps.sh)")
    assert wait_for(lambda: "cp-1" in ready(cp))
    assert cp.run("kubectl", "cordon", "cp-1").stdout.strip() == "node/cp-1 cordoned"
    assert "Ready,SchedulingDisabled" in cp.run("kubectl", "get", "nodes").stdout
    drained = cp.run("kubectl", "drain", "cp-1", "--ignore-daemonsets")
    assert drained.stdout.strip().endswith("node/cp-1 drained")
    assert cp.run("kubectl", "uncordon", "cp-1").stdout.strip() == "node/cp-1 uncordoned"
    missing = cp.run("kubectl", "delete", "node", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        warning, 'Error from server (NotFound): nodes "nope" not found']
    assert cp.run("kubectl", "get", "nodes").stderr.splitlines()[0] == warning


def test_reset_removes_what_kubeadm_wrote(cluster: tuple[Node, str, str, str]) -> None:
    cp = cluster[0]
    out = cp.run("kubeadm", "reset", "-f")
    assert out.returncode == 0, out.stderr
    for path in ("/var/lib/kubelet/config.yaml", "/etc/kubernetes/admin.conf",
                 "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/pki/ca.crt",
                 "/etc/kubernetes/manifests/kube-apiserver.yaml"):
        assert not cp.file(path).exists(), path
    assert cp.kubelet is not None
    wait_for(lambda: _served_serial(cp) is None)  # without its configuration: pods stopped
    # The process stays (a kubelet LinuxKit does not supervise): the container's task, with
    # anything exec'd in it such as that reset, is not ended by it.
    assert cp.kubelet.poll() is None


def test_version_short(nodes: Any) -> None:
    node = nodes("w-9", version="v1.25.4")
    out = node.run("kubeadm", "version", "-o", "short")
    assert (out.returncode, out.stdout) == (0, "v1.25.4\n")


def _served_serial(cp: Node) -> int | None:
    """The serial of the certificate the API double serves, None while nothing answers."""
    import ssl

    try:
        pem = ssl.get_server_certificate((cp.address, 6443), timeout=2)
    except OSError:
        return None
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def test_certs_expire_knob_renew_and_the_restarted_api_serves_the_new_certificate(
    cluster: tuple[Node, str, str, str],
) -> None:
    cp = cluster[0]
    knob = subprocess.run(
        [PYTHON, "-c", f"import sys; sys.path.insert(0, {str(DOUBLES)!r}); "
         "from k8sdouble import certs; print(certs.expire_soon(['apiserver', 'etcd-peer'], 9))"],
        env=cp.env, capture_output=True, text=True, check=True)
    assert "renewed" in knob.stdout
    table = cp.run("kubeadm", "certs", "check-expiration").stdout
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert re.search(r"\s8d\s", rows["apiserver"]) and re.search(r"\s8d\s", rows["etcd-peer"])
    assert re.search(r"\s364d\s", rows["front-proxy-client"])
    crt = cp.file("/etc/kubernetes/pki/apiserver.crt")

    def on_disk() -> int:
        return x509.load_pem_x509_certificate(crt.read_bytes()).serial_number

    wait_for(lambda: _served_serial(cp) is not None)
    assert _served_serial(cp) != on_disk()  # loaded at start: the old one until a restart
    renewed = cp.run("kubeadm", "certs", "renew", "apiserver")
    assert renewed.returncode == 0 and "certificate for serving the Kubernetes API renewed" in \
        renewed.stdout
    assert re.search(r"\s364d\s", {line.split()[0]: line for line in cp.run(
        "kubeadm", "certs", "check-expiration").stdout.splitlines() if line.strip()}["apiserver"])
    manifest = cp.file("/etc/kubernetes/manifests/kube-apiserver.yaml")
    parked = cp.file("/etc/kubernetes/kube-apiserver.yaml.parked")
    manifest.rename(parked)
    wait_for(lambda: _served_serial(cp) is None)  # the kubelet stopped the static pod
    parked.rename(manifest)
    wait_for(lambda: _served_serial(cp) == on_disk())  # started again, with the new certificate


def test_expired_certificates_are_refused_as_the_real_api_refuses_them(
    cluster: tuple[Node, str, str, str],
) -> None:
    """A serving certificate that expired fails kubectl's check with Go's words; an expired
    client certificate is Unauthorized (kube-apiserver's authenticator, not the handshake);
    kubeadm without the API falls back to its defaults unless given --config."""
    cp = cluster[0]
    subprocess.run(
        [PYTHON, "-c", f"import sys; sys.path.insert(0, {str(DOUBLES)!r}); "
         "from k8sdouble import certs; print(certs.expire_soon(['apiserver', 'admin.conf'], 0))"],
        env=cp.env, capture_output=True, text=True, check=True)
    manifest = cp.file("/etc/kubernetes/manifests/kube-apiserver.yaml")
    parked = cp.file("/etc/kubernetes/kube-apiserver.yaml.parked")
    crt = cp.file("/etc/kubernetes/pki/apiserver.crt")

    def restart() -> None:
        serial = x509.load_pem_x509_certificate(crt.read_bytes()).serial_number
        manifest.rename(parked)
        wait_for(lambda: _served_serial(cp) is None)
        parked.rename(manifest)
        assert wait_for(lambda: _served_serial(cp) == serial)

    restart()
    refused = cp.run("kubectl", "get", "nodes")
    assert refused.returncode == 1
    assert re.search(  # after the double's own warning line, when the host has no kubectl
        r"^Unable to connect to the server: tls: failed to verify certificate: x509: certificate "
        r"has expired or is not yet valid: current time \S+Z is after \S+Z\n\Z", refused.stderr,
        re.M)
    fallback = cp.run("kubeadm", "certs", "renew", "apiserver")
    assert fallback.returncode == 0
    assert "[renew] Error reading configuration from the Cluster. Falling back to default " \
        "configuration" in fallback.stdout
    config = cp.write("/run/k8slk-ops-certs.yaml", init_config(cp))
    given = cp.run("kubeadm", "certs", "check-expiration", "--config", config)
    assert given.returncode == 0 and "Falling back" not in given.stdout
    missing = cp.run("kubeadm", "certs", "renew", "apiserver", "--config", "/run/nothing.yaml")
    assert missing.returncode == 1 and "open /run/nothing.yaml: no such file or directory" in \
        missing.stderr
    restart()  # the renewed serving certificate; admin.conf's client certificate is still expired
    unauthorized = cp.run("kubectl", "get", "nodes")
    assert unauthorized.returncode == 1
    assert unauthorized.stderr.endswith(
        "\nerror: You must be logged in to the server (Unauthorized)\n")
    assert cp.run("kubeadm", "certs", "renew", "admin.conf", "--config", config).returncode == 0
    assert cp.run("kubectl", "get", "nodes").returncode == 0
