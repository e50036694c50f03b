"""``kubeadm reset -f``: leave etcd if a control plane, then delete what kubeadm wrote.

It does not delete the Node object (the reference: drain first, ``kubectl delete node`` after).
The kubelet double stops when its configuration disappears, so the node needs a reboot before
it can join again.
"""

from __future__ import annotations

import shutil
import sys

from k8sdouble import cluster, env, etcdmember
from k8sdouble.cluster import out
from k8sdouble.errors import ApiError

FILES = ["admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf",
         "controller-manager.conf", "scheduler.conf"]


def run(force: bool) -> int:
    if not force:
        out("[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will "
            "be reverted.")
        out("[reset] Are you sure you want to proceed? [y/N]: ")
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("error: aborted reset operation", file=sys.stderr)
            return 1
    node = env.node()
    control_plane = env.path(f"{env.MANIFESTS}/kube-apiserver.yaml").exists()
    out("[reset] Reading configuration from the cluster...")
    out("[reset] FYI: You can look at this config file with "
        "'kubectl -n kube-system get cm kubeadm-config -o yaml'")
    out("[preflight] Running pre-flight checks")
    if control_plane and env.path(env.ADMIN_CONF).exists():
        members: list[str] | None = None
        try:
            client = cluster.admin_client(timeout=5)
            about = client.request("GET", "/lab/v1/cluster")
            members = [m for m in about.get("members") or [] if m != node.name]
            client.request("PATCH", "/lab/v1/cluster", {"members": members})
        except (ApiError, Exception) as exc:
            print(f"W0000 [reset] Unable to fetch the kubeadm-config ConfigMap from cluster: "
                  f"{exc}", file=sys.stderr)
        try:
            if node.real_etcd:  # remove-etcd-member: through the node's own etcd, if it answers
                etcdmember.remove_self(node.name, node.address)
            elif members == []:  # the last member: etcd's data goes with it
                env.path(cluster.store_path()).unlink(missing_ok=True)
        except Exception as exc:
            print(f"W0000 [reset] Failed to remove etcd member: {exc}, please manually remove "
                  "this etcd member using etcdctl", file=sys.stderr)
    if control_plane:
        etcd = env.path(env.ETCD_DIR)
        if etcd.is_dir():
            for child in etcd.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        out(f"[reset] Deleted contents of the etcd data directory: {env.ETCD_DIR}")
    out("[reset] Stopping the kubelet service")
    out(f'[reset] Unmounting mounted directories in "{env.KUBELET_DIR}"')
    dirs = [env.MANIFESTS, env.KUBELET_DIR, env.PKI]
    for d in dirs:
        target = env.path(d)
        if target.is_dir():
            for child in target.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    out(f"[reset] Deleting contents of directories: [{' '.join(dirs)}]")
    for name in FILES:
        env.path(f"{env.K8S}/{name}").unlink(missing_ok=True)
    out(f"[reset] Deleting files: [{' '.join(f'{env.K8S}/{n}' for n in FILES)}]")
    out()
    out("The reset process does not clean CNI configuration. To do so, you must remove "
        "/etc/cni/net.d")
    out()
    out("The reset process does not reset or clean up iptables rules or IPVS tables.")
    out("If you wish to reset iptables, you must do so manually by using the \"iptables\" command.")
    out()
    out("The reset process does not clean your kubeconfig files and you must remove them manually.")
    out("Please, check the contents of the $HOME/.kube/config file.")
    return 0
