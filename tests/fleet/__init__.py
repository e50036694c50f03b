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

import sys
from pathlib import Path

# The fleet models a node with the lab's doubles (tests/lab/doubles/k8sdouble): one model of
# kubeadm's texts and certificates for both. Those modules import each other as the top-level
# package ``k8sdouble`` (as inside a lab node), so the fleet imports them under that one name
# too, never as ``tests.lab.doubles.k8sdouble``: one module loaded twice would be two models.
_DOUBLES = str(Path(__file__).resolve().parents[1] / "lab" / "doubles")
if _DOUBLES not in sys.path:
    sys.path.insert(0, _DOUBLES)
