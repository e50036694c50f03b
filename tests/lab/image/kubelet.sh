#!/usr/bin/busybox sh
# The image's kubelet start script: wait for kubeadm's kubelet-start phase, then run kubelet.
# Its stdout is the node's /var/log/kubelet.out.log.
set -e

if [ ! -e /var/lib/kubelet/config.yaml ]; then
    echo "kubelet.sh: waiting for /var/lib/kubelet/config.yaml"
    while [ ! -e /var/lib/kubelet/config.yaml ]; do
        sleep 1
    done
    echo "kubelet.sh: /var/lib/kubelet/config.yaml has arrived"
fi

exec kubelet \
    --kubeconfig=/etc/kubernetes/kubelet.conf \
    --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
    --config=/var/lib/kubelet/config.yaml
