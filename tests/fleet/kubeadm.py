"""The simulated kubeadm: ``init`` and ``join`` as the trigger runs them, and its CLI.

The runs take ``kubeadm_seconds`` in all, printing kubeadm's phase lines on the way, and check
what a real cluster would refuse: an unknown or expired token, a CA pin that does not match the
cluster CA, a control-plane join without the uploaded certificates' key, a name already taken.
The texts are kubeadm's own (docs/node.md, "kubeadm's own texts").
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import timedelta

from k8sdouble import kubeadmtexts as texts
from k8sdouble.kubeadmtexts import STACK_HINT

from tests.fleet import certs, etcd, objects
from tests.fleet import config as cfg
from tests.fleet.cluster import (
    NODE_TOKEN_GROUP,
    TOKEN_RE,
    Member,
    flag_value,
    new_token,
    parse_duration,
)
from tests.fleet.node import ADMIN_CONF, CA_CERT, KUBEADM_YAML, MARKER, SimNode
from tests.fleet.pki import admin_conf
from tests.fleet.result import Result

KUBELET_CONFIG = b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
_STEPS = 5  # a run's duration is spread over this many pauses


class KubeadmFailed(Exception):
    """kubeadm stops: the message is its last words before the stack hint."""


async def run(node: SimNode, flag: str) -> bool:
    """``kubeadm init|join --config /run/kubeadm.yaml``; prints to the node's log."""
    try:
        if flag == "init":
            await _init(node)
        else:
            await _join(node)
    except KubeadmFailed as exc:
        node.say(str(exc))
        node.say(STACK_HINT)
        return False
    return True


async def _pause(node: SimNode) -> None:
    await asyncio.sleep(node.config.kubeadm_seconds / _STEPS)


def _preflight(node: SimNode) -> None:
    node.say("[preflight] Running pre-flight checks")
    if node.name in node.config.fail_nodes:
        raise KubeadmFailed(texts.phase_error("preflight", texts.preflight_errors(
            [("Mem", "the system RAM (621 MB) is less than the minimum 1700 MB")])))


def _load(node: SimNode) -> cfg.KubeadmConfig:
    raw = node.files.get(KUBEADM_YAML)
    if raw is None:
        raise KubeadmFailed(
            'unable to read config from "/run/kubeadm.yaml" : open /run/kubeadm.yaml: '
            "no such file or directory"
        )
    if node.modes.get(KUBEADM_YAML, 0o600) & 0o077:
        node.cluster.audit["loose_config_mode"] += 1
    try:
        return cfg.parse(raw, node.version)
    except cfg.ConfigError as exc:
        raise KubeadmFailed(f"{exc}") from None


# -- init ---------------------------------------------------------------------------------------


