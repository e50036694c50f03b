"""What the operator does next about a node that failed or could not be reached.

A report row that only says what went wrong leaves the operator to know LinuxKit's rules (kubeadm
runs once per boot, a reboot makes new host keys) and the tool's commands. Each place that
classifies a failure (``kubeadm/failures.py``, ``ssh/errors.py``, ``facts.py``) builds a
:class:`NextStep` from what it found; the report shows it in the table, the plain lines and the
JSON document (``next``). This module only holds the type and the wording shared by those places.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

PROGRAM = "k8slk-ops"
# kubeadm runs once per boot on a LinuxKit node: the trigger script stays stopped after a run.
REBOOT = "reboot the node (kubeadm runs once per boot on a LinuxKit node)"


@dataclass(frozen=True)
class NextStep:
    """What to do, in words (``action``, which ends with the command when there is one), and
    the command itself (``command``, empty when the step is not a command) for scripts."""

    action: str
    command: str = ""

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "command": self.command}

    @classmethod
    def then(cls, before: str, command: str) -> NextStep:
        """``before``, then run ``command``: the action names the command, the command is kept."""
        return cls(f"{before}, then run `{command}`", command)


def tool_line(*words: str) -> str:
    """``k8slk-ops WORDS...``, quoted for a shell."""
    return shlex.join([PROGRAM, *words])


def tool_command(command: str, inventory: str, *nodes: str) -> str:
    """``k8slk-ops COMMAND INVENTORY [--node NAME]...``, quoted for a shell."""
    return tool_line(*command.split(), inventory, *(w for n in nodes for w in ("--node", n)))


@dataclass(frozen=True)
class Rerun:
    """How to run the tool again for one node once its cause is fixed: ``join`` is the command
    that brings the node, not in the cluster yet, in (``add-node`` for a joining node,
    ``bootstrap`` for the first control plane)."""

    inventory: str
    node: str
    join: str

    @classmethod
    def of(cls, inventory: str, node: str, *, primary: bool) -> Rerun:
        join = tool_command("bootstrap", inventory) if primary else tool_command(
            "add-node", inventory, node)
        return cls(inventory, node, join)

    def reset(self) -> str:
        """``k8slk-ops reset INVENTORY --node NAME``: undoes what a failed kubeadm left."""
        return tool_command("reset", self.inventory, self.node)
