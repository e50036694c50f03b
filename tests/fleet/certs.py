"""A simulated control plane's certificates, static pods and serving certificate.

kubeadm init and join (control plane) ``install`` them: every certificate kubeadm makes, valid a
year from the cluster's clock, the CAs ten years, the kube-apiserver manifest and the API's
serving certificate. A node keeps only each certificate's expiry and serial (a thousand nodes
cost no key each); the two a client reads as PEM, the API's serving certificate and admin.conf's
client certificate, are real ones the cluster CA signs (k8sdouble.pki). Which certificates there
are and what kubeadm prints of them is the lab's model (k8sdouble.certmodel): ``kubeadm certs
check-expiration`` prints kubeadm's tables from them, ``kubeadm certs renew NAME`` gives one a
new year and serial, as kubeadm does, and restarts nothing: the API serves its old certificate
until its manifest leaves ``/etc/kubernetes/manifests`` (it stops answering) and comes back (it
loads the certificate on disk). ``expire_soon`` is the tests' knob, ``expire_now`` the other:
certificates that expired while the cluster was off, loaded by a control plane that started
again. Then the API refuses every client as a real one does: its serving certificate fails the
client's check (``x509: certificate has expired or is not yet valid``), an expired admin.conf
is Unauthorized, and kubeadm, which cannot read the kubeadm-config ConfigMap, falls back to its
defaults unless it is given ``--config FILE`` (every renewal records the configuration it had).
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from dataclasses import dataclass, field

from cryptography import x509
from k8sdouble import certmodel, pki
from k8sdouble.errors import STACK_HINT, CommandError

from tests.fleet.node import ADMIN_CONF, SimNode
from tests.fleet.result import Result

MANIFESTS = "/var/node/etc/kubernetes/manifests"
APISERVER_MANIFEST = f"{MANIFESTS}/kube-apiserver.yaml"
PKI_DIR = "/var/node/etc/kubernetes/pki"
APISERVER_CERT = f"{PKI_DIR}/apiserver.crt"
APISERVER_KEY = f"{PKI_DIR}/apiserver.key"
# The certificates a client reads as PEM (the API's serving one, admin.conf's client one), with
# their subjects; the others are their expiry dates and serials only.
_SUBJECTS = {"apiserver": ("kube-apiserver", ()),
             "admin.conf": ("kubernetes-admin", ("kubeadm:cluster-admins",))}


@dataclass
class Certificates:
    """One control plane's certificates and what its API serves."""

    expires: dict[str, dt.datetime]
    ca_expires: dt.datetime
    serials: dict[str, int] = field(default_factory=dict)
    parked: bool = False  # the static pod manifests are out: the API does not answer
    served: bytes = b""  # the serving certificate the API loaded when it started
    renewals: list[str] = field(default_factory=list)  # every `renew` run, in order
    # The configuration each `renew` worked from: the --config file's text, else None for the
    # cluster's ConfigMap (or, with the API silent, kubeadm's defaults: see ``defaults``).
    configs: list[str | None] = field(default_factory=list)
    defaults: int = 0  # renewals that fell back to kubeadm's default configuration
    # The certificates made for _SUBJECTS, by name: (serial, pair), made again for a new serial.
    issued: dict[str, tuple[int, pki.Pair]] = field(default_factory=dict)


_STATE: weakref.WeakKeyDictionary[SimNode, Certificates] = weakref.WeakKeyDictionary()
_serials = iter(range(0x1000, 1 << 60))


def install(node: SimNode) -> None:
    """What a control plane's init or join leaves: certificates, manifest, serving cert."""
    now = node.cluster.now()
    names = [leaf.name for leaf in certmodel.leaves(_minor(node))]
    state = Certificates({n: now + dt.timedelta(days=365) for n in names},
                         now + dt.timedelta(days=3650))
    state.serials = {n: next(_serials) for n in names}
    _STATE[node] = state
    node.write(APISERVER_MANIFEST, _manifest(node.spec.address,
                                             _flags(node, "apiServer")).encode(), 0o600)
    for component, key in (("kube-controller-manager", "controllerManager"),
                           ("kube-scheduler", "scheduler")):
        command = [component, f"--kubeconfig=/etc/kubernetes/{component[5:]}.conf",
                   *_flags(node, key)]
        node.write(f"{MANIFESTS}/{component}.yaml", json.dumps({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": component, "namespace": "kube-system"},
            "spec": {"containers": [{"name": component, "command": command}]}}).encode(), 0o600)
    for name, data in node.cluster.pki.authorities.items():  # the cluster's CAs and SA keys
        node.write(f"{PKI_DIR}/{name}", data, 0o600 if name.endswith(".key") else 0o644)
    from tests.fleet import etcd  # etcd imports this module

    etcd.write_manifest(node)
    _write_cert(node, state)
    state.served = node.files[APISERVER_CERT]