async def _init(node: SimNode) -> None:
    conf = _load(node)
    init, clus = conf.get("InitConfiguration"), conf.get("ClusterConfiguration")
    if not init and not clus:
        raise KubeadmFailed("no InitConfiguration or ClusterConfiguration kind was found in the YAML file")
    version = str(clus.get("kubernetesVersion") or node.version)
    node.say(f"[init] Using Kubernetes version: {version}")
    _preflight(node)
    cluster = node.cluster
    if cluster.initialised:
        raise KubeadmFailed(texts.phase_error("preflight", texts.preflight_errors(
            [("Port-10250", "Port 10250 is in use")])))
    if cfg._minor(version) > cfg._minor(node.version):
        raise KubeadmFailed(
            f'this version of kubeadm only supports deploying clusters with the control plane '
            f'version >= 1.{cfg._minor(node.version) - 1}.0. Current version: {version}'
        )
    await _pause(node)
    reg = init.get("nodeRegistration") or {}
    name = str(reg.get("name") or node.name)
    local = init.get("localAPIEndpoint") or {}
    advertise = str(local.get("advertiseAddress") or node.spec.address)
    endpoint = str(clus.get("controlPlaneEndpoint") or f"{advertise}:{local.get('bindPort', 6443)}")
    if ":" not in endpoint:
        endpoint += ":6443"
    node.say('[certs] Using certificateDir folder "/etc/kubernetes/pki"')
    node.say('[certs] Generating "ca" certificate and key')
    node.write(CA_CERT, cluster.pki.ca_pem, 0o644)
    node.say('[kubeconfig] Writing "admin.conf" kubeconfig file')
    cluster_name = str(clus.get("clusterName") or "kubernetes")
    node.write(ADMIN_CONF, admin_conf(cluster.pki, endpoint, cluster_name), 0o600)
    cluster.cluster_config = objects.with_kubeadm_defaults(clus)
    certs.install(node)
    await _pause(node)
    node.say('[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"')
    node.write(MARKER, KUBELET_CONFIG, 0o644)
    node.say("[kubelet-start] Starting the kubelet")
    node.say('[control-plane] Creating static Pod manifest for "kube-apiserver"')
    await _pause(node)
    node.say("[api-check] The API server is healthy after 1.5s")
    cluster.endpoint, cluster.name, cluster.version = endpoint, cluster_name, version
    node.say('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in '
             'the "kube-system" Namespace')
    node.say('[kubelet] Creating a ConfigMap "kubelet-config" in namespace kube-system with the '
             "configuration for the kubelets in the cluster")
    cluster.objects.update(objects.kubeadm_configmaps(
        cluster.cluster_config, conf.get("KubeletConfiguration") or {}, version))
    args = cfg.args_of(reg.get("kubeletExtraArgs"))
    cluster.register(
        Member(name, args.get("node-ip", node.spec.address), True, cluster.clock(),
               node.version, cfg.labels_of(args))
    )
    for line in cluster.mark_control_plane(name, node.version):
        node.say(line)
    tokens = init.get("bootstrapTokens") or [{}]
    made = []
    for spec in tokens:
        text = str(spec.get("token") or new_token())
        try:
            ttl = parse_duration(str(spec.get("ttl") or "24h0m0s"))
            made.append(cluster.add_token(text, ttl, str(spec.get("description") or ""),
                                          tuple(spec.get("usages") or ("signing", "authentication")),
                                          tuple(spec.get("groups") or (NODE_TOKEN_GROUP,))))
        except ValueError as exc:
            raise KubeadmFailed(str(exc)) from None
        node.say(f"[bootstrap-token] Using token: {text}")
    await _pause(node)
    node.say("[addons] Applied essential addon: CoreDNS")
    if "addon/kube-proxy" in (init.get("skipPhases") or []):
        pass
    else:
        cluster.objects.update(objects.kube_proxy_objects())
        node.say("[addons] Applied essential addon: kube-proxy")
    for token in made:
        node.say(_init_success(endpoint, token.text, cluster.pki.ca_hash,
                               bool(clus.get("controlPlaneEndpoint")), version))
    await _pause(node)


def _init_success(endpoint: str, token: str, ca_hash: str, with_endpoint: bool,
                  version: str) -> str:
    return "\n" + "\n".join(texts.init_success(
        endpoint, token, ca_hash, tab=cfg._minor(version) >= 21, has_endpoint=with_endpoint,
        cert_key=None))


# -- join ---------------------------------------------------------------------------------------


