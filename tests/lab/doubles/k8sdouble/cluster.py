"""What kubeadm's commands share: the admin client, tokens, the certificate bundle, manifests."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import string
import time
from typing import Any

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from k8sdouble import env, kubeadmconfig, kubeadmtexts, kubeversions, pki
from k8sdouble.client import Client
from k8sdouble.errors import ApiError, CommandError, PhaseError

TOKEN_ALPHABET = string.ascii_lowercase + string.digits
DEFAULT_TOKEN_TTL = 24 * 3600.0
CERTS_TTL = 2 * 3600.0
CERTS_PROXY_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"
DEFAULT_GROUPS = ["system:bootstrappers:kubeadm:default-node-token"]
DEFAULT_USAGES = ["signing", "authentication"]
# The files `kubeadm init phase upload-certs` shares with joining control planes.
SHARED_CERTS = ("ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt",
                "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key")


def out(text: str = "") -> None:
    print(text, flush=True)


def new_token() -> str:
    pick = secrets.choice
    return ("".join(pick(TOKEN_ALPHABET) for _ in range(6)) + "."
            + "".join(pick(TOKEN_ALPHABET) for _ in range(16)))


def admin_client(timeout: float = 10) -> Client:
    """A client from /etc/kubernetes/admin.conf (or $KUBECONFIG), as kubeadm's commands load it."""
    path = os.environ.get("KUBECONFIG") or env.ADMIN_CONF
    if not path.startswith("/"):
        path = "/" + path
    target = env.path(path)
    try:
        text = target.read_text()
    except OSError:
        raise CommandError(f"failed to load admin kubeconfig: open {path}: "
                           "no such file or directory") from None
    return Client.from_kubeconfig(text, timeout=timeout)


def call(client: Client, method: str, path: str, body: Any = None,
         content_type: str = "application/json") -> Any:
    """A request whose failure is the command's failure, worded as client-go words it."""
    try:
        return client.request(method, path, body, content_type)
    except ApiError as exc:
        if exc.status == 0:
            raise CommandError(f'Get "{client.server}{path}": {exc.message}') from None
        raise CommandError(exc.message or f"the server answered {exc.status}") from None


def create_token(client: Client, token: str, ttl: float | None, description: str = "",
                 usages: list[str] | None = None, groups: list[str] | None = None) -> None:
    tid, _, secret = token.partition(".")
    call(client, "POST", "/lab/v1/tokens", {
        "id": tid, "secret": secret, "ttl": ttl, "description": description,
        "usages": DEFAULT_USAGES if usages is None else usages,
        "groups": DEFAULT_GROUPS if groups is None else groups,
    })


def mark_control_plane(client: Client, node: str, version: str, wait: float = 0) -> None:
    """kubeadm's mark-control-plane phase (init and join): the labels and NoSchedule taints
    of the kubeadm release ``version``, with its two printed lines. With ``wait``, the Node is
    waited for that long first (init: the kubelet registers it while kubeadm goes on)."""
    minor = kubeversions.minor(version)
    labels_line, taints_line = kubeversions.mark_control_plane_lines(minor, node)
    out(labels_line)
    if wait and not wait_node(client, node, wait):
        raise PhaseError("mark-control-plane", "error applying control-plane label and "
                         "taints: timed out waiting for the condition")
    call(client, "PATCH", f"/api/v1/nodes/{node}", {
        "labels": {key: "" for key in kubeversions.control_plane_labels(minor)},
        "taints": [{"key": key, "effect": "NoSchedule"}
                   for key in kubeversions.control_plane_taints(minor)]})
    out(taints_line)


def endpoint_of(server: str) -> str:
    return server.split("://", 1)[-1].rstrip("/")


def ca_pin() -> str:
    return pki.pin(pki.load_cert(f"{env.PKI}/ca.crt"))


# --- the kubeadm-certs bundle ---------------------------------------------------------------

def encrypt_certs(key_hex: str) -> str:
    files = {}
    for name in SHARED_CERTS:
        p = env.path(f"{env.PKI}/{name}")
        if p.exists():
            files[name] = p.read_text()
    nonce = os.urandom(12)
    blob = AESGCM(bytes.fromhex(key_hex)).encrypt(nonce, json.dumps(files).encode(), None)
    return base64.b64encode(nonce + blob).decode()


def decrypt_certs(data: str, key_hex: str) -> dict[str, str]:
    """The shared certificates; ValueError when the key is not the one they were sealed with."""
    from cryptography.exceptions import InvalidTag

    raw = base64.b64decode(data)
    try:
        key = bytes.fromhex(key_hex)
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], None)
    except (InvalidTag, ValueError):
        raise ValueError(kubeadmtexts.CERTS_KEY_WRONG) from None
    return dict(json.loads(plain))


def upload_certs(client: Client, key_hex: str) -> None:
    proxy = new_token()
    create_token(client, proxy, CERTS_TTL, CERTS_PROXY_DESCRIPTION, usages=[], groups=[])
    call(client, "PUT", "/lab/v1/kubeadm-certs", {"data": encrypt_certs(key_hex),
                                                 "ttl": CERTS_TTL})


