"""``kubeadm join --config FILE``: token discovery, TLS bootstrap, and a control plane's extra
phases, with kubeadm's own failure texts.

Discovery is the real protocol: cluster-info fetched without trusting the server, its JWS
checked with the token, then its CA checked against the pin. Only then is the server trusted.
"""

from __future__ import annotations

import sys
import time

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from k8sdouble import (
    cluster,
    config,
    env,
    etcdmember,
    faults,
    jws,
    kubeadmconfig,
    kubeadmtexts,
    pki,
)
from k8sdouble.client import Client
from k8sdouble.cluster import out
from k8sdouble.errors import ApiError, CommandError, PhaseError
from k8sdouble.etcdstore import EtcdUnavailable
from k8sdouble.init import control_plane_certs, kubeconfigs, with_port

DISCOVERY_RETRY_SECONDS = 3.0  # real kubeadm: until its discovery timeout (5 min)

def _identity_error(text: str) -> PhaseError:
    return PhaseError("preflight", kubeadmtexts.identity_error(text))


def discover(endpoint: str, token: str, pins: tuple[str, ...], unsafe: bool) -> pki.KubeConfig:
    """The cluster's kubeconfig from cluster-info, trusted by token signature and CA pin."""
    tid, _, secret = token.partition(".")
    url = f"https://{endpoint}/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s"
    anonymous = Client(f"https://{endpoint}", None, timeout=5)
    deadline = time.monotonic() + DISCOVERY_RETRY_SECONDS
    while True:
        try:
            info = anonymous.request("GET", "/api/v1/namespaces/kube-public/configmaps/cluster-info")
            break
        except ApiError as exc:
            if time.monotonic() > deadline:
                detail = exc.message if exc.status == 0 else f"the server answered {exc.status}"
                raise _identity_error(f'Get "{url}": {detail}') from None
            out(f'[discovery] Failed to request cluster-info, will try again: Get "{url}": '
                f"{exc.message}")
            time.sleep(0.5)
    data = info.get("data") or {}
    kubeconfig = data.get("kubeconfig", "")
    signature = data.get(f"jws-kubeconfig-{tid}")
    if not signature:
        raise PhaseError("preflight", kubeadmtexts.no_jws_signature(tid))
    if not jws.verify_detached(signature, kubeconfig, tid, secret):
        raise _identity_error("failed to verify JWS signature of received cluster info object, "
                              "can't trust this API Server")
    kc = pki.read_kubeconfig(kubeconfig)
    if not unsafe:
        actual = pki.pin(x509.load_pem_x509_certificate(kc.ca_pem))
        if actual not in pins:
            raise PhaseError("preflight", kubeadmtexts.ca_not_pinned(actual))
    return kc