async def _join(node: SimNode) -> None:
    conf = _load(node)
    join = conf.get("JoinConfiguration")
    if not join:
        raise KubeadmFailed("no JoinConfiguration kind was found in the YAML file")
    cluster = node.cluster
    _preflight(node)
    discovery = (join.get("discovery") or {}).get("bootstrapToken") or {}
    endpoint = str(discovery.get("apiServerEndpoint") or "")
    token = str(discovery.get("token") or "")
    hashes = [str(h) for h in discovery.get("caCertHashes") or []]
    unsafe = bool(discovery.get("unsafeSkipCAVerification"))
    if not hashes and not unsafe:
        raise KubeadmFailed(f'discovery.bootstrapToken: Invalid value: "": {texts.UNSAFE_DISCOVERY}')
    await _pause(node)
    if not cluster.initialised or endpoint != cluster.endpoint:
        raise KubeadmFailed(texts.phase_error("preflight", texts.identity_error(
            f'Get "https://{endpoint}/api/v1/namespaces/kube-public/configmaps/cluster-info?'
            f'timeout=10s": dial tcp {endpoint}: connect: connection refused')))
    m = TOKEN_RE.match(token)
    if not cluster.check_token(token):
        token_id = m.group(1) if m else token.partition(".")[0]
        raise KubeadmFailed(texts.phase_error("preflight", texts.no_jws_signature(token_id)))
    if unsafe:
        cluster.audit["unsafe_skip_ca"] += 1
    elif cluster.pki.ca_hash not in hashes:
        raise KubeadmFailed(texts.phase_error("preflight",
                                              texts.ca_not_pinned(cluster.pki.ca_hash)))
    node.say("[preflight] Reading configuration from the cluster...")
    reg = join.get("nodeRegistration") or {}
    name = str(reg.get("name") or node.name)
    existing = cluster.members.get(name)
    if existing is not None and cluster.ready(existing):
        raise KubeadmFailed(texts.phase_error("kubelet-start", texts.node_name_taken(name)))
    control_plane = join.get("controlPlane")
    await _pause(node)
    if control_plane is not None:
        node.say("[preflight] Running pre-flight checks before initializing the new control "
                 "plane instance")
        key = str(control_plane.get("certificateKey") or "")
        node.say('[download-certs] Downloading the certificates in Secret "kubeadm-certs" in '
                 'the "kube-system" Namespace')
        if not cluster.certs_available():
            raise KubeadmFailed(texts.phase_error("control-plane-prepare/download-certs",
                                                  texts.CERTS_SECRET_MISSING))
        if not secrets.compare_digest(key, cluster.cert_key or ""):
            raise KubeadmFailed(texts.phase_error("control-plane-prepare/download-certs",
                                                  texts.certs_undecryptable()))
        node.write(ADMIN_CONF, admin_conf(cluster.pki, cluster.endpoint or endpoint,
                                          cluster.name), 0o600)
        certs.install(node)
        node.say("[check-etcd] Checking that the etcd cluster is healthy")
        unhealthy = etcd.check_etcd(cluster)
        if unhealthy is not None:
            raise KubeadmFailed(unhealthy)
    node.write(CA_CERT, cluster.pki.ca_pem, 0o644)
    node.say('[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"')
    node.write(MARKER, KUBELET_CONFIG, 0o644)
    node.say("[kubelet-start] Starting the kubelet")
    node.say("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    await _pause(node)
    args = cfg.args_of(reg.get("kubeletExtraArgs"))
    cluster.register(
        Member(name, args.get("node-ip", node.spec.address), control_plane is not None,
               cluster.clock(), node.version, cfg.labels_of(args))
    )
    if control_plane is not None:
        for line in cluster.mark_control_plane(name, node.version):
            node.say(line)
    node.say(texts.CONTROL_PLANE_JOINED if control_plane is not None
             else texts.WORKER_JOINED)
    await _pause(node)


# -- the CLI in the kubelet container ------------------------------------------------------------


def cli(node: SimNode, argv: list[str]) -> Result:
    """``kubeadm ARGS`` run through ``ctr tasks exec`` (not the trigger's run)."""
    args = argv[1:]
    if args[:1] == ["version"]:
        if "short" in args or "-oshort" in args:
            return Result.ok(f"{node.version}\n")
        return Result.ok(
            f'kubeadm version: &version.Info{{Major:"1", Minor:"{cfg._minor(node.version)}", '
            f'GitVersion:"{node.version}", Platform:"linux/amd64"}}\n'
        )
    if args[:1] == ["reset"]:
        return _reset(node, args[1:])
    if args[:2] == ["upgrade", "node"]:
        return _upgrade_node(node)
    if node.files.get(ADMIN_CONF) is None or not node.cluster.initialised:
        return _fail(
            "failed to load admin kubeconfig: open /etc/kubernetes/admin.conf: no such file or "
            "directory"
        )
    if args[:2] == ["token", "create"]:
        return _token_create(node, args[2:])
    if args[:2] == ["token", "delete"]:
        return _token_delete(node, args[2:])
    if args[:2] == ["token", "list"]:
        return _token_list(node, args[2:])
    if args[:3] == ["init", "phase", "upload-certs"]:
        if "--upload-certs" not in args:
            return Result.ok(texts.UPLOAD_CERTS_SKIPPED + "\n")
        key = flag_value(args, "--certificate-key")
        if key is not None and len(key) != 64:
            return _fail("error decoding certificate key: encoding/hex: invalid byte")
        key = node.cluster.upload_certs(key)
        return Result.ok(f"{texts.UPLOAD_CERTS_STORED}\n{texts.UPLOAD_CERTS_KEY}\n{key}\n")
    sub = args[1:] if args[:1] == ["alpha"] and cfg._minor(node.version) <= 20 else args
    if args[:1] == ["certs"] and cfg._minor(node.version) < 20:
        return _fail('unknown command "certs" for "kubeadm"')
    if sub[:2] == ["certs", "check-expiration"]:
        return certs.check_expiration(node, sub[2:])
    if sub[:2] == ["certs", "renew"]:
        return certs.renew(node, sub[2:])
    if args[:2] == ["upgrade", "apply"]:
        return _upgrade_apply(node, args[2:])
    return _fail(f'unknown command "{" ".join(args[:2])}" for "kubeadm"', code=1)


def _fail(message: str, code: int = 1) -> Result:
    return Result(code, b"", f"{message}\n{STACK_HINT}\n".encode())


def _token_create(node: SimNode, args: list[str]) -> Result:
    key = flag_value(args, "--certificate-key")
    printing = "--print-join-command" in args
    if key is not None and not printing:
        return _fail("cannot use --certificate-key without --print-join-command")
    positional = [a for a in args if not a.startswith("-")]
    values = {flag_value(args, f) for f in ("--ttl", "--description", "--certificate-key",
                                            "--usages", "--groups")}
    positional = [a for a in positional if a not in values]
    text = positional[0] if positional else new_token()
    try:
        ttl = parse_duration(flag_value(args, "--ttl") or "24h0m0s")
        token = node.cluster.add_token(text, ttl, flag_value(args, "--description") or "")
    except ValueError as exc:
        return _fail(str(exc))
    if not printing:
        return Result.ok(token.text + "\n")
    cluster = node.cluster
    line = texts.join_command(cluster.endpoint, token.text, cluster.pki.ca_hash, True, key,
                              key is not None, one_line=True)[0]
    return Result.ok(line + "\n")


def _token_delete(node: SimNode, args: list[str]) -> Result:
    if not args:
        return _fail(texts.TOKEN_DELETE_MISSING)
    out = []
    for arg in args:
        token_id = arg.partition(".")[0]
        if node.cluster.tokens.pop(token_id, None) is None:
            return _fail(texts.token_not_found(token_id))
        out.append(texts.token_deleted(token_id))
    return Result.ok("".join(line + "\n" for line in out))


def _token_list(node: SimNode, args: list[str]) -> Result:
    now = node.cluster.now()
    as_json = flag_value(args, "-o") == "json" or "-ojson" in args or flag_value(args, "--output") == "json"
    rows, objs = [], []
    for t in node.cluster.tokens.values():
        if t.expires is None:
            ttl, expires = "<forever>", "<never>"
        elif t.expires <= now:
            ttl, expires = "<invalid>", t.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            left = t.expires - now
            ttl = f"{max(1, round(left / timedelta(hours=1)))}h" if left >= timedelta(hours=1) \
                else f"{max(1, round(left / timedelta(minutes=1)))}m"
            expires = t.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append((t.text, ttl, expires, ",".join(t.usages) or "<none>",
                     t.description or "<none>", ",".join(t.groups) or "<none>"))
        obj = {"kind": "BootstrapToken", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
               "token": t.text, "description": t.description, "usages": list(t.usages),
               "groups": list(t.groups)}
        if t.expires is not None:
            obj["expires"] = t.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
            obj["ttl"] = f"{max(0, int((t.expires - now).total_seconds()))}s"
        objs.append(obj)
    if as_json:
        return Result.ok("".join(json.dumps(o, indent=4) + "\n" for o in objs))
    header = ("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "   " + r[5]
             for r in table]
    return Result.ok("".join(line + "\n" for line in lines))


PKI_PREFIX = "/var/node/etc/kubernetes/pki/"


def _reset(node: SimNode, args: list[str]) -> Result:
    if "-f" not in args and "--force" not in args:
        return _fail("won't proceed; the user didn't confirm: reset needs --force (no TTY here)")
    cluster = node.cluster
    lines = ["[preflight] Running pre-flight checks"]
    if ADMIN_CONF in node.files and node.name in cluster.etcd_members:
        cluster.etcd_members.discard(node.name)
        lines.append("[reset] Removing etcd member ... done")
        if not cluster.etcd_members:  # the last one: the API server and etcd go with it
            cluster.end()
    for path in (MARKER, ADMIN_CONF, CA_CERT):
        node.remove(path)
    for path in [p for p in node.files if p.startswith(PKI_PREFIX)]:  # pki's contents
        node.remove(path)
    lines += [
        "[reset] Deleted contents of the etcd data directory: /var/lib/etcd",
        "[reset] Stopping the kubelet service",
        "[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet "
        "/etc/kubernetes/pki]",
        "[reset] Deleting files: [/etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf]",
    ]
    return Result.ok("".join(line + "\n" for line in lines))


# -- upgrade -------------------------------------------------------------------------------------


def _vt(text: str) -> tuple[int, int, int]:
    major, minor, patch = text.lstrip("v").split(".")[:3]
    return int(major), int(minor), int(patch.split("-")[0])


def _upgrade_apply(node: SimNode, args: list[str]) -> Result:
    """``kubeadm upgrade apply vX --yes`` with kubeadm's version policy and its v1.31 texts."""
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return _fail("missing one or more required arguments. Required arguments: [version]")
    target, cluster = words[0], node.cluster
    if "--yes" not in args and "-y" not in args:
        return _fail("[upgrade/confirm] Are you sure you want to proceed? [y/N]: aborted")
    new, current, own = _vt(target), _vt(cluster.version), _vt(node.version)
    if new[1] > current[1] + 1:
        return _fail(f'[upgrade/version] FATAL: the --version argument is invalid due to these '
                     f'fatal errors:\n\n\t- Specified version to upgrade to "{target}" is too '
                     "high; kubeadm can upgrade only 1 minor version at a time")
    if new[:2] > own[:2]:
        return _fail(f'[upgrade/version] FATAL: Specified version to upgrade to "{target}" is at '
                     f'least one minor release higher than the kubeadm minor release '
                     f"({own[1]} < {new[1]}). Such an upgrade is not supported")
    cluster.version = target
    cluster.static_pods[node.name] = target
    cluster.upgrade_marks(target)
    return Result.ok(
        f"[upgrade/version] You have chosen to change the cluster version to \"{target}\"\n"
        f"[upgrade/staticpods] Writing new Static Pod manifests\n"
        f"[upgrade/successful] SUCCESS! Your cluster was upgraded to \"{target}\". Enjoy!\n"
        "\n[upgrade/kubelet] Now that your control plane is upgraded, please proceed with "
        "upgrading your kubelets if you haven't already done so.\n"
    )


def _upgrade_node(node: SimNode) -> Result:
    """``kubeadm upgrade node``: a control plane's static pods follow the cluster's version."""
    member = node.cluster.members.get(node.name)
    if member is None:
        return _fail(f'nodes "{node.name}" not found')
    lines = ["[upgrade] Reading configuration from the cluster..."]
    if member.control_plane:
        node.cluster.static_pods[node.name] = node.cluster.version
        lines.append("[upgrade] Upgrading your Static Pod-hosted control plane instance")
    else:
        lines.append("[upgrade] Skipping phase. Not a control plane node.")
    lines += ["[upgrade] Backing up kubelet config file",
              "[kubelet-start] Writing kubelet configuration to file "
              '"/var/lib/kubelet/config.yaml"',
              "[upgrade] The configuration for this node was successfully updated!",
              "[upgrade] Now you should go ahead and upgrade the kubelet package using your "
              "package manager."]
    return Result.ok("".join(line + "\n" for line in lines))
