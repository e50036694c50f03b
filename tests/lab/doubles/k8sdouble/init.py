"""``kubeadm init --config FILE``: the phases in kubeadm's order, with what each leaves behind.

kubelet-start writes the marker (/var/lib/kubelet/config.yaml) before wait-control-plane, so a
failure from there on leaves a node that looks configured, as the real kubeadm does.
"""

from __future__ import annotations

import ipaddress
import secrets
import sys
import time

import yaml

from k8sdouble import addons, cluster, config, env, faults, kubeadmconfig, kubeadmtexts, pki
from k8sdouble.cluster import out
from k8sdouble.errors import CommandError, PhaseError


def with_port(endpoint: str, port: int) -> str:
    """``host`` -> ``host:port``; ``host:p`` and ``[v6]:p`` stay."""
    if endpoint.startswith("["):
        return endpoint if "]:" in endpoint else f"{endpoint}:{port}"
    if endpoint.count(":") == 1:
        return endpoint
    if endpoint.count(":") > 1:  # a bare IPv6 address
        return f"[{endpoint}]:{port}"
    return f"{endpoint}:{port}"


def service_ip(subnet: str) -> str:
    net = ipaddress.ip_network(subnet.split(",")[0].strip(), strict=False)
    return str(net.network_address + 1)


def cluster_dns_ip(subnet: str) -> str:
    """kubeadm's cluster DNS address: the tenth of the service subnet."""
    net = ipaddress.ip_network(subnet.split(",")[0].strip(), strict=False)
    return str(net.network_address + 10)


def control_plane_certs(cfg: config.Config, node: env.Node, endpoint: str) -> None:
    """The certs phase in kubeadm's order; CAs that exist (downloaded by a joining control
    plane) are used rather than made."""
    p = env.PKI
    out(f'[certs] Using certificateDir folder "{p}"')
    ca = _ca("ca", "kubernetes", "RSA-2048")  # the CA joins pin: RSA, kubeadm's default
    domain = cfg.dns_domain or "cluster.local"
    dns = [node.name, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           f"kubernetes.default.svc.{domain}"]
    ips = [service_ip(cfg.service_subnet or "10.96.0.0/12"), cfg.advertise_address or node.address]
    for name in (pki.server_host("https://" + endpoint), *cfg.cert_sans):
        try:
            ipaddress.ip_address(name)
            ips.append(name)
        except ValueError:
            dns.append(name)
    dns, ips = list(dict.fromkeys(dns)), list(dict.fromkeys(ips))
    out('[certs] Generating "apiserver" certificate and key')
    out(f"[certs] apiserver serving cert is signed for DNS names [{' '.join(dns)}] and IPs "
        f"[{' '.join(ips)}]")
    pki.save_pair(pki.issue(ca, "kube-apiserver", server=True, client=False, sans=dns + ips),
                  f"{p}/apiserver")
    out('[certs] Generating "apiserver-kubelet-client" certificate and key')
    pki.save_pair(pki.issue(ca, "kube-apiserver-kubelet-client", ("kubeadm:cluster-admins",)),
                  f"{p}/apiserver-kubelet-client")
    front = _ca("front-proxy-ca", "front-proxy-ca", "ECDSA-P256")
    out('[certs] Generating "front-proxy-client" certificate and key')
    pki.save_pair(pki.issue(front, "front-proxy-client"), f"{p}/front-proxy-client")
    etcd_ca = _ca("etcd/ca", "etcd-ca", "ECDSA-P256")
    names = [node.name, "localhost", node.address, "127.0.0.1", "::1"]
    for leaf in ("etcd/server", "etcd/peer"):
        out(f'[certs] Generating "{leaf}" certificate and key')
        out(f"[certs] {leaf} serving cert is signed for DNS names [{node.name} localhost] "
            f"and IPs [{node.address} 127.0.0.1 ::1]")
        pki.save_pair(pki.issue(etcd_ca, node.name, server=True, sans=names), f"{p}/{leaf}")
    out('[certs] Generating "etcd/healthcheck-client" certificate and key')
    pki.save_pair(pki.issue(etcd_ca, "kube-etcd-healthcheck-client"),
                  f"{p}/etcd/healthcheck-client")
    out('[certs] Generating "apiserver-etcd-client" certificate and key')
    pki.save_pair(pki.issue(etcd_ca, "kube-apiserver-etcd-client"), f"{p}/apiserver-etcd-client")
    if pki.files_exist(f"{p}/sa.key", f"{p}/sa.pub"):
        out("[certs] Using the existing \"sa\" key")
        return
    out('[certs] Generating "sa" key and public key')
    key, pub = pki.service_account_keys()
    env.write_atomic(f"{p}/sa.key", key, 0o600)
    env.write_atomic(f"{p}/sa.pub", pub, 0o644)


