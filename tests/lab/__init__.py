"""The lab: LinuxKit-like Kubernetes nodes on one machine (real sshd, containerd and ctr, each
node in its own mount namespace on its own loopback address). See ``lab.Lab``."""

from tests.lab.errors import LabError
from tests.lab.lab import Lab
from tests.lab.state import NodeSpec

__all__ = ["Lab", "LabError", "NodeSpec"]
