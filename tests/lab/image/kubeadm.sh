#!/usr/bin/busybox sh
# The image's kubeadm trigger, step by step as the LinuxKit kubelet package runs it: once at
# container start, never restarted. Its stdout is the node's /var/log/kubeadm.out.log.
set -e

if [ -f /var/lib/kubelet/config.yaml ]; then
    echo "Kubernetes Node already has kubelet configuration"
    exit 0
fi

# The image sleeps 5 s before reading the trigger; the lab makes that configurable per lab
# (settleSeconds in /lab/node.json) so tests stay fast.
settle=$(sed -n 's/.*"settleSeconds": *\([0-9.]*\).*/\1/p' /lab/node.json 2>/dev/null || true)
settle=${settle:-5}

echo "Waiting for /run/kubeadm-run to exist before running kubeadm commands"
while [ ! -f /run/kubeadm-run ]; do
    sleep 1
done
echo "sleeping a bit more to make sure file is written"
sleep "$settle"

flag=$(cat /run/kubeadm-run)
echo "Found kubeadm flag $flag"

# Lab only, invisible from the node: keep a copy of every configuration kubeadm consumed so
# tests can check what the tool rendered after kubeadm has deleted it.
mkdir -p /lab/kubeadm-configs
cp /run/kubeadm.yaml "/lab/kubeadm-configs/$(date +%s%N).yaml" 2>/dev/null || true

case "$flag" in
    init)
        kubeadm init --config /run/kubeadm.yaml 2>&1
        ;;
    join)
        kubeadm join --config /run/kubeadm.yaml 2>&1
        ;;
    *)
        echo "Unknown kubeadm flag $flag"
        exit 1
        ;;
esac

echo "kubeadm has completed... removing configuration"
rm -f /run/kubeadm.yaml
