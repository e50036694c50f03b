"""A fleet of simulated LinuxKit nodes served by asyncssh from one event loop: for the engine's
tests (no root) and for scale benchmarks.

The full lab (tests/lab) gives every node a real sshd and containerd; that needs root and is too
heavy for a thousand nodes on a small machine. The fleet keeps each node's state in memory
instead (files, the kubeadm task, its log) and answers, over real SSH, the commands k8slk-ops
sends the way a LinuxKit node and kubeadm would (docs/node.md), so the tool cannot tell it from
real nodes at the protocol level it uses.

Two ways to run it:

- in the test's own process (``tests/fleet/inprocess.py``; the ``fleet`` and ``fleet_factory``
  fixtures of tests/unit): a thread with its own event loop, knobs to put nodes in a state;
- as a process of its own: ``python -m tests.fleet up --dir DIR --nodes N`` starts it,
  ``python -m tests.fleet down --dir DIR`` stops it (benchmarks, the tool run as a subprocess).
"""