# --- manifests ------------------------------------------------------------------------------

def write_manifest(name: str, command: list[str], image: str = "") -> None:
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system",
                     "labels": {"component": name, "tier": "control-plane"}},
        "spec": {"hostNetwork": True, "containers": [{"name": name, "command": command,
                                                      "image": image or f"registry.k8s.io/{name}"}]},
    }
    env.write_atomic(f"{env.MANIFESTS}/{name}.yaml", yaml.safe_dump(pod, sort_keys=False), 0o600)


def store_path(ca_file: str = f"{env.PKI}/ca.crt") -> str:
    """The cluster's shared store: named after its CA, so a new cluster never reads an old one."""
    digest = hashlib.sha256(env.path(ca_file).read_bytes()).hexdigest()[:16]
    return f"{env.CLUSTER_STORE_DIR}/{digest}.json"


def etcd_member(name: str) -> None:
    """This node's etcd data directory now holds a member (kubeadm's preflight checks it)."""
    env.write_atomic(env.ETCD_MEMBER, name + "\n", 0o600)


def real_etcd_manifest(name: str, address: str, initial_cluster: str, state: str,
                       cluster_config: dict[str, Any] | None = None) -> None:
    """kubeadm's etcd static pod, to be run by the real etcd (the lab's ``realEtcd``).

    kubeadm's flags, but for the client and metrics URLs on 127.0.0.1: the lab's nodes share
    one loopback, so the node's address stands for it (crictl exec points 127.0.0.1:2379 there).
    """
    etcd_pki = f"{env.PKI}/etcd"
    write_manifest("etcd", ["etcd", *kubeadmconfig.flags("etcd", [
        f"--advertise-client-urls=https://{address}:2379",
        f"--cert-file={etcd_pki}/server.crt", "--client-cert-auth=true",
        f"--data-dir={env.ETCD_DIR}", f"--initial-advertise-peer-urls=https://{address}:2380",
        f"--initial-cluster={initial_cluster}", f"--initial-cluster-state={state}",
        f"--key-file={etcd_pki}/server.key", f"--listen-client-urls=https://{address}:2379",
        f"--listen-metrics-urls=http://{address}:2381", f"--listen-peer-urls=https://{address}:2380",
        f"--name={name}", f"--peer-cert-file={etcd_pki}/peer.crt", "--peer-client-cert-auth=true",
        f"--peer-key-file={etcd_pki}/peer.key", f"--peer-trusted-ca-file={etcd_pki}/ca.crt",
        "--snapshot-count=10000", f"--trusted-ca-file={etcd_pki}/ca.crt",
    ], cluster_config)], image=env.node().etcd_image)


def etcd_flags(address: str) -> list[str]:
    """kube-apiserver's flags for its local etcd (kubeadm's), with the lab's loopback rule."""
    return [f"--etcd-servers=https://{address}:2379", f"--etcd-cafile={env.PKI}/etcd/ca.crt",
            f"--etcd-certfile={env.PKI}/apiserver-etcd-client.crt",
            f"--etcd-keyfile={env.PKI}/apiserver-etcd-client.key"]


def component_commands(address: str, port: int, version: str,
                       cluster_config: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """kubeadm's control-plane phase: each component's command, kubeadm's own flags overridden
    by the ClusterConfiguration's extraArgs (kubeadmconfig.flags)."""
    pki_dir = env.PKI
    api = [f"--advertise-address={address}", f"--secure-port={port}",
           f"--tls-cert-file={pki_dir}/apiserver.crt",
           f"--tls-private-key-file={pki_dir}/apiserver.key",
           f"--client-ca-file={pki_dir}/ca.crt", f"--kubernetes-version={version}",
           "--authorization-mode=Node,RBAC", "--enable-bootstrap-token-auth=true"]
    if env.node().real_etcd:
        api += etcd_flags(address)
    commands = {"kube-apiserver": ["kube-apiserver", *kubeadmconfig.flags(
        "kube-apiserver", api, cluster_config)]}
    for component, conf in (("kube-controller-manager", "controller-manager.conf"),
                            ("kube-scheduler", "scheduler.conf")):
        own = [f"--kubeconfig=/etc/kubernetes/{conf}"]
        commands[component] = [component, *kubeadmconfig.flags(component, own, cluster_config)]
    return commands


def control_plane_manifests(address: str, port: int, version: str,
                            cluster_config: dict[str, Any] | None = None) -> None:
    for component, command in component_commands(address, port, version,
                                                  cluster_config).items():
        write_manifest(component, command)


def wait_healthy(client: Client, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.request("GET", "/healthz")
            return True
        except ApiError:
            time.sleep(0.1)
    return False


def wait_node(client: Client, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.request("GET", f"/api/v1/nodes/{name}")
            return True
        except ApiError:
            time.sleep(0.1)
    return False


def version_tuple(v: str) -> tuple[int, int, int]:
    parts = ([*v.lstrip("v").split("-", 1)[0].split("."), "0", "0"])[:3]
    return int(parts[0]), int(parts[1]), int(parts[2])
