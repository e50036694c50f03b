"""upgrade's command line and its pure parts: the target, the batch, the cron rules, the gate's
reading of static pods, the known_hosts replacement after a reboot."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from k8slk_ops.cli import cliutil, main
from k8slk_ops.cli.commands.upgrade import workers_batch
from k8slk_ops.engine.options import RunOptions
from k8slk_ops.engine.playbook import load_builtin
from k8slk_ops.kubeadm.versions import KubeVersion
from k8slk_ops.output.events import RunReport
from k8slk_ops.ssh.hostkeys import load_known_hosts, replace_host_key
from k8slk_ops.steps import STEPS
from k8slk_ops.steps.upgrade import static_pods_behind

INVENTORY = """\
cluster: {name: lab, kubernetesVersion: v1.31.3}
nodes:
  - {name: cp-1, address: 127.0.9.11, role: control-plane}
  - {name: w-1, address: 127.0.9.21, role: worker}
  - {name: w-2, address: 127.0.9.22, role: worker}
  - {name: w-3, address: 127.0.9.23, role: worker}
"""


class Seen:
    options: RunOptions | None = None
    serial: ClassVar[dict[str, int | None]] = {}
    calls = 0


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    return path


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> type[Seen]:
    Seen.options, Seen.serial, Seen.calls = None, {}, 0

    class FakeOperation:
        def __init__(self, playbook: Any, inventory: Any, options: RunOptions, sink: Any,
                     add_secret: Any, *, command: str, break_lock: bool = False) -> None:
            Seen.options = options
            Seen.serial = {s.name: s.serial for s in playbook.stages}
            Seen.calls += 1

        async def run(self) -> RunReport:
            return RunReport(command="upgrade", cluster="lab", inventory="inv.yml")

    monkeypatch.setattr(cliutil, "Operation", FakeOperation)
    return Seen


def test_without_a_terminal_and_without_yes_nothing_runs(inventory: Path, seen: type[Seen]) -> None:
    result = CliRunner().invoke(main.app, ["upgrade", str(inventory)])
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert seen.calls == 0


def test_the_target_is_the_inventory_version_or_to(inventory: Path, seen: type[Seen]) -> None:
    assert CliRunner().invoke(main.app, ["upgrade", str(inventory), "--yes"]).exit_code == 0
    assert seen.options is not None and seen.options.upgrade_to == "v1.31.3"
    result = CliRunner().invoke(main.app, ["upgrade", str(inventory), "--yes", "--to", "1.31.4"])
    assert result.exit_code == 0
    assert seen.options.upgrade_to == "v1.31.4"


def test_a_bad_target_or_batch_is_a_usage_error(inventory: Path, seen: type[Seen]) -> None:
    for extra in (["--to", "latest"], ["--max-unavailable", "0"], ["--max-unavailable", "150%"]):
        result = CliRunner().invoke(main.app, ["upgrade", str(inventory), "--yes", *extra])
        assert result.exit_code == 2, extra
    assert seen.calls == 0


def test_max_unavailable_sets_the_workers_batches(inventory: Path, seen: type[Seen]) -> None:
    result = CliRunner().invoke(
        main.app, ["upgrade", str(inventory), "--yes", "--max-unavailable", "2"])
    assert result.exit_code == 0
    assert seen.serial == {"check": None, "snapshot": None, "primary": 1, "control-planes": 1,
                           "workers": 2}


def test_workers_batch_reads_numbers_and_percentages() -> None:
    assert workers_batch("1", 10) == 1
    assert workers_batch("3", 10) == 3
    assert workers_batch("25%", 10) == 2  # rounded down
    assert workers_batch("10%", 3) == 1  # never zero
    with pytest.raises(ValueError):
        workers_batch("-1", 3)


def test_the_playbook_is_made_of_reusable_steps() -> None:
    book = load_builtin("upgrade", STEPS)
    assert [s.name for s in book.stages[:3]] == ["check", "snapshot", "primary"]
    assert [c.name for c in book.stages[1].steps] == ["etcd-snapshot"]  # before any change
    steps = [c.name for c in book.stages[2].steps]
    assert steps == ["upgrade-etcd-healthy", "persistent-disk", "cordon", "upgrade-drain", "reboot", "wait-ssh",
                     "kubeadm-upgrade", "health-gate", "uncordon-node"]
    assert [c.name for c in book.stages[2].cleanup] == ["uncordon"]


def pods(*images: tuple[str, str]) -> str:
    return json.dumps({"items": [
        {"metadata": {"name": n}, "spec": {"containers": [{"image": i}]}} for n, i in images]})


def test_the_gate_reads_static_pod_versions() -> None:
    target = KubeVersion.parse("v1.31.3")
    good = [("etcd-cp-1", "registry.k8s.io/etcd:3.5.15-0"),
            ("kube-apiserver-cp-1", "registry.k8s.io/kube-apiserver:v1.31.3"),
            ("kube-controller-manager-cp-1", "registry.k8s.io/kube-controller-manager:v1.31.3"),
            ("kube-scheduler-cp-1", "registry.k8s.io/kube-scheduler:v1.31.3")]
    assert static_pods_behind(pods(*good), "cp-1", target) == ""
    old = [*good[:3], ("kube-scheduler-cp-1", "registry.k8s.io/kube-scheduler:v1.30.5")]
    assert static_pods_behind(pods(*old), "cp-1", target) == (
        "kube-scheduler-cp-1 runs v1.30.5, not v1.31.3")
    assert "etcd-cp-1 is not running" in static_pods_behind(pods(*good[1:]), "cp-1", target)


def test_replace_host_key_keeps_other_hosts(tmp_path: Path) -> None:
    old = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + b"a" * 32)
    new = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + b"b" * 32)
    path = tmp_path / "known_hosts"
    path.write_text(f"10.0.0.1 ssh-ed25519 {old.decode()}\n10.0.0.2 ssh-ed25519 {old.decode()}\n")
    path.chmod(0o600)
    gone = replace_host_key(path, "10.0.0.1", 22, "ssh-ed25519", new.decode())
    assert len(gone) == 1 and gone[0].startswith("SHA256:")
    entries = {e.patterns[0]: e.blob for e in load_known_hosts(path)}
    assert entries == {"10.0.0.1": new.decode(), "10.0.0.2": old.decode()}
    assert path.stat().st_mode & 0o777 == 0o600


def test_replace_host_key_keeps_wildcard_lines_and_other_names(tmp_path: Path) -> None:
    """Only the node's own lines change: a wildcard line speaks for other hosts and stays whole;
    a line naming the node among others loses only the node's name."""
    old = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + b"a" * 32)
    new = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + b"b" * 32)
    path = tmp_path / "known_hosts"
    wildcard = f"10.0.0.* ssh-ed25519 {old.decode()}"
    path.write_text(f"{wildcard}\nnode-1,10.0.0.1 ssh-ed25519 {old.decode()}\n")
    replace_host_key(path, "10.0.0.1", 22, "ssh-ed25519", new.decode())
    lines = path.read_text().splitlines()
    assert lines == [wildcard, f"node-1 ssh-ed25519 {old.decode()}",
                     f"10.0.0.1 ssh-ed25519 {new.decode()}"]