def _ca(name: str, cn: str, algorithm: str) -> pki.Pair:
    base = f"{env.PKI}/{name}"
    if pki.files_exist(base + ".crt", base + ".key"):
        out(f"[certs] Using existing {name} certificate authority")
        return pki.load_pair(base + ".crt", base + ".key")
    out(f'[certs] Generating "{name}" certificate and key')
    pair = pki.new_ca(cn, algorithm)
    pki.save_pair(pair, base)
    return pair


def kubeconfigs(node: env.Node, server: str, local: str, cluster_name: str, version: str,
                admin: bool = True) -> None:
    """The kubeconfig phase: admin.conf (and super-admin.conf from v1.29) and the components'."""
    ca = pki.load_pair(f"{env.PKI}/ca.crt", f"{env.PKI}/ca.key")
    out(f'[kubeconfig] Using kubeconfig folder "{env.K8S}"')
    minor = cluster.version_tuple(version)[1]
    admin_group = "kubeadm:cluster-admins" if minor >= 29 else "system:masters"
    files = []
    if admin:
        files.append(("admin.conf", server, "kubernetes-admin", (admin_group,)))
        if minor >= 29:
            files.append(("super-admin.conf", local, "kubernetes-super-admin", ("system:masters",)))
    files += [
        ("kubelet.conf", server, f"system:node:{node.name}", ("system:nodes",)),
        ("controller-manager.conf", local, "system:kube-controller-manager", ()),
        ("scheduler.conf", local, "system:kube-scheduler", ()),
    ]
    for name, url, cn, orgs in files:
        out(f'[kubeconfig] Writing "{name}" kubeconfig file')
        user = cn if name != "kubelet.conf" else f"system:node:{node.name}"
        text = pki.kubeconfig(url, ca.cert_pem, cluster_name, user, pki.issue(ca, cn, orgs))
        env.write_atomic(f"{env.K8S}/{name}", text, 0o600)


def kubelet_configuration(cfg: config.Config) -> dict[str, object]:
    """The KubeletConfiguration init was given, over kubeadm's defaults: what it writes to
    /var/lib/kubelet/config.yaml and uploads to the kubelet-config ConfigMap."""
    return kubeadmconfig.kept_kubelet_configuration(
        cfg.documents.get("KubeletConfiguration") or {},
        service_ip(cfg.service_subnet or "10.96.0.0/12").rsplit(".", 1)[0] + ".10",
        cfg.dns_domain or "cluster.local")


def kubelet_start(cfg: config.Config) -> None:
    out(f'[kubelet-start] Writing kubelet environment file with flags to file '
        f'"{env.KUBELET_DIR}/kubeadm-flags.env"')
    env.write_atomic(f"{env.KUBELET_DIR}/kubeadm-flags.env",
                     'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint='
                     'unix:///var/run/containerd/containerd.sock"\n', 0o644)
    out(f'[kubelet-start] Writing kubelet configuration to file "{env.KUBELET_CONFIG}"')
    env.write_atomic(env.KUBELET_CONFIG, yaml.safe_dump(kubelet_configuration(cfg),
                                                        sort_keys=False), 0o644)
    out("[kubelet-start] Starting the kubelet")


