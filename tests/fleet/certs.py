"""A simulated control plane's certificates, static pods and serving certificate.

kubeadm init and join (control plane) ``install`` them: every certificate kubeadm makes, valid a
year from the cluster's clock, the CAs ten years, the kube-apiserver manifest and the API's
serving certificate (a real PEM, so a client reads its serial). ``kubeadm certs
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

import base64
import datetime as dt
import functools
import json
import weakref
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from k8sdouble import kubeadmtexts as texts

from tests.fleet.node import ADMIN_CONF, SimNode
from tests.fleet.result import Result

MANIFESTS = "/var/node/etc/kubernetes/manifests"
APISERVER_MANIFEST = f"{MANIFESTS}/kube-apiserver.yaml"
PKI_DIR = "/var/node/etc/kubernetes/pki"
APISERVER_CERT = f"{PKI_DIR}/apiserver.crt"
APISERVER_KEY = f"{PKI_DIR}/apiserver.key"
# In kubeadm's order (sorted), with the CA that signs each; super-admin.conf from v1.29.
LEAVES = (
    ("admin.conf", "ca"), ("apiserver", "ca"), ("apiserver-etcd-client", "etcd-ca"),
    ("apiserver-kubelet-client", "ca"), ("controller-manager.conf", "ca"),
    ("etcd-healthcheck-client", "etcd-ca"), ("etcd-peer", "etcd-ca"), ("etcd-server", "etcd-ca"),
    ("front-proxy-client", "front-proxy-ca"), ("scheduler.conf", "ca"),
    ("super-admin.conf", "ca"),
)
AUTHORITIES = ("ca", "etcd-ca", "front-proxy-ca")
DONE = ("Done renewing certificates. You must restart the kube-apiserver, "
        "kube-controller-manager, kube-scheduler and etcd, so that they can use the new "
        "certificates.")


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


# The API's serving key (one for every simulated API: nothing verifies it).
_LEAF_KEY = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption())
_STATE: weakref.WeakKeyDictionary[SimNode, Certificates] = weakref.WeakKeyDictionary()
_serials = iter(range(0x1000, 1 << 60))


def install(node: SimNode) -> None:
    """What a control plane's init or join leaves: certificates, manifest, serving cert."""
    now = node.cluster.now()
    minor = int(node.version.lstrip("v").split(".")[1])
    names = [n for n, _ in LEAVES if n != "super-admin.conf" or minor >= 29]
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
    node.write(APISERVER_KEY, _LEAF_KEY, 0o600)  # a leaf's key: never in a PKI archive
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


GO_TIME = "%Y-%m-%dT%H:%M:%SZ"


def api_refusal(node: SimNode) -> Result | None:
    """What kubectl with the node's admin.conf gets when expired certificates stop the API, as
    the real one prints it; None while it answers."""
    state = _STATE.get(node)
    if state is None or state.parked or not state.served:
        return None
    now = node.cluster.now()
    after = x509.load_pem_x509_certificate(state.served).not_valid_after_utc
    if after < now:
        return Result.error(1, "Unable to connect to the server: tls: failed to verify "
                            "certificate: x509: certificate has expired or is not yet valid: "
                            f"current time {now:{GO_TIME}} is after {after:{GO_TIME}}\n")
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


def _write_cert(node: SimNode, state: Certificates) -> None:
    node.write(APISERVER_CERT, _pem(state.serials["apiserver"], state.expires["apiserver"]), 0o644)


@functools.lru_cache(maxsize=256)
def _pem(serial: int, not_after: dt.datetime) -> bytes:
    """A certificate with this serial and expiry (self-signed: only its fields are read)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(not_after - dt.timedelta(days=366)).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


# -- kubeadm certs ---------------------------------------------------------------------------


def _config(node: SimNode, args: list[str], prefix: str) -> tuple[list[str], str | None, Result | None]:
    """kubeadm's lines about the configuration it works from, the --config file's text (None
    without one), or the failure to read that file."""
    path = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--config"), None)
    if path is not None:
        text = node.files.get(path.replace("/run/", "/run/node/", 1))
        if text is None:
            return [], None, Result.error(1, f"open {path}: no such file or directory\n")
        return [], text.decode(), None
    if api_refusal(node) is not None:
        return [f"[{prefix}] Error reading configuration from the Cluster. Falling back to "
                "default configuration", ""], None, None
    return [f"[{prefix}] Reading configuration from the cluster...",
            f"[{prefix}] FYI: You can look at this config file with 'kubectl -n "
            "kube-system get cm kubeadm-config -o yaml'", ""], None, None


def check_expiration(node: SimNode, args: list[str] | None = None) -> Result:
    """kubeadm's two tables, from the node's certificates."""
    state = _STATE.get(node)
    if state is None:
        return Result.error(1, "error reading certificates: no control plane here\n")
    lines, _, failed = _config(node, args or [], "check-expiration")
    if failed is not None:
        return failed
    now = node.cluster.now()

    def item(name: str, until: dt.datetime, ca: str | None) -> dict[str, object]:
        found: dict[str, object] = {"name": name,
                                    "expirationDate": until.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if ca is not None:
            found["caName"] = ca
        found["externallyManaged"] = False
        return found

    signer = dict(LEAVES)
    info = {"certificates": [item(n, until, signer[n]) for n, until in state.expires.items()],
            "certificateAuthorities": [item(ca, state.ca_expires, None) for ca in AUTHORITIES]}
    lines += texts.expiration_tables(info, now, with_ca=True)
    return Result.ok("".join(line + "\n" for line in lines))


def renew(node: SimNode, args: list[str]) -> Result:
    """``kubeadm certs renew NAME|all``: a new year and serial; nothing restarted."""
    state = _STATE.get(node)
    if state is None:
        return Result.error(1, "error reading certificates: no control plane here\n")
    if not args or args[0].startswith("-"):
        return Result.error(1, 'missing subcommand; "renew" is not meant to be run on its own\n')
    what = args[0]
    if what != "all" and what not in state.expires:
        return Result.error(1, f'invalid subcommand "{what}"\n')
    names = list(state.expires) if what == "all" else [what]
    lines, config, failed = _config(node, args[1:], "renew")
    if failed is not None:
        return failed
    state.configs.append(config)
    state.defaults += bool(lines and "Falling back" in lines[0])
    for name in names:
        state.expires[name] = node.cluster.now() + dt.timedelta(days=365)
        state.serials[name] = next(_serials)
        state.renewals.append(name)
        lines.append(f"certificate {name} renewed")
        if name == "admin.conf":
            _renew_admin_conf(node, state)
    _write_cert(node, state)
    if what == "all":
        lines += ["", DONE]
    return Result.ok("".join(line + "\n" for line in lines))


def _renew_admin_conf(node: SimNode, state: Certificates) -> None:
    """admin.conf gets a new client certificate (the rest of the file stays)."""
    text = node.files.get(ADMIN_CONF, b"").decode()
    pem = _pem(state.serials["admin.conf"], state.expires["admin.conf"])
    lines = [
        f"    client-certificate-data: {base64.b64encode(pem).decode()}"
        if line.strip().startswith("client-certificate-data:") else line
        for line in text.splitlines()
    ]
    node.write(ADMIN_CONF, ("\n".join(lines) + "\n").encode(), 0o600)


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
