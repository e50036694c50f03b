"""Join tokens that expire during a run, end to end on the lab.

The image runs kubeadm once per boot, so a join handed a token that dies before discovery has
failed for good. A run therefore mints new credentials when the ones it holds are close to
expiry, and a token that expires anyway is reported as what it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import cli, kubectl_nodes, secrets_of

pytestmark = pytest.mark.lab

ADD_WITH = """\
name: add-node-{label}
requiresCluster: true
stages:
  - name: preflight
    hosts: selected:&absent
    steps:
      - preflight: {{}}
  - name: credentials
    hosts: primary
    onFailure: stop
    steps:
      - mint-credentials: {{ttl: {ttl}}}
{pause}  - name: join-workers
    hosts: workers:&selected:&absent
    steps:
      - join: {{timeout: 120}}
  - name: ready
    hosts: selected:&absent
    steps:
      - wait-ready: {{timeout: 120}}
always:
  - name: cleanup
    hosts: primary
    steps:
      - revoke-credentials: {{}}
"""

PAUSE = """\
  - name: pause
    hosts: primary
    steps:
      - run: {command: "sleep 6"}
"""


@pytest.fixture(scope="module")
def cluster(lab_factory_module: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """cp-1 initialised alone; w-1 and w-2 booted and waiting (kubeadm settles 2 s, as slow
    enough a node for a 1 s token to die before discovery)."""
    lab = lab_factory_module(nodes=3, control_planes=1, settle=2.0)
    work = tmp_path_factory.mktemp("expiry")
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["nodes"] = [n for n in data["nodes"] if n["name"] == "cp-1"]
    only_cp = work / "cp-only.yml"
    only_cp.write_text(yaml.safe_dump(data))
    for name in ("id_ed25519", "known_hosts", "cni"):
        target = lab.inventory_path.parent / name
        if target.exists():
            (work / name).symlink_to(target)
    boot = cli("bootstrap", str(only_cp), "--json", log_file=work / "boot.log")
    assert boot.code == 0, boot.stderr
    return {"lab": lab, "work": work, "inventory": lab.inventory_path}


def _book(work: Path, label: str, ttl: str, pause: bool) -> Path:
    path = work / f"add-{label}.yml"
    path.write_text(ADD_WITH.format(label=label, ttl=ttl, pause=PAUSE if pause else ""))
    return path


def _run_tokens(lab: Any) -> list[str]:
    out = lab.kubelet_exec("cp-1", ["kubeadm", "token", "list"])
    assert out.returncode == 0, out.stderr
    return [line.split()[0] for line in out.stdout.splitlines()[1:] if "k8slk-ops run" in line]


def test_a_token_expiring_before_discovery_fails_that_join_with_the_reason(
    cluster: dict[str, Any],
) -> None:
    lab, work = cluster["lab"], cluster["work"]
    book = _book(work, "short", "1s", pause=False)
    run = cli("run", str(book), str(cluster["inventory"]), "--node", "w-1", "--json",
              log_file=work / "short.log")
    assert run.code == 1, run.stderr
    nodes = {n["name"]: n for n in run.report["nodes"]}
    failed = nodes["w-1"]
    assert failed["outcome"] == "failed"
    assert failed["phase"] == "join"
    assert "expired" in failed["message"], failed
    assert "w-1" not in kubectl_nodes(lab)
    assert _run_tokens(lab) == []  # revoked although the join failed


def test_credentials_close_to_expiry_are_minted_again_before_a_join(
    cluster: dict[str, Any],
) -> None:
    lab, work = cluster["lab"], cluster["work"]
    book = _book(work, "refresh", "10s", pause=True)
    run = cli("run", str(book), str(cluster["inventory"]), "--node", "w-2", "--json",
              log_file=work / "refresh.log")
    assert run.code == 0, run.stderr
    assert "close to expiry: minted token" in run.log
    assert kubectl_nodes(lab)["w-2"]["ready"] is True
    assert _run_tokens(lab) == []  # both the first and the second token are gone
    outputs = run.stdout + run.stderr + run.log
    leaked = [s for s in secrets_of(lab) if s in outputs]
    assert leaked == []
