"""kubeadm's own words, once for every double: the lab's (inside the nodes' containers) and the
in-process fleet's (``tests/fleet/kubeadm.py``).

The tool reads these texts (kubeadm/ parses the init and join output, the failure lines, the
upgrade lines); a double that words them its own way would test a parser against a kubeadm that
does not exist, and two doubles that word them differently would let a test pass on one and
fail on the other. So each text is written here, in kubeadm's wording (docs/node.md, "kubeadm's
own texts"), and the doubles only choose which to print. Plain functions of plain values: no
I/O, the standard library only (the lab runs this module inside a node's container). The
printers of kubeadm's tables (Go's tabwriter, apimachinery's short durations, the two tables of
``certs check-expiration``) are here for the same reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

STACK_HINT = "To see the stack trace of this error execute with --v=5 or higher"

# -- failures ------------------------------------------------------------------------------


def phase_error(phase: str, text: str) -> str:
    """How kubeadm reports a failed workflow phase."""
    return f"error execution phase {phase}: {text}"


def preflight_errors(errors: list[tuple[str, str]]) -> str:
    """The preflight phase's fatal checks (check name, what it found), kubeadm's framing."""
    found = "\n".join(f"\t[ERROR {check}]: {text}" for check, text in errors)
    return ("[preflight] Some fatal errors occurred:\n" + found + "\n[preflight] If you know "
            "what you are doing, you can make a check non-fatal with "
            "`--ignore-preflight-errors=...`")


def identity_error(text: str) -> str:
    """A join's discovery could not trust the API server (the preflight phase's words)."""
    return f"couldn't validate the identity of the API Server: {text}"


def no_jws_signature(token_id: str) -> str:
    """The token is not (or no longer) one the cluster signs cluster-info with."""
    return identity_error("could not find a JWS signature in the cluster-info ConfigMap for "
                          f'token ID "{token_id}"')


def ca_not_pinned(actual_pin: str) -> str:
    """The cluster's CA is not among the join's ``caCertHashes``."""
    return identity_error("cluster CA found in cluster-info ConfigMap is invalid: none of the "
                          f'public keys "{actual_pin}" are pinned')


UNSAFE_DISCOVERY = (
    "using token-based discovery without caCertHashes can be unsafe. Set "
    "unsafeSkipCAVerification as true in your kubeadm config file or pass "
    "--discovery-token-unsafe-skip-ca-verification flag to continue"
)


def node_name_taken(name: str) -> str:
    """A join whose node name a Ready Node already has (the kubelet-start phase's words)."""
    return (f'a Node with name "{name}" and status "Ready" already exists in the cluster. You '
            "must delete the existing Node or change the name of this new joining Node")


def etcd_unhealthy(endpoint: str) -> str:
    """check-etcd before a control-plane join: a listed member does not answer."""
    return (f"etcd cluster is not healthy: failed to dial endpoint {endpoint} with maintenance "
            "client: context deadline exceeded")


CERTS_SECRET_MISSING = (
    'error downloading certs: error downloading the secret: Secret "kubeadm-certs" was not '
    'found in the "kube-system" Namespace. This Secret might have expired. Please, run '
    "`kubeadm init phase upload-certs --upload-certs` on a control plane to generate a new one"
)
CERTS_KEY_WRONG = "cipher: message authentication failed"


def certs_undecryptable(reason: str = CERTS_KEY_WRONG) -> str:
    """The join's certificate key does not open the uploaded certificates."""
    return f"error downloading certs: error decoding secret data with provided key: {reason}"


# -- init and join ---------------------------------------------------------------------------

INIT_SUCCESS_HEAD = """Your Kubernetes control-plane has initialized successfully!

To start using your cluster, you need to run the following as a regular user:

  mkdir -p $HOME/.kube
  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config
  sudo chown $(id -u):$(id -g) $HOME/.kube/config

Alternatively, if you are the root user, you can run:

  export KUBECONFIG=/etc/kubernetes/admin.conf

You should now deploy a pod network to the cluster.
Run "kubectl apply -f [podnetwork].yaml" with one of the options listed at:
  https://kubernetes.io/docs/concepts/cluster-administration/addons/
"""


def join_command(endpoint: str, token: str, pin: str, tab: bool, cp_key: str | None,
                 control_plane: bool, one_line: bool = False) -> list[str]:
    """kubeadm's join command lines (continuations with TAB, or four spaces before v1.21);
    ``one_line`` as ``kubeadm token create --print-join-command`` prints it."""
    if one_line:
        line = f"kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash {pin} "
        if control_plane and cp_key:
            line += f"--control-plane --certificate-key {cp_key}"
        return [line]
    indent = "\t" if tab else "    "
    lines = [f"kubeadm join {endpoint} --token {token} \\",
             f"{indent}--discovery-token-ca-cert-hash {pin} " + ("\\" if control_plane else "")]
    if control_plane:
        lines.append(f"{indent}--control-plane --certificate-key {cp_key}" if cp_key
                     else f"{indent}--control-plane ")
    return lines


def init_success(endpoint: str, token: str, pin: str, *, tab: bool, has_endpoint: bool,
                 cert_key: str | None) -> list[str]:
    """What ``kubeadm init`` prints at its end for one bootstrap token, as lines: the head, the
    control-plane join (with a controlPlaneEndpoint only), the worker join."""
    lines = [INIT_SUCCESS_HEAD]
    if has_endpoint:
        if cert_key:
            lines.append("You can now join any number of control-plane nodes running the "
                         "following command on each as root:")
        else:
            lines.append("You can now join any number of control-plane nodes by copying "
                         "certificate authorities\nand service account keys on each node and "
                         "then running the following as root:")
        lines.append("")
        lines += ["  " + line for line in join_command(endpoint, token, pin, tab, cert_key, True)]
        lines.append("")
        if cert_key:
            lines.append("Please note that the certificate-key gives access to cluster "
                         "sensitive data, keep it secret!\nAs a safeguard, uploaded-certs will be "
                         "deleted in two hours; If necessary, you can use\n\"kubeadm init phase "
                         "upload-certs --upload-certs\" to reload certs afterward.")
            lines.append("")
    lines.append("Then you can join any number of worker nodes by running the following on "
                 "each as root:")
    lines.append("")
    lines += join_command(endpoint, token, pin, tab, None, False)
    return lines


WORKER_JOINED = """
This node has joined the cluster:
* Certificate signing request was sent to apiserver and a response was received.
* The Kubelet was informed of the new secure connection details.

Run 'kubectl get nodes' on the control-plane to see this node join the cluster.
"""
CONTROL_PLANE_JOINED = """
This node has joined the cluster and a new control plane instance was created:

* Certificate signing request was sent to apiserver and approval was received.
* The Kubelet was informed of the new secure connection details.
* Control plane label and taint were applied to the new node.
* The Kubernetes control plane instances scaled up.
* A new etcd member was added to the local/stacked etcd cluster.

To start administering your cluster from this node, you need to run the following as a regular user:

\tmkdir -p $HOME/.kube
\tsudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config
\tsudo chown $(id -u):$(id -g) $HOME/.kube/config

Run 'kubectl get nodes' to see this node join the cluster.
"""

# -- tokens and the uploaded certificates ------------------------------------------------------

UPLOAD_CERTS_SKIPPED = "[upload-certs] Skipping phase. Please see --upload-certs"
UPLOAD_CERTS_STORED = ('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in '
                       'the "kube-system" Namespace')
UPLOAD_CERTS_KEY = "[upload-certs] Using certificate key:"
TOKEN_DELETE_MISSING = ("missing subcommand; 'token delete' is missing token of form "
                        r'"^([a-z0-9]{6})$" or "^([a-z0-9]{6})\.([a-z0-9]{16})$"')


def token_deleted(token_id: str) -> str:
    return f'bootstrap token "{token_id}" deleted'


def token_not_found(token_id: str) -> str:
    """``kubeadm token delete`` of a token the cluster does not have."""
    return (f'failed to delete bootstrap token "{token_id}": secrets '
            f'"bootstrap-token-{token_id}" not found')


# -- certs check-expiration ----------------------------------------------------------------------

DATE_FORMAT = "%b %d, %Y %H:%M UTC"  # Go's "Jan 02, 2006 15:04 MST" for a UTC time


def short_duration(seconds: float) -> str:
    """k8s.io/apimachinery's ShortHumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    hours = s // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{int(seconds / 3600 / 24 / 365)}y"


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> list[str]:
    """Go's text/tabwriter with padchar ' ' and no flags: a cell ends at a TAB, and each column
    block (consecutive lines with that cell) is as wide as its widest cell plus padding."""
    cells = [line.split("\t") for line in lines]
    widths: list[int] = []
    out: list[str] = []

    def write(line0: int, line1: int) -> None:
        for row in cells[line0:line1]:
            text = ""
            for j, cell in enumerate(row):
                text += cell.ljust(widths[j]) if j < len(widths) else cell
            out.append(text)

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(cells[this]) - 1:
                this += 1
                continue
            write(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(cells[this]) - 1:
                width = max(width, len(cells[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write(line0, line1)

    fmt(0, len(cells))
    return out


def expiration_tables(info: dict[str, Any], now: dt.datetime, *, with_ca: bool) -> list[str]:
    """``kubeadm certs check-expiration``'s text form from its JSON form
    (``CertificateExpirationInfo``: each item's name, expirationDate, caName, externallyManaged,
    or missing): both tables, or before v1.17 one table without the authority column."""

    def when(item: dict[str, Any]) -> tuple[str, str]:
        expires = dt.datetime.strptime(item["expirationDate"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.UTC)
        return expires.strftime(DATE_FORMAT), short_duration((expires - now).total_seconds())

    def yes_no(item: dict[str, Any]) -> str:
        return f"{'yes' if item['externallyManaged'] else 'no':<8}"

    lines = ["CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tEXTERNALLY MANAGED"
             if with_ca else "CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tEXTERNALLY MANAGED"]
    for item in info["certificates"]:
        if item.get("missing"):
            lines.append(f"!MISSING! {item['name']}\t")
            continue
        date, residual = when(item)
        ca = f"{item.get('caName', '')}\t" if with_ca else ""
        lines.append(f"{item['name']}\t{date}\t{residual}\t{ca}{yes_no(item)}")
    if with_ca:
        lines.append("")
        lines.append("CERTIFICATE AUTHORITY\tEXPIRES\tRESIDUAL TIME\tEXTERNALLY MANAGED")
        for item in info["certificateAuthorities"]:
            if item.get("missing"):
                lines.append(f"!MISSING! {item['name']}\t")
                continue
            date, residual = when(item)
            lines.append(f"{item['name']}\t{date}\t{residual}\t{yes_no(item)}")
    return tabwrite(lines)