def run(config_path: str, upload_certs: bool, skip_token_print: bool) -> int:
    node = env.node()
    cfg = config.load_file(config_path, node.version, "init")
    for warning in cfg.warnings:
        print(warning, file=sys.stderr, flush=True)
    version = cfg.kubernetes_version or node.version
    own = cluster.version_tuple(node.version)
    want = cluster.version_tuple(version)
    if want[:2] > own[:2]:
        raise CommandError(f"this version of kubeadm only supports deploying clusters with the "
                           f"control plane version <= v{own[0]}.{own[1]}.{own[2]}. Current "
                           f"version: {version}")
    if want[:2] < (own[0], own[1] - 1):
        raise CommandError(f"this version of kubeadm only supports deploying clusters with the "
                           f"control plane version >= {own[0]}.{own[1] - 1}.0. Current "
                           f"version: {version}")
    address = cfg.advertise_address or node.address
    port = cfg.bind_port or env.API_PORT
    endpoint = with_port(cfg.control_plane_endpoint, port) if cfg.control_plane_endpoint else \
        with_port(address, port)
    server = f"https://{endpoint}"
    local = f"https://{with_port(address, port)}"
    skip = set(cfg.skip_phases)
    # The configuration as kubeadm keeps it: its manifests and its upload-config come from it.
    kept = kubeadmconfig.kept_cluster_configuration(
        cfg.documents.get("ClusterConfiguration") or {}, node.version, version)

    def phase(name: str) -> bool:
        faults.check(name)
        return name not in skip

    out(f"[init] Using Kubernetes version: {version}")
    if phase("preflight"):
        out("[preflight] Running pre-flight checks")
        _preflight(cfg.ignore_preflight_errors)
        out("[preflight] Pulling images required for setting up a Kubernetes cluster")
        out("[preflight] This might take a minute or two, depending on the speed of your "
            "internet connection")
    if phase("certs"):
        control_plane_certs(cfg, node, endpoint)
    if phase("kubeconfig"):
        kubeconfigs(node, server, local, cfg.cluster_name, version)
    if phase("etcd"):
        out(f'[etcd] Creating static Pod manifest for local etcd in "{env.MANIFESTS}"')
        if node.real_etcd:
            cluster.real_etcd_manifest(node.name, address, f"{node.name}=https://{address}:2380",
                                       "new", kept)
        else:
            cluster.write_manifest("etcd", ["etcd", f"--advertise-client-urls=https://{address}:2379",
                                            f"--name={node.name}"])
        cluster.etcd_member(node.name)
    if phase("control-plane"):
        out(f'[control-plane] Using manifest folder "{env.MANIFESTS}"')
        for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            out(f'[control-plane] Creating static Pod manifest for "{component}"')
        cluster.control_plane_manifests(address, port, version, kept)
    if phase("kubelet-start"):
        kubelet_start(cfg)
    admin = cluster.admin_client()
    if phase("wait-control-plane"):
        started = time.monotonic()
        out('[wait-control-plane] Waiting for the kubelet to boot up the control plane as static '
            f'Pods from directory "{env.MANIFESTS}"')
        if not cluster.wait_healthy(cluster.admin_client(timeout=2), 240):
            print(faults.WAIT_CONTROL_PLANE_HELP, flush=True)
            raise PhaseError("wait-control-plane", "couldn't initialize a Kubernetes cluster")
        out(f"[apiclient] All control plane components are healthy after "
            f"{time.monotonic() - started:.6f} seconds")
    if phase("upload-config"):
        out('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the '
            '"kube-system" Namespace')
        cluster.call(admin, "PATCH", "/lab/v1/cluster", {
            "version": version, "leader": with_port(address, port), "members": [node.name],
            "controlPlaneEndpoint": endpoint if cfg.control_plane_endpoint else "",
            "clusterName": cfg.cluster_name, "config": cfg.documents.get("ClusterConfiguration"),
            "adminsBound": True,  # kubeadm:cluster-admins bound to cluster-admin (v1.29+)
        })
        kubeadmconfig.upload(admin, kept, kubelet_configuration(cfg), version)
        out(f'[kubelet] Creating a ConfigMap "{kubeadmconfig.kubelet_config_name(version)}" in '
            'namespace kube-system with the configuration for the kubelets in the cluster')
    cert_key = cfg.certificate_key
    if phase("upload-certs"):
        if upload_certs:
            cert_key = cert_key or secrets.token_hex(32)
            out(kubeadmtexts.UPLOAD_CERTS_STORED)
            out(kubeadmtexts.UPLOAD_CERTS_KEY)
            out("<value withheld>" if skip_token_print else cert_key)
            cluster.upload_certs(admin, cert_key)
        else:
            out(kubeadmtexts.UPLOAD_CERTS_SKIPPED)
    if phase("mark-control-plane"):
        cluster.mark_control_plane(admin, node.name, version, wait=60)
    tokens: list[str] = []
    if phase("bootstrap-token"):
        specs = list(cfg.bootstrap_tokens) or [config.BootstrapToken(
            cluster.new_token(), cluster.DEFAULT_TOKEN_TTL, "", tuple(cluster.DEFAULT_USAGES),
            tuple(cluster.DEFAULT_GROUPS))]
        for spec in specs:
            cluster.create_token(admin, spec.token, spec.ttl_seconds, spec.description,
                                 list(spec.usages), list(spec.groups))
            tokens.append(spec.token)
            out(f"[bootstrap-token] Using token: "
                f"{'<value withheld>' if skip_token_print else spec.token}")
        out("[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles")
        out('[bootstrap-token] Creating the "cluster-info" ConfigMap in the "kube-public" '
            "namespace")
        ca_pem = env.path(f"{env.PKI}/ca.crt").read_bytes()
        info = pki.kubeconfig(server, ca_pem, "", "")
        cluster.call(admin, "PUT", "/api/v1/namespaces/kube-public/configmaps/cluster-info",
                     {"kubeconfig": info})
    if phase("kubelet-finalize"):
        out('[kubelet-finalize] Updating "/etc/kubernetes/kubelet.conf" to point to a rotatable '
            "kubelet client certificate and key")
    if phase("addon"):
        if "addon/coredns" not in skip:
            addons.coredns(admin, cluster_dns_ip(cfg.service_subnet), cfg.dns_domain, version)
        if "addon/kube-proxy" not in skip:
            addons.kube_proxy(admin, version, cfg.pod_subnet or "", server)
    out()
    _success(endpoint, tokens, node.version, cfg.control_plane_endpoint is not None,
             cert_key if upload_certs else None, skip_token_print)
    return 0


