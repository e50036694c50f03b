"""The fleet's cluster PKI: the CAs and keys ``kubeadm init`` makes once, made at the fleet's
start with the lab's certificate model (k8sdouble.pki) and shared by every simulated node.

``kubeadm init`` on a simulated node "writes" this CA as ca.crt, and a join checks the CA pin
it is given against it exactly as kubeadm does (k8sdouble.pki.pin), so a tool that pins the
wrong thing fails here as it would on a real cluster. Made once per fleet, not per node: the
RSA CA key is the one costly thing here.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8sdouble import pki


@dataclass(frozen=True)
class ClusterPKI:
    ca: pki.Pair  # RSA-2048, ten years, as kubeadm makes it
    admin: pki.Pair  # admin.conf's client certificate, a year
    # The files under /etc/kubernetes/pki that init makes once and a control plane's join
    # copies (kubeadm-certs): the three CAs and the service-account key pair.
    authorities: dict[str, bytes]
    ca_hash: str  # the pin every join is checked against (computed once, not per join)

    @property
    def ca_pem(self) -> bytes:
        return self.authorities["ca.crt"]


def make_pki() -> ClusterPKI:
    """The cluster CA, an admin client certificate, front-proxy-ca, etcd/ca and the sa keys."""
    ca = pki.new_ca("kubernetes")
    files = {"ca.crt": ca.cert_pem, "ca.key": ca.key_pem}
    for base, cn in (("front-proxy-ca", "front-proxy-ca"), ("etcd/ca", "etcd-ca")):
        pair = pki.new_ca(cn, "ECDSA-P256")
        files[f"{base}.crt"], files[f"{base}.key"] = pair.cert_pem, pair.key_pem
    files["sa.key"], files["sa.pub"] = pki.service_account_keys()
    admin = pki.issue(ca, "kubernetes-admin", ("kubeadm:cluster-admins",))
    return ClusterPKI(ca, admin, files, pki.pin(ca.cert))


def admin_conf(cluster_pki: ClusterPKI, server: str, cluster_name: str) -> bytes:
    """/etc/kubernetes/admin.conf as kubeadm writes it (server is the endpoint it was given)."""
    return pki.kubeconfig(f"https://{server}", cluster_pki.ca_pem, cluster_name,
                          client=cluster_pki.admin).encode()
