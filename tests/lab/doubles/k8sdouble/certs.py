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

import datetime as dt
import json
import sys
from typing import Any

import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k8sdouble import certmodel, cluster, env, pki
from k8sdouble.certmodel import AUTHORITIES, DONE, Authority, Leaf, authority, config_flag
from k8sdouble.errors import ApiError, CommandError


def minor() -> int:
    return cluster.version_tuple(env.node().version)[1]


def leaves() -> list[Leaf]:
    """The certificates this kubeadm version knows (super-admin.conf arrived in v1.29)."""
    return certmodel.leaves(minor())


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


def _expiry(cert: x509.Certificate | None) -> dt.datetime | None:
    return pki.expiry(cert) if cert is not None else None


def expiration(now: dt.datetime) -> dict[str, Any]:
    """What ``check-expiration -o json`` reports, from the certificates on disk."""
    return certmodel.expiration_info(
        [certmodel.entry(leaf.name, _expiry(read_leaf(leaf)), leaf.ca,
                         externally_managed(authority(leaf.ca)), now) for leaf in leaves()],
        [certmodel.entry(ca.name, _expiry(read_authority(ca)), None, externally_managed(ca), now)
         for ca in AUTHORITIES],
        minor())


def read_config_lines(prefix: str, config: str | None = None) -> list[str]:
    """kubeadm's informational lines about the ClusterConfiguration it reads from the cluster
    (and the fallback when there is no cluster to read it from). With ``--config FILE`` kubeadm
    reads that file instead, says nothing about it, and fails when it cannot."""
    if config is not None:
        try:
            text: str | None = env.path(config).read_text()
        except OSError:
            text = None
        certmodel.check_config_file(config, text)
        return []
    try:
        cluster.admin_client(timeout=3).request("GET", "/lab/v1/cluster")
        reachable = True
    except (CommandError, ApiError, OSError):
        reachable = False
    return certmodel.cluster_config_lines(prefix, minor(), reachable)


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
    for line in certmodel.tables(info, now, minor()):
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
    env.write_atomic(path, pki.with_client(env.path(path).read_text(), pair), 0o600)


def renew_one(leaf: Leaf, days: int = pki.CERT_DAYS) -> str:
    """Renew one certificate; the line kubeadm prints for it."""
    old = read_leaf(leaf)
    if old is None:
        return f"MISSING! {leaf.long_name}"
    ca = authority(leaf.ca)
    if externally_managed(ca):
        return f"Detected external {leaf.ca}, {leaf.long_name} can't be renewed"
    pair = _reissue(old, pki.load_pair(ca.base + ".crt", ca.base + ".key"), days)
    if leaf.kubeconfig:
        _write_kubeconfig(leaf.path, pair)
    else:
        pki.save_pair(pair, leaf.path)
    return certmodel.renewed(leaf)


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
    what = certmodel.renew_target(args, [leaf.name for leaf in leaves()])
    flags = args[1:]
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
