"""``cluster.reboot.local``: its template is checked when the inventory loads, and at its
timeout the whole process group it started is ended."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from k8slk_ops.base.errors import NodeError
from k8slk_ops.inventory import InventoryError, load_inventory
from k8slk_ops.steps import reboot


def inventory(tmp_path: Path, local: str) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(textwrap.dedent("""\
        cluster:
          name: linuxkit
          reboot:
            local: %s
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane}
        """) % local)
    return path


@pytest.mark.parametrize(
    ("local", "named"),
    [
        ('"ipmitool -H {addr} chassis power cycle"', "{addr}"),
        ("\"ssh pdu \\\"awk '{print $1}'\\\" {name}\"", "{print $1}"),
        ('"power-cycle {}"', "{}"),
        ('"power-cycle {name!r}"', "{name!r}"),
        ('"power-cycle {address.upper}"', "{address.upper}"),
    ],
)
def test_a_template_that_does_not_fill_in_is_refused_at_its_line(
    tmp_path: Path, local: str, named: str
) -> None:
    path = inventory(tmp_path, local)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    [issue] = info.value.issues
    assert issue.line == 4, str(issue)
    assert named in str(issue) and "{name}, {address}" in str(issue)


def test_an_unbalanced_brace_is_refused_with_what_to_write(tmp_path: Path) -> None:
    path = inventory(tmp_path, '"power-cycle {name"')
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    [issue] = info.value.issues
    assert issue.line == 4 and "{{" in str(issue)


def test_placeholders_and_doubled_braces_fill_in(tmp_path: Path) -> None:
    path = inventory(tmp_path, "\"pdu {name} {address} | awk '{{print $1}}'\"")
    inv = load_inventory(path)
    template = inv.cluster.reboot.local
    assert template is not None
    ctx: Any = SimpleNamespace(inventory=inv)
    assert reboot.local_command(template, ctx, "cp-1") == "pdu cp-1 10.0.0.11 | awk '{print $1}'"


def _gone(pid: int) -> bool:
    """No such process, or only its zombie left for the reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def test_at_its_timeout_the_command_and_what_it_started_are_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reboot, "REBOOT_COMMAND_TIMEOUT", 0.5)
    pidfile = tmp_path / "child.pid"
    # A shell that starts a child (as ipmitool would be) and waits for it.
    with pytest.raises(NodeError) as info:
        await reboot.run_local(f"sleep 300 & echo $! > {pidfile}; wait")
    assert "did not end within" in str(info.value)
    assert _ends(int(pidfile.read_text())), "the command's child outlived its timeout"


def _ends(pid: int) -> bool:
    """Whether ``pid`` is gone; polled, since a SIGKILL takes effect as the kernel gets to it
    (the bound is on the poll, not a figure under test)."""
    deadline = time.monotonic() + 30
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _gone(pid)
