"""kubeadm's certificates as data: which there are, which CA signs each, what ``kubeadm certs
check-expiration`` reports from their expiry dates and what ``kubeadm certs renew`` says; and
what a client says of an API whose serving certificate expired.

Nothing here reads a file or the node's identity, so that the two simulators of a node print the
same texts: the lab's doubles (:mod:`k8sdouble.certs`) take the dates from the real certificates
under /etc/kubernetes, the fleet (tests/fleet/certs.py) from the dates it keeps in memory for a
thousand nodes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import yaml

from k8sdouble import env, kubeadmtexts
from k8sdouble.errors import CommandError

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


def leaves(minor: int) -> list[Leaf]:
    """The certificates kubeadm v1.``minor`` knows (super-admin.conf arrived in v1.29)."""
    return [leaf for leaf in LEAVES if minor >= leaf.since_minor]


def authority(name: str) -> Authority:
    return next(a for a in AUTHORITIES if a.name == name)


# --- check-expiration ---------------------------------------------------------------------------

def entry(name: str, expires: dt.datetime | None, ca: str | None, external: bool,
          now: dt.datetime) -> dict[str, Any]:
    """One item of ``check-expiration -o json``; ``expires`` None: the file is missing."""
    item: dict[str, Any] = {"name": name}
    if expires is None:
        item.update({"expirationDate": None, "residualTime": 0, "externallyManaged": external,
                     "missing": True})
        return item
    item["expirationDate"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    item["residualTime"] = int((expires - now).total_seconds()) * 1_000_000_000
    if ca is not None:
        item["caName"] = ca
    item["externallyManaged"] = external
    return item


def expiration_info(certificates: list[dict[str, Any]], authorities: list[dict[str, Any]],
                    minor: int) -> dict[str, Any]:
    """What ``check-expiration -o json`` reports (output.kubeadm.k8s.io CertificateExpirationInfo)."""
    version = "v1alpha3" if minor >= 28 else "v1alpha2"
    return {
        "kind": "CertificateExpirationInfo",
        "apiVersion": f"output.kubeadm.k8s.io/{version}",
        "certificates": certificates,
        "certificateAuthorities": authorities,
    }


def tables(info: dict[str, Any], now: dt.datetime, minor: int) -> list[str]:
    """The text form: both tables (before v1.17 one table, without the authority column)."""
    return kubeadmtexts.expiration_tables(info, now, with_ca=minor >= 17)


# --- the configuration kubeadm works from ---------------------------------------------------------

def config_flag(flags: list[str]) -> str | None:
    """The file of ``--config FILE`` / ``--config=FILE`` among ``flags``, if any."""
    for i, flag in enumerate(flags):
        if flag.startswith("--config="):
            return flag.split("=", 1)[1]
        if flag == "--config" and i + 1 < len(flags):
            return flags[i + 1]
    return None


def check_config_file(config: str, text: str | None) -> None:
    """What kubeadm says of the ``--config`` file it is given (``text`` None: there is none):
    nothing when it holds an InitConfiguration or a ClusterConfiguration."""
    if text is None:
        raise CommandError(f"open {config}: no such file or directory")
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise CommandError(f"error converting YAML to JSON: {exc}") from None
    kinds = {d.get("kind") for d in docs if isinstance(d, dict)}
    if not kinds & {"InitConfiguration", "ClusterConfiguration"}:
        raise CommandError(f"no InitConfiguration or ClusterConfiguration kind was found in "
                           f"the YAML file {config}")


def cluster_config_lines(prefix: str, minor: int, reachable: bool) -> list[str]:
    """kubeadm's informational lines about the ClusterConfiguration it reads from the cluster,
    and the fallback when there is no cluster to read it from (the API does not answer)."""
    if not reachable:
        return [f"[{prefix}] Error reading configuration from the Cluster. Falling back to "
                "default configuration"]
    if minor >= 32:
        return [f'[{prefix}] Reading configuration from the "kubeadm-config" ConfigMap in '
                'namespace "kube-system"...',
                f"[{prefix}] Use 'kubeadm init phase upload-config --config your-config-file' to "
                "re-upload it."]
    return [f"[{prefix}] Reading configuration from the cluster...",
            f"[{prefix}] FYI: You can look at this config file with "
            "'kubectl -n kube-system get cm kubeadm-config -o yaml'"]


# --- renew ----------------------------------------------------------------------------------------

def renew_target(args: list[str], names: list[str]) -> str:
    """The certificate ``kubeadm certs renew ARGS`` names (or ``all``), or kubeadm's refusal."""
    if not args or args[0].startswith("-"):
        raise CommandError('missing subcommand; "renew" is not meant to be run on its own')
    if args[0] != "all" and args[0] not in names:
        raise CommandError(f'invalid subcommand "{args[0]}"')
    return args[0]


def renewed(leaf: Leaf) -> str:
    """The line kubeadm prints for a certificate it renewed."""
    return f"{leaf.long_name} renewed"


# --- a client of an API whose serving certificate expired ---------------------------------------

def verify_prefix(minor: int) -> str:
    """Go 1.20 (Kubernetes v1.27) began to put ``tls: failed to verify certificate:`` first."""
    return "tls: failed to verify certificate: " if minor >= 27 else ""


def expired_serving_certificate(minor: int, now: dt.datetime | None = None,
                                after: dt.datetime | None = None) -> str:
    """Go's TLS client on a serving certificate that expired; with the times when the client
    could read the certificate's notAfter (as Go's message has it)."""
    when = ("" if now is None or after is None
            else f": current time {go_time(now)} is after {go_time(after)}")
    return f"{verify_prefix(minor)}x509: certificate has expired or is not yet valid{when}"


def go_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
