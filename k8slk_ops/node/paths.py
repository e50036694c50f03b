"""Where things are on a LinuxKit node (docs/node.md, "Paths").

Paths as the SSH shell sees them (``HOST_*``) and as the kubelet container sees them
(``CONTAINER_*``); the two differ (``/run/node`` is ``/run`` inside, ``/var/node/etc/kubernetes``
is ``/etc/kubernetes``), and mixing them up is the classic mistake, so both live here only.
"""

CONTAINERD_NAMESPACE = "services.linuxkit"
KUBELET_TASK = "kubelet"
KUBEADM_TASK = "kubeadm"

# Seen from the SSH shell.
KUBEADM_YAML = "/run/node/kubeadm.yaml"
KUBEADM_RUN = "/run/node/kubeadm-run"
KUBEADM_LOG = "/var/log/kubeadm.out.log"
MARKER = "/var/node/var/lib/kubelet/config.yaml"
ADMIN_CONF = "/var/node/etc/kubernetes/admin.conf"
CA_CERT = "/var/node/etc/kubernetes/pki/ca.crt"
# kubeadm's certificate directory; `etcd snapshot --pki` reads the CAs and SA keys from here.
PKI_DIR = "/var/node/etc/kubernetes/pki"
APISERVER_CERT = "/var/node/etc/kubernetes/pki/apiserver.crt"  # the API's serving certificate
# The kubelet runs a static pod per manifest here; `certs renew` parks them beside it to
# restart the control plane (kubeadm's documented way).
MANIFESTS = "/var/node/etc/kubernetes/manifests"
PARKED_MANIFESTS = "/var/node/etc/kubernetes/manifests.k8slk-ops-restart"
# etcd's data directory (kubeadm's hostPath for the etcd static pod, /var/lib/etcd on the host and
# in the etcd container): where a snapshot is written, so that the shell can read and remove it.
ETCD_DATA = "/var/node/var/lib/etcd"
# What `etcd restore --pki` keeps on a control plane it rebuilds (etcdrebuild.py), on the
# persistent disk: the snapshot copy and the marker that a rerun reads with the facts.
REBUILD_DIR = "/var/node/var/lib/k8slk-ops-rebuild"
REBUILD_MARKER = f"{REBUILD_DIR}/marker"
# The cluster's configuration handed to `kubeadm certs` while the API is silent (tmpfs, 0600,
# removed after use; not /run/node/kubeadm.yaml, which is the init/join trigger's).
CERTS_CONFIG = "/run/node/k8slk-ops-certs.yaml"
# The cluster lock lives in the node's tmpfs /run: a reboot clears a stale one.
LOCK_FILE = "/run/k8slk-ops.lock"

# Seen from inside the kubelet container.
CONTAINER_CERTS_CONFIG = "/run/k8slk-ops-certs.yaml"
# The kubelet's client certificate (and its key, in the same file: read only with openssl there).
CONTAINER_KUBELET_CLIENT_CERT = "/var/lib/kubelet/pki/kubelet-client-current.pem"

# Seen from inside the etcd static pod's container.
ETCD_CONTAINER_DATA = "/var/lib/etcd"