def _preflight(ignored: tuple[str, ...] = ()) -> None:
    """kubeadm's checks of a node about to be initialised. A check named in
    ``nodeRegistration.ignorePreflightErrors`` (or ``all``; case does not matter) is printed
    as a warning and does not stop the init, as kubeadm's ``--ignore-preflight-errors`` does."""
    skip = {c.lower() for c in ignored}
    found = []
    if env.path(env.KUBELET_CONF).exists():
        found.append(("FileAvailable--etc-kubernetes-kubelet.conf",
                      "/etc/kubernetes/kubelet.conf already exists"))
    if env.path(f"{env.MANIFESTS}/kube-apiserver.yaml").exists():
        found.append(("FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
                      "/etc/kubernetes/manifests/kube-apiserver.yaml already exists"))
    state = env.path(env.ETCD_DIR)
    if state.is_dir() and any(state.iterdir()):
        found.append(("DirAvailable--var-lib-etcd", "/var/lib/etcd is not empty"))
    errors: list[tuple[str, str]] = []
    for check, text in found:
        if "all" in skip or check.lower() in skip:
            out(f"\t[WARNING {check}]: {text}")
        else:
            errors.append((check, text))
    if errors:
        raise PhaseError("preflight", kubeadmtexts.preflight_errors(errors))


def _success(endpoint: str, tokens: list[str], version: str, has_endpoint: bool,
             cert_key: str | None, withheld: bool) -> None:
    pin = cluster.ca_pin()
    tab = cluster.version_tuple(version) >= (1, 21, 0)
    for token in tokens or ["<value withheld>"]:
        shown = "<value withheld>" if withheld else token
        for line in kubeadmtexts.init_success(endpoint, shown, pin, tab=tab,
                                              has_endpoint=has_endpoint, cert_key=cert_key):
            out(line)