def of(node: SimNode) -> Certificates | None:
    return _STATE.get(node)


def parked(node: SimNode) -> bool:
    """The static pod manifests are out: the kubelet has stopped the control plane's pods."""
    state = _STATE.get(node)
    return state is not None and state.parked


def expire_soon(node: SimNode, names: tuple[str, ...], days: int = 5) -> None:
    """The knob: these certificates now expire within ``days`` (re-issued, new serial)."""
    state = _STATE[node]
    for name in names:
        state.expires[name] = node.cluster.now() + dt.timedelta(days=days)
        state.serials[name] = next(_serials)
    _write_cert(node, state)


def expire_now(node: SimNode, names: tuple[str, ...]) -> None:
    """The other knob: these certificates expired a minute ago (re-issued so, new serial), and
    the control plane started again since: the API serves the expired serving certificate."""
    state = _STATE[node]
    for name in names:
        state.expires[name] = node.cluster.now() - dt.timedelta(minutes=1)
        state.serials[name] = next(_serials)
        if name == "admin.conf":
            _renew_admin_conf(node, state)
    _write_cert(node, state)
    state.served = node.files[APISERVER_CERT]


def expired(node: SimNode, name: str) -> bool:
    """The certificate ``name`` on the node's disk has expired (by the cluster's clock)."""
    state = _STATE.get(node)
    return (state is not None and name in state.expires
            and state.expires[name] < node.cluster.now())


def api_refusal(node: SimNode) -> Result | None:
    """What kubectl with the node's admin.conf gets when expired certificates stop the API, as
    the real one prints it; None while it answers."""
    state = _STATE.get(node)
    if state is None or state.parked or not state.served:
        return None
    now = node.cluster.now()
    after = x509.load_pem_x509_certificate(state.served).not_valid_after_utc
    if after < now:
        return Result.error(1, "Unable to connect to the server: "
                            f"{certmodel.expired_serving_certificate(_minor(node), now, after)}\n")
    if state.expires.get("admin.conf", now) < now:
        return Result.error(1, "error: You must be logged in to the server (Unauthorized)\n")
    return None


def _flags(node: SimNode, component: str) -> list[str]:
    """The component's ``extraArgs`` in the cluster's ClusterConfiguration, as kubeadm writes
    them into its manifest (``--name=value``, beside its own)."""
    from tests.fleet import config

    section = node.cluster.cluster_config.get(component) or {}
    args = config.args_of(section.get("extraArgs") if isinstance(section, dict) else None)
    return [f"--{k}={v}" for k, v in sorted(args.items())]


def _manifest(address: str, extra: list[str] | None = None) -> str:
    flags = sorted([f"--advertise-address={address}", "--secure-port=6443",
                    "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt", *(extra or [])])
    return ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n"
            "  namespace: kube-system\nspec:\n  containers:\n  - command:\n"
            "    - kube-apiserver\n" + "".join(f"    - {f}\n" for f in flags)
            + "    name: kube-apiserver\n")


def _minor(node: SimNode) -> int:
    return int(node.version.lstrip("v").split(".")[1])


def _issued(node: SimNode, state: Certificates, name: str) -> pki.Pair:
    """The certificate ``name`` as the cluster CA signs it, with the serial and expiry the node
    keeps for it; made once per serial (most writes leave it as it was)."""
    serial = state.serials[name]
    made = state.issued.get(name)
    if made is None or made[0] != serial:
        cn, orgs = _SUBJECTS[name]
        server = name == "apiserver"
        made = state.issued[name] = (serial, pki.issue(
            node.cluster.pki.ca, cn, orgs, server=server, client=not server, serial=serial,
            not_after=state.expires[name]))
    return made[1]


def _write_cert(node: SimNode, state: Certificates) -> None:
    pair = _issued(node, state, "apiserver")
    node.write(APISERVER_CERT, pair.cert_pem, 0o644)
    node.write(APISERVER_KEY, pair.key_pem, 0o600)  # a leaf's key: never in a PKI archive


