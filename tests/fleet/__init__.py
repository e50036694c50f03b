"""A fleet of simulated LinuxKit nodes served by one asyncssh process, for scale benchmarks.

The full lab (tests/lab) gives every node a real sshd and containerd; that is too heavy for a
thousand nodes on a small machine. The fleet keeps each node's state in memory instead (files,
the kubeadm task, its log) and answers, over real SSH, the commands k8slk-ops sends the way a
LinuxKit node would (docs/node.md, with kubeadm's own texts), so
the tool cannot tell it from real nodes at the protocol level it uses.

``python -m tests.fleet up --dir DIR --nodes N`` starts it; ``python -m tests.fleet down --dir
DIR`` stops it.
"""
