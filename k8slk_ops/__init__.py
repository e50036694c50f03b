"""k8slk-ops: the whole life of a Kubernetes cluster built from LinuxKit nodes, over SSH."""

__version__ = "0.1.0"
