"""Helpers for end-to-end tests: run the CLI, read nodes of a lab."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str
    log: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.stdout)  # type: ignore[no-any-return]


def _command(args: tuple[str, ...], log_file: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "k8slk_ops", *args]
    if log_file is not None:
        cmd += ["--log-file", str(log_file)]
    return cmd


def _env(cache: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    return env


def cli(
    *args: str, log_file: Path | None = None, timeout: float = 300, cache: Path | None = None
) -> CliRun:
    """Run k8slk-ops to its end; ``cache`` sets where its local lock lives."""
    if cache is None and log_file is not None:
        cache = log_file.parent / "cache"
    proc = subprocess.run(
        _command(args, log_file),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(cache),
        check=False,
    )
    log = log_file.read_text() if log_file is not None and log_file.exists() else ""
    return CliRun(proc.returncode, proc.stdout, proc.stderr, log)


def fleet_up(
    directory: Path,
    nodes: int,
    *,
    control_planes: int = 1,
    settle: float = 0.2,
    kubeadm_seconds: float = 0.3,
    ready_delay: float = 0.3,
    fail_nodes: str = "",
) -> None:
    """Start a fleet of simulated nodes in ``directory`` (tests/fleet), fast timings by default."""
    from tests.fleet import process

    cmd = [sys.executable, "-m", "tests.fleet", "up", "--dir", str(directory), "--nodes",
           str(nodes), "--control-planes", str(control_planes), "--settle", str(settle),
           "--kubeadm-seconds", str(kubeadm_seconds), "--ready-delay", str(ready_delay),
           "--port", str(process.free_port())]
    if fail_nodes:
        cmd += ["--fail-nodes", fail_nodes]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=120)


def bootstrap_fleet(directory: Path, nodes: int, **up: Any) -> tuple[CliRun, dict[str, Any]]:
    """Start a fleet, bootstrap it once, stop it: the run and the fleet's counters."""
    from tests.fleet import layout, process

    fleet_up(directory, nodes, **up)
    try:
        run = cli("bootstrap", str(directory / layout.INVENTORY), "--json",
                  log_file=directory / "run.log", timeout=300)
    finally:
        stats = process.stop(directory)
    return run, stats


class Background:
    """k8slk-ops running in the background, to interrupt or to race."""

    def __init__(self, *args: str, log_file: Path, cache: Path) -> None:
        self.log_file = log_file
        self.proc = subprocess.Popen(
            _command(args, log_file),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(cache),
        )

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def terminate(self) -> None:
        """SIGTERM, as ``timeout``, systemd and cron's wrappers send it."""
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the run dies on the spot, its locks and anything it started stay behind."""
        self.proc.kill()
        self.proc.communicate(timeout=60)

    def wait(self, timeout: float = 300) -> CliRun:
        out, err = self.proc.communicate(timeout=timeout)
        log = self.log_file.read_text() if self.log_file.exists() else ""
        return CliRun(self.proc.returncode, out, err, log)


def wait_until(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll a condition on the lab (files on nodes cannot be waited on as events from here)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def kubectl_nodes(lab: Any, via: str = "cp-1") -> dict[str, dict[str, Any]]:
    out = lab.kubelet_exec(via, ["kubectl", "get", "nodes", "-o", "json"])
    assert out.returncode == 0, out.stderr
    nodes = {}
    for item in json.loads(out.stdout)["items"]:
        conds = {c["type"]: c["status"] for c in item["status"]["conditions"]}
        nodes[item["metadata"]["name"]] = {"ready": conds.get("Ready") == "True", "raw": item}
    return nodes


def log_times(lab: Any, node: str) -> dict[str, datetime]:
    """When the node's trigger was seen, and when kubeadm completed (from the node's log)."""
    text = lab.read(node, "/var/log/kubeadm.out.log").decode()
    times: dict[str, datetime] = {}
    for line in text.splitlines():
        stamp, _, rest = line.partition(" ")
        msg = rest.partition(" ")[2]
        if msg.startswith("sleeping a bit more"):
            times["start"] = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if msg.startswith("kubeadm has completed"):
            times["end"] = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return times


def trigger_state(lab: Any, node: str) -> str:
    """The trigger file as the node sees it: its content and mtime, or 'absent'."""
    out = lab.ssh(node, "stat -c %Y /run/node/kubeadm-run 2>/dev/null && cat /run/node/kubeadm-run")
    return out.stdout.strip() or "absent"


def consumed_configs(lab: Any) -> list[dict[str, Any]]:
    """Every kubeadm config document the nodes' kubeadm consumed (the lab keeps an audit copy)."""
    docs: list[dict[str, Any]] = []
    for node in lab.nodes:
        for text in lab.kubeadm_configs(node.name):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def secrets_of(lab: Any) -> set[str]:
    """Every secret the run could have leaked: tokens, certificate keys, private keys."""
    found: set[str] = set()
    for doc in consumed_configs(lab):
        bt = (doc.get("discovery") or {}).get("bootstrapToken") or {}
        if bt.get("token"):
            found.add(bt["token"])
            found.add(bt["token"].split(".")[1])
        for tok in doc.get("bootstrapTokens") or []:
            found.add(tok["token"])
            found.add(tok["token"].split(".")[1])
        key = (doc.get("controlPlane") or {}).get("certificateKey") or doc.get("certificateKey")
        if key:
            found.add(key)
    admin = yaml.safe_load(lab.read("cp-1", "/var/node/etc/kubernetes/admin.conf"))
    found.add(admin["users"][0]["user"]["client-key-data"])
    ca_key = lab.read("cp-1", "/var/node/etc/kubernetes/pki/ca.key").decode()
    found.update(line for line in ca_key.splitlines() if len(line) > 40)
    client_key = (lab.dir / "id_ed25519").read_text()
    found.update(line for line in client_key.splitlines() if len(line) > 40)
    return found