def run(config_path: str) -> int:
    node = env.node()
    cfg = config.load_file(config_path, node.version, "join")
    for warning in cfg.warnings:
        print(warning, file=sys.stderr, flush=True)
    endpoint = cfg.discovery_endpoint or ""
    token = cfg.discovery_token or ""
    faults.check("preflight")
    out("[preflight] Running pre-flight checks")
    if env.path(env.KUBELET_CONF).exists() or env.path(env.KUBELET_CONFIG).exists():
        raise PhaseError("preflight", kubeadmtexts.preflight_errors([(
            "FileAvailable--etc-kubernetes-kubelet.conf",
            "/etc/kubernetes/kubelet.conf already exists")]))
    kc = discover(endpoint, token, cfg.ca_cert_hashes, cfg.unsafe_skip_ca_verification)
    out("[preflight] Reading configuration from the cluster...")
    out("[preflight] FYI: You can look at this config file with "
        "'kubectl -n kube-system get cm kubeadm-config -o yaml'")
    boot = Client(kc.server, kc.ca_pem, token=token, timeout=10)
    try:
        about = boot.request("GET", "/lab/v1/cluster")
    except ApiError as exc:
        raise PhaseError("preflight", f"unable to fetch the kubeadm-config ConfigMap: "
                         f"{exc.message}") from None
    version = str(about.get("version") or node.version)
    try:  # kubeadm reads its configuration from the cluster, as the bootstrap token may
        kept = kubeadmconfig.download(boot, kubeadmconfig.KUBEADM_CONFIG, "ClusterConfiguration")
        kubelet_doc = kubeadmconfig.download(boot, kubeadmconfig.kubelet_config_name(version),
                                             "kubelet")
    except CommandError as exc:
        raise PhaseError("preflight", str(exc)) from None
    if cluster.version_tuple(node.version)[:2] > cluster.version_tuple(version)[:2]:
        print(f"[preflight] WARNING: kubelet version {node.version} is newer than the control "
              f"plane's {version}", file=sys.stderr)

    if cfg.join_control_plane:
        _prepare_control_plane(cfg, node, boot, kc, about, version, kept)
        if node.real_etcd:
            _check_etcd(node, cfg.advertise_address or node.address)

    faults.check("kubelet-start")
    out(f'[kubelet-start] Writing kubelet configuration to file "{env.KUBELET_CONFIG}"')
    kubelet = _tls_bootstrap(boot, kc, node)
    try:
        existing = kubelet.request("GET", f"/api/v1/nodes/{node.name}")
    except ApiError:
        existing = None
    if existing and any(c["type"] == "Ready" and c["status"] == "True"
                        for c in existing["status"]["conditions"]):
        raise PhaseError("kubelet-start", kubeadmtexts.node_name_taken(node.name))
    env.write_atomic(f"{env.KUBELET_DIR}/kubeadm-flags.env",
                     'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint='
                     'unix:///var/run/containerd/containerd.sock"\n', 0o644)
    env.write_atomic(env.KUBELET_CONFIG, yaml.safe_dump(kubelet_doc, sort_keys=False), 0o644)
    out(f'[kubelet-start] Writing kubelet environment file with flags to file '
        f'"{env.KUBELET_DIR}/kubeadm-flags.env"')
    out("[kubelet-start] Starting the kubelet")
    out("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. "
        "This can take up to 4m0s")
    out("[kubelet-check] The kubelet is healthy after 1.001s")
    out("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    try:
        kubelet.request("POST", "/api/v1/nodes", {
            "metadata": {"name": node.name, "labels": {}},
            "kubeletVersion": node.version, "address": node.address})
    except ApiError as exc:
        if exc.status != 409:
            raise PhaseError("kubelet-start", f"error waiting for kubelet to perform the TLS "
                             f"Bootstrap: {exc.message}") from None

    if cfg.join_control_plane:
        faults.check("control-plane-join")
        admin = cluster.admin_client()
        out(f"[control-plane-join] Adding etcd member {node.name} (https://{node.address}:2380)")
        members = list(about.get("members") or [])
        if node.name not in members:
            members.append(node.name)
        cluster.call(admin, "PATCH", "/lab/v1/cluster", {"members": members})
        if node.real_etcd:
            _join_etcd(admin, node, cfg.advertise_address or node.address, kept)
        out("[etcd] Waiting for the new etcd member to join the cluster. This can take up to 40s")
        if node.real_etcd:
            _wait_etcd(cfg.advertise_address or node.address)
        cluster.mark_control_plane(admin, node.name, node.version)
        out(kubeadmtexts.CONTROL_PLANE_JOINED)
    else:
        out(kubeadmtexts.WORKER_JOINED)
    return 0


def _prepare_control_plane(cfg: config.Config, node: env.Node, boot: Client,
                           kc: pki.KubeConfig, about: dict[str, object], version: str,
                           kept: dict[str, object]) -> None:
    faults.check("control-plane-prepare")
    out("[preflight] Running pre-flight checks before initializing the new control plane instance")
    out('[download-certs] Downloading the certificates in Secret "kubeadm-certs" in the '
        '"kube-system" Namespace')
    try:
        bundle = boot.request("GET", "/lab/v1/kubeadm-certs")
    except ApiError as exc:
        if exc.status == 404:
            raise PhaseError("control-plane-prepare/download-certs",
                             kubeadmtexts.CERTS_SECRET_MISSING) from None
        raise PhaseError("control-plane-prepare/download-certs",
                         f"error downloading certs: {exc.message}") from None
    try:
        files = cluster.decrypt_certs(bundle["data"], cfg.join_certificate_key or "")
    except ValueError as exc:
        raise PhaseError("control-plane-prepare/download-certs",
                         kubeadmtexts.certs_undecryptable(str(exc))) from None
    for name, text in files.items():
        env.write_atomic(f"{env.PKI}/{name}", text, 0o600 if name.endswith(".key") else 0o644)
    endpoint = cluster.endpoint_of(kc.server)
    address = cfg.advertise_address or node.address
    control_plane_certs(cfg, node, endpoint)
    out('[certs] Valid certificates and keys now exist in "/etc/kubernetes/pki"')
    kubeconfigs(node, kc.server, f"https://{with_port(address, cfg.bind_port or 6443)}",
                str(about.get("clusterName") or "kubernetes"), version)
    out(f'[control-plane] Using manifest folder "{env.MANIFESTS}"')
    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        out(f'[control-plane] Creating static Pod manifest for "{component}"')
    cluster.control_plane_manifests(address, cfg.bind_port or 6443, version, kept)
    if not node.real_etcd:  # the real one's manifest comes with its member, in control-plane-join
        cluster.write_manifest("etcd", ["etcd", f"--name={node.name}"])
    cluster.etcd_member(node.name)


def _check_etcd(node: env.Node, address: str) -> None:
    """kubeadm's check-etcd phase: every listed member must answer before a new one is added
    (a member that does not would leave the cluster one failure from losing quorum)."""
    out("[check-etcd] Checking that the etcd cluster is healthy")
    admin = cluster.admin_client()
    others = etcdmember.control_plane_addresses(cluster.call(admin, "GET", "/api/v1/nodes"),
                                                exclude=address)
    try:
        silent = etcdmember.unhealthy_endpoint(others)
    except EtcdUnavailable:
        silent = f"https://{others[0]}:2379" if others else "https://127.0.0.1:2379"
    if silent is not None:
        raise PhaseError("check-etcd", kubeadmtexts.etcd_unhealthy(silent))


def _join_etcd(admin: Client, node: env.Node, address: str, kept: dict[str, object]) -> None:
    """kubeadm's etcd phase: member add through an existing member, then the static pod with
    ``--initial-cluster-state=existing``."""
    others = etcdmember.control_plane_addresses(cluster.call(admin, "GET", "/api/v1/nodes"),
                                                exclude=address)
    try:
        initial = etcdmember.add(others, node.name, address)
    except EtcdUnavailable as exc:
        raise PhaseError("control-plane-join/etcd", f"error creating local etcd static pod "
                         f"manifest file: {exc}") from None
    cluster.real_etcd_manifest(node.name, address, initial, "existing", kept)


def _wait_etcd(address: str) -> None:
    """Until the cluster, with its new member, answers a quorum read again (kubeadm waits so
    before it marks the node: meanwhile the API answers ``etcdserver: leader changed``)."""
    try:
        etcdmember.wait_available(address)
    except EtcdUnavailable as exc:
        raise PhaseError("control-plane-join/etcd", "error waiting for etcd cluster to be "
                         f"available: timed out waiting for the condition: {exc}") from None


def _tls_bootstrap(boot: Client, kc: pki.KubeConfig, node: env.Node) -> Client:
    """A key, a CSR signed for system:node:NAME, and kubelet.conf with the result."""
    key = pki.new_key()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([
               x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
               x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node.name}")]))
           .sign(key, hashes.SHA256()))
    pem = csr.public_bytes(pki.serialization.Encoding.PEM).decode()
    try:
        signed = boot.request("POST", "/lab/v1/csr", {"csr": pem, "name": node.name})
    except ApiError as exc:
        raise PhaseError("kubelet-start", "error waiting for kubelet to perform the TLS "
                         f"Bootstrap: {exc.message}") from None
    cert = x509.load_pem_x509_certificate(signed["cert"].encode())
    pair = pki.Pair(cert, key)
    env.write_atomic(env.KUBELET_CLIENT_PEM, pair.cert_pem + pair.key_pem, 0o600)
    text = pki.kubeconfig(kc.server, kc.ca_pem, "kubernetes", f"system:node:{node.name}", pair)
    env.write_atomic(env.KUBELET_CONF, text, 0o600)
    return Client(kc.server, kc.ca_pem, pair.cert_pem, pair.key_pem, timeout=10)
