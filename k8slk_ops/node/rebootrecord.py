"""The record a run leaves on a Node before it reboots it: ``k8slk-ops.io/reboot``.

A LinuxKit node makes new host keys at every boot, so a roll that stopped while a node was down
(it did not come back in time) meets a key known_hosts does not know on its next run. The record
says that the reboot was this tool's own, by which run, and from which boot: the node's boot ID
(``/proc/sys/kernel/random/boot_id``, a new random UUID at every boot). A later run that finds
the record and a different boot ID knows the node really booted since; only then may it trust
the new key (``ssh.hostKeyAfterReboot: accept``). The annotation is removed with the node's
uncordon, once the node is done.

The annotation's value is JSON, ``{"run": RUN_ID, "bootId": UUID}``; it is read and written here
and nowhere else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

ANNOTATION = "k8slk-ops.io/reboot"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class RebootRecord:
    """Run ``run`` rebooted the node, which had booted as ``boot_id`` until then."""

    run: str
    boot_id: str

    def to_annotation(self) -> str:
        return json.dumps({"run": self.run, "bootId": self.boot_id}, separators=(",", ":"))


def parse_record(value: str) -> RebootRecord | None:
    """The record in the annotation's value; None when absent or not one of ours (a hand-edited
    value is ignored rather than trusted: the key is then refused as any other)."""
    if not value:
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    run, boot = doc.get("run"), doc.get("bootId")
    if not isinstance(run, str) or not isinstance(boot, str) or not parse_boot_id(boot):
        return None
    return RebootRecord(run, boot)


def parse_boot_id(text: str) -> str:
    """The boot ID as the kernel prints it (a lowercase UUID and a newline); '' otherwise."""
    value = text.strip().lower()
    return value if _UUID.fullmatch(value) else ""


def annotate_args(node: str, record: RebootRecord) -> tuple[str, ...]:
    """``kubectl`` arguments that write the record on the Node (replacing an older one)."""
    return ("annotate", "node", node, "--overwrite", f"{ANNOTATION}={record.to_annotation()}")


def remove_args(node: str) -> tuple[str, ...]:
    """``kubectl`` arguments that remove the record (kubectl accepts a missing one)."""
    return ("annotate", "node", node, f"{ANNOTATION}-")
