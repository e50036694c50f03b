"""``kubeadm certs check-expiration`` and ``kubeadm certs renew`` (``kubeadm alpha certs ...``
up to v1.20), read from and written to the real files under /etc/kubernetes.

The tables are what kubeadm's printer makes: Go's tabwriter (min width 10, padding 3), dates as
``Jan 02, 2006 15:04 MST`` in UTC, residual times as kubectl's short human durations, and a
``!MISSING! <name>`` row for a file that is not there. Renewal keeps each certificate's subject,
SANs, usages and issuer, with a new key and a new year, as kubeadm's renewal manager does; it
does not restart anything (kubeadm leaves that to the operator, and says so). ``kubeadm upgrade``
renews through :func:`renew` too.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k8sdouble import cluster, env, kubeadmtexts, pki
from k8sdouble.errors import ApiError, CommandError

DONE = ("Done renewing certificates. You must restart the kube-apiserver, "
        "kube-controller-manager, kube-scheduler and etcd, so that they can use the new "
        "certificates.")


@dataclass(frozen=True)
class Authority:
    name: str
    base: str  # the pki path without .crt/.key


@dataclass(frozen=True)
class Leaf:
    """One certificate kubeadm manages: a pki pair or the client cert inside a kubeconfig."""

    name: str
    long_name: str
    path: str  # the pki base path, or the kubeconfig file
    ca: str
    kubeconfig: bool = False
    since_minor: int = 0


AUTHORITIES = (
    Authority("ca", f"{env.PKI}/ca"),
    Authority("etcd-ca", f"{env.PKI}/etcd/ca"),
    Authority("front-proxy-ca", f"{env.PKI}/front-proxy-ca"),
)
# In kubeadm's order: sorted by name.
LEAVES = (
    Leaf("admin.conf", "certificate embedded in the kubeconfig file for the admin to use and for "
         "kubeadm itself", env.ADMIN_CONF, "ca", kubeconfig=True),
    Leaf("apiserver", "certificate for serving the Kubernetes API", f"{env.PKI}/apiserver", "ca"),
    Leaf("apiserver-etcd-client", "certificate the apiserver uses to access etcd",
         f"{env.PKI}/apiserver-etcd-client", "etcd-ca"),
    Leaf("apiserver-kubelet-client", "certificate for the API server to connect to kubelet",
         f"{env.PKI}/apiserver-kubelet-client", "ca"),
    Leaf("controller-manager.conf", "certificate embedded in the kubeconfig file for the "
         "controller manager to use", env.CONTROLLER_MANAGER_CONF, "ca", kubeconfig=True),
    Leaf("etcd-healthcheck-client", "certificate for liveness probes to healthcheck etcd",
         f"{env.PKI}/etcd/healthcheck-client", "etcd-ca"),
    Leaf("etcd-peer", "certificate for etcd nodes to communicate with each other",
         f"{env.PKI}/etcd/peer", "etcd-ca"),
    Leaf("etcd-server", "certificate for serving etcd", f"{env.PKI}/etcd/server", "etcd-ca"),
    Leaf("front-proxy-client", "certificate for the front proxy client",
         f"{env.PKI}/front-proxy-client", "front-proxy-ca"),
    Leaf("scheduler.conf", "certificate embedded in the kubeconfig file for the scheduler "
         "manager to use", env.SCHEDULER_CONF, "ca", kubeconfig=True),
    Leaf("super-admin.conf", "certificate embedded in the kubeconfig file for the super-admin",
         env.SUPER_ADMIN_CONF, "ca", kubeconfig=True, since_minor=29),
)


def minor() -> int:
    return cluster.version_tuple(env.node().version)[1]


def leaves() -> list[Leaf]:
    """The certificates this kubeadm version knows (super-admin.conf arrived in v1.29)."""
    m = minor()
    return [leaf for leaf in LEAVES if m >= leaf.since_minor]


def _authority(name: str) -> Authority:
    return next(a for a in AUTHORITIES if a.name == name)


# --- reading ------------------------------------------------------------------------------------

def read_leaf(leaf: Leaf) -> x509.Certificate | None:
    """The certificate on disk; None when its file (or a kubeconfig's client cert) is missing."""
    if not leaf.kubeconfig:
        target = env.path(leaf.path + ".crt")
        return x509.load_pem_x509_certificate(target.read_bytes()) if target.exists() else None
    target = env.path(leaf.path)
    if not target.exists():
        return None
    pem = pki.read_kubeconfig(target.read_text()).cert_pem
    return x509.load_pem_x509_certificate(pem) if pem else None


def read_authority(ca: Authority) -> x509.Certificate | None:
    target = env.path(ca.base + ".crt")
    return x509.load_pem_x509_certificate(target.read_bytes()) if target.exists() else None


def externally_managed(ca: Authority) -> bool:
    """kubeadm's rule: a CA whose certificate is there without its key is someone else's."""
    return env.path(ca.base + ".crt").exists() and not env.path(ca.base + ".key").exists()


def expiration(now: dt.datetime) -> dict[str, Any]:
    """What ``check-expiration -o json`` reports (output.kubeadm.k8s.io CertificateExpirationInfo)."""
    def entry(name: str, cert: x509.Certificate | None, ca: str | None,
              external: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"name": name}
        if cert is None:
            item.update({"expirationDate": None, "residualTime": 0, "externallyManaged": external,
                         "missing": True})
            return item
        expires = pki.expiry(cert)
        item["expirationDate"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        item["residualTime"] = int((expires - now).total_seconds()) * 1_000_000_000
        if ca is not None:
            item["caName"] = ca
        item["externallyManaged"] = external
        return item

    version = "v1alpha3" if minor() >= 28 else "v1alpha2"
    return {
        "kind": "CertificateExpirationInfo",
        "apiVersion": f"output.kubeadm.k8s.io/{version}",
        "certificates": [entry(leaf.name, read_leaf(leaf), leaf.ca,
                               externally_managed(_authority(leaf.ca))) for leaf in leaves()],
        "certificateAuthorities": [entry(ca.name, read_authority(ca), None, externally_managed(ca))
                                   for ca in AUTHORITIES],
    }


def tables(info: dict[str, Any], now: dt.datetime) -> list[str]:
    """The text form: both tables (before v1.17 one table, without the authority column)."""
    return kubeadmtexts.expiration_tables(info, now, with_ca=minor() >= 17)


def config_flag(flags: list[str]) -> str | None:
    """The file of ``--config FILE`` / ``--config=FILE`` among ``flags``, if any."""
    for i, flag in enumerate(flags):
        if flag.startswith("--config="):
            return flag.split("=", 1)[1]
        if flag == "--config" and i + 1 < len(flags):
            return flags[i + 1]
    return None


def read_config_lines(prefix: str, config: str | None = None) -> list[str]:
    """kubeadm's informational lines about the ClusterConfiguration it reads from the cluster
    (and the fallback when there is no cluster to read it from). With ``--config FILE`` kubeadm
    reads that file instead, says nothing about it, and fails when it cannot."""
    if config is not None:
        try:
            docs = list(yaml.safe_load_all(env.path(config).read_text()))
        except OSError:
            raise CommandError(f"open {config}: no such file or directory") from None
        except yaml.YAMLError as exc:
            raise CommandError(f"error converting YAML to JSON: {exc}") from None
        kinds = {d.get("kind") for d in docs if isinstance(d, dict)}
        if not kinds & {"InitConfiguration", "ClusterConfiguration"}:
            raise CommandError(f"no InitConfiguration or ClusterConfiguration kind was found in "
                               f"the YAML file {config}")
        return []
    try:
        cluster.admin_client(timeout=3).request("GET", "/lab/v1/cluster")
    except (CommandError, ApiError, OSError):
        return [f"[{prefix}] Error reading configuration from the Cluster. Falling back to "
                "default configuration"]
    if minor() >= 32:
        return [f'[{prefix}] Reading configuration from the "kubeadm-config" ConfigMap in '
                'namespace "kube-system"...',
                f"[{prefix}] Use 'kubeadm init phase upload-config --config your-config-file' to "
                "re-upload it."]
    return [f"[{prefix}] Reading configuration from the cluster...",
            f"[{prefix}] FYI: You can look at this config file with "
            "'kubectl -n kube-system get cm kubeadm-config -o yaml'"]


def check_expiration(output: str, config: str | None = None) -> int:
    now = dt.datetime.now(dt.UTC)
    if output not in ("", "text", "json", "yaml"):
        raise CommandError(f'unable to match a printer suitable for the output format "{output}", '
                           'allowed formats are: json,text,yaml', hint=False)
    info_lines = read_config_lines("check-expiration", config)
    info = expiration(now)
    if output in ("json", "yaml"):
        for line in info_lines:  # kept off stdout so that it stays one document
            print(line, file=sys.stderr, flush=True)
        if output == "json":
            print(json.dumps(info, indent=4))
        else:
            print(yaml.safe_dump(info, sort_keys=False), end="")
        return 0
    for line in info_lines:
        cluster.out(line)
    cluster.out()
    for line in tables(info, now):
        cluster.out(line)
    return 0


# --- renewing -----------------------------------------------------------------------------------

def _reissue(old: x509.Certificate, ca: pki.Pair, days: int = pki.CERT_DAYS) -> pki.Pair:
    """The same subject, SANs and usages from the same CA, with a new key and a new year (or
    ``days``)."""
    cn = old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    orgs = tuple(str(a.value) for a in old.subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME))
    try:
        usages = list(old.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    try:
        san = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = ([str(n) for n in san.get_values_for_type(x509.DNSName)]
                + [str(n) for n in san.get_values_for_type(x509.IPAddress)])
    except x509.ExtensionNotFound:
        sans = []
    return pki.issue(ca, str(cn), orgs, server=ExtendedKeyUsageOID.SERVER_AUTH in usages,
                     client=ExtendedKeyUsageOID.CLIENT_AUTH in usages, sans=sans or None,
                     days=days)


def _write_kubeconfig(path: str, pair: pki.Pair) -> None:
    target = env.path(path)
    doc = yaml.safe_load(target.read_text()) or {}
    contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
    user_name = (contexts.get(doc.get("current-context", "")) or {}).get("user")
    for user in doc.get("users") or []:
        if user_name is None or user.get("name") == user_name:
            entry = user.setdefault("user", {})
            entry["client-certificate-data"] = base64.b64encode(pair.cert_pem).decode()
            entry["client-key-data"] = base64.b64encode(pair.key_pem).decode()
            break
    env.write_atomic(path, yaml.safe_dump(doc, sort_keys=False), 0o600)


def renew_one(leaf: Leaf, days: int = pki.CERT_DAYS) -> str:
    """Renew one certificate; the line kubeadm prints for it."""
    old = read_leaf(leaf)
    if old is None:
        return f"MISSING! {leaf.long_name}"
    ca = _authority(leaf.ca)
    if externally_managed(ca):
        return f"Detected external {leaf.ca}, {leaf.long_name} can't be renewed"
    pair = _reissue(old, pki.load_pair(ca.base + ".crt", ca.base + ".key"), days)
    if leaf.kubeconfig:
        _write_kubeconfig(leaf.path, pair)
    else:
        pki.save_pair(pair, leaf.path)
    return f"{leaf.long_name} renewed"


def renew(names: list[str]) -> list[str]:
    """Renew the named certificates (every known one for ``all``), in kubeadm's order."""
    wanted = [leaf for leaf in leaves() if "all" in names or leaf.name in names]
    return [renew_one(leaf) for leaf in wanted]


def expire_soon(names: list[str], days: int) -> list[str]:
    """The lab's knob (not kubeadm's): re-issue these certificates from the same CA so that they
    expire in ``days``, as a cluster nearing its first anniversary has them."""
    known = {leaf.name: leaf for leaf in leaves()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CommandError(f"no such certificate: {', '.join(unknown)}", hint=False)
    return [renew_one(known[n], days) for n in names]


def renew_command(args: list[str], done: bool) -> int:
    names = [leaf.name for leaf in leaves()]
    if not args or args[0].startswith("-"):
        raise CommandError('missing subcommand; "renew" is not meant to be run on its own')
    what, flags = args[0], args[1:]
    if what != "all" and what not in names:
        raise CommandError(f'invalid subcommand "{what}"')
    valued = ("--config", "--cert-dir", "--kubeconfig", "--csr-dir")
    for i, flag in enumerate(flags):
        if i > 0 and flags[i - 1] in valued:
            continue  # the value of the flag before
        name = flag.split("=", 1)[0]
        if name not in ("--config", "--cert-dir", "--kubeconfig", "--csr-only", "--csr-dir",
                        "--use-api", "--v", "-v"):
            raise CommandError(f"Error: unknown flag: {name}", hint=False)
    for line in read_config_lines("renew", config_flag(flags)):
        cluster.out(line)
    cluster.out()
    for line in renew([what]):
        cluster.out(line)
    if what == "all" and done:
        cluster.out()
        cluster.out(DONE)
    return 0


# --- the command line ---------------------------------------------------------------------------

def _certs(args: list[str], parent: str, done: bool) -> int:
    if not args:
        raise CommandError('Error: missing subcommand; "certs" is not meant to be run on its own',
                           hint=False)
    sub, rest = args[0], args[1:]
    if sub == "check-expiration":
        output = ""
        it = iter(rest)
        config = config_flag(rest)
        for arg in it:
            if arg in ("-o", "--output"):
                output = next(it, "")
            elif arg.startswith(("-o=", "--output=")):
                output = arg.split("=", 1)[1]
            elif arg.startswith("-o") and len(arg) > 2:
                output = arg[2:]
            elif arg == "--config":
                next(it, "")
            elif arg.split("=", 1)[0] not in ("--config", "--cert-dir", "--kubeconfig", "--v"):
                raise CommandError(f"Error: unknown flag: {arg.split('=', 1)[0]}", hint=False)
        if output and minor() < 22:
            raise CommandError("Error: unknown shorthand flag: 'o' in -o", hint=False)
        return check_expiration(output, config)
    if sub == "renew":
        return renew_command(rest, done)
    raise CommandError(f'Error: unknown command "{sub}" for "{parent}"\nRun \'{parent} --help\' '
                       "for usage.", hint=False)


def main(args: list[str]) -> int:
    """``kubeadm certs ...``: from v1.20 (before, kubeadm has no such command)."""
    if minor() < 20:
        raise CommandError('unknown command "certs" for "kubeadm"\nRun \'kubeadm --help\' for '
                           "usage.", hint=False)
    return _certs(args, "kubeadm certs", done=True)


def alpha(args: list[str]) -> int:
    """``kubeadm alpha certs ...``: up to v1.20 (removed in v1.21)."""
    if not args:
        raise CommandError('Error: missing subcommand; "alpha" is not meant to be run on its own',
                           hint=False)
    if args[0] != "certs" or minor() > 20:
        raise CommandError(f'Error: unknown command "{args[0]}" for "kubeadm alpha"\nRun '
                           "'kubeadm alpha --help' for usage.", hint=False)
    return _certs(args[1:], "kubeadm alpha certs", done=minor() >= 20)
