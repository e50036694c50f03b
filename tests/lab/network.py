"""Network partitions: a node's address stops answering, its packets silently dropped, so
connects time out (as with a pulled cable) rather than being refused.

One nftables table per lab slot, with a set of partitioned addresses; the rules drop every
packet from or to those addresses on the input hook (a drop on output would fail the sender
at once with EPERM instead of timing out)."""

from __future__ import annotations

import re
import subprocess

from tests.lab.errors import LabError


def _table(slot: int) -> str:
    return f"k8slk_lab_{slot}"


def _nft(script: str) -> None:
    done = subprocess.run(
        ["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise LabError(f"nft failed: {done.stderr.strip()}")


def _exists(slot: int) -> bool:
    return subprocess.run(
        ["nft", "list", "table", "ip", _table(slot)], capture_output=True, check=False
    ).returncode == 0


def _ensure(slot: int) -> None:
    t = _table(slot)
    if _exists(slot):
        return
    _nft(
        f"table ip {t} {{\n"
        "  set partitioned { type ipv4_addr; }\n"
        "  chain input {\n"
        "    type filter hook input priority -10; policy accept;\n"
        "    ip daddr @partitioned drop\n"
        "    ip saddr @partitioned drop\n"
        "  }\n"
        "}\n"
    )


def partition(slot: int, address: str) -> None:
    _ensure(slot)
    _nft(f"add element ip {_table(slot)} partitioned {{ {address} }}\n")


def partitioned(slot: int, address: str) -> bool:
    listed = subprocess.run(
        ["nft", "list", "set", "ip", _table(slot), "partitioned"],
        capture_output=True, text=True, check=False,
    ).stdout
    return address in re.split(r"[^0-9.]+", listed)


def heal(slot: int, address: str) -> None:
    # Deleting an absent element is an error: check first, so heal is idempotent.
    if partitioned(slot, address):
        _nft(f"delete element ip {_table(slot)} partitioned {{ {address} }}\n")


def remove(slot: int) -> None:
    """Drop the lab's table (at ``down``); absent is fine."""
    subprocess.run(
        ["nft", "delete", "table", "ip", _table(slot)], capture_output=True, check=False
    )
