"""Doubles of kubeadm, kubectl, kubelet and kube-apiserver for the lab's LinuxKit-like nodes.

They run inside the node's kubelet/kubeadm containers under Debian's /usr/bin/python3 with only
the standard library, cryptography and PyYAML, and behave as real kubeadm and kubectl do as far
as the tool can see: printed text, exit codes, files written, phase order, the discovery
protocol. Every absolute path goes through :func:`k8sdouble.env.path` so that tests can run them
in a temporary directory (env ``LAB_ROOT``).
"""