# -- kubeadm certs ---------------------------------------------------------------------------


def _config(node: SimNode, args: list[str], prefix: str) -> tuple[list[str], str | None]:
    """kubeadm's lines about the configuration it works from and the --config file's text
    (None without one); CommandError when that file will not do."""
    path = certmodel.config_flag(args)
    if path is not None:
        data = node.files.get(path.replace("/run/", "/run/node/", 1))
        text = data.decode() if data is not None else None
        certmodel.check_config_file(path, text)
        return [""], text
    lines = certmodel.cluster_config_lines(prefix, _minor(node), api_refusal(node) is None)
    return [*lines, ""], None


def _refused(exc: CommandError) -> Result:
    """A kubeadm failure as kubeadm prints it (the lab's kubeadm main does the same)."""
    return Result.error(exc.code, exc.text + "\n" + (STACK_HINT + "\n" if exc.hint else ""))


def check_expiration(node: SimNode, args: list[str] | None = None) -> Result:
    """kubeadm's two tables, from the node's certificates."""
    state = _STATE.get(node)
    if state is None:
        return Result.error(1, "error reading certificates: no control plane here\n")
    try:
        lines, _ = _config(node, args or [], "check-expiration")
    except CommandError as exc:
        return _refused(exc)
    now, minor = node.cluster.now(), _minor(node)
    info = certmodel.expiration_info(
        [certmodel.entry(leaf.name, state.expires[leaf.name], leaf.ca, False, now)
         for leaf in certmodel.LEAVES if leaf.name in state.expires],
        [certmodel.entry(ca.name, state.ca_expires, None, False, now)
         for ca in certmodel.AUTHORITIES], minor)
    lines += certmodel.tables(info, now, minor)
    return Result.ok("".join(line + "\n" for line in lines))


def renew(node: SimNode, args: list[str]) -> Result:
    """``kubeadm certs renew NAME|all``: a new year and serial; nothing restarted."""
    state = _STATE.get(node)
    if state is None:
        return Result.error(1, "error reading certificates: no control plane here\n")
    try:
        what = certmodel.renew_target(args, list(state.expires))
        lines, config = _config(node, args[1:], "renew")
    except CommandError as exc:
        return _refused(exc)
    state.configs.append(config)
    state.defaults += "Falling back" in lines[0]
    for leaf in certmodel.LEAVES:
        if leaf.name not in state.expires or what not in ("all", leaf.name):
            continue
        state.expires[leaf.name] = node.cluster.now() + dt.timedelta(days=365)
        state.serials[leaf.name] = next(_serials)
        state.renewals.append(leaf.name)
        lines.append(certmodel.renewed(leaf))
        if leaf.name == "admin.conf":
            _renew_admin_conf(node, state)
    _write_cert(node, state)
    if what == "all" and _minor(node) >= 20:  # ``kubeadm alpha certs`` before v1.20 does not
        lines += ["", certmodel.DONE]
    return Result.ok("".join(line + "\n" for line in lines))


def _renew_admin_conf(node: SimNode, state: Certificates) -> None:
    """admin.conf gets a new client certificate and key (the rest of the file stays)."""
    text = node.files.get(ADMIN_CONF, b"").decode()
    pair = _issued(node, state, "admin.conf")
    node.write(ADMIN_CONF, pki.with_client(text, pair).encode(), 0o600)


# -- the static pods and the API ---------------------------------------------------------------


def park(node: SimNode) -> Result:
    """The manifests leave /etc/kubernetes/manifests: the kubelet stops the static pods."""
    state = _STATE.get(node)
    if state is not None:
        state.parked = True
    return Result.ok()


def unpark(node: SimNode, parked_dir: str) -> Result:
    """The manifests are back (the script names each it moved): the API starts with the
    serving certificate on disk."""
    state = _STATE.get(node)
    if state is not None and state.parked:
        state.parked = False
        state.served = node.files.get(APISERVER_CERT, b"")
        return Result.ok(f"{parked_dir}/kube-apiserver.yaml\n")
    return Result.ok()


def served(node: SimNode) -> Result:
    """``python3 -c <get the served certificate> ADDRESS PORT``."""
    state = _STATE.get(node)
    if state is None or state.parked:
        return Result(3, b"down: [Errno 111] Connection refused\n", b"")
    return Result.ok(state.served)
