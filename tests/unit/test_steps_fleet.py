"""Every step kind's ``apply`` against the in-process fleet, through the built-in commands and
small user playbooks (``k8slk-ops run``): preflight, init, mint-credentials, join, wait-ready,
fetch-kubeconfig, revoke-credentials, status, removal-guard, drain, kubeadm-reset, delete-node
and run. What is checked is what a node or the cluster shows afterwards, as the fleet holds it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.fleet.inprocess import InProcessFleet
from tests.fleet.node import ADMIN_CONF, KUBEADM_RUN, KUBEADM_YAML, MARKER
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory

CERTS_TOKEN = "Proxy for managing TTL for the kubeadm-certs secret"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- bootstrap: preflight, init, mint-credentials, join, wait-ready, fetch-kubeconfig, revoke --


def test_bootstrap_of_two_control_planes_and_two_workers(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(4, 2)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert run.planned_steps() >= {"preflight", "init", "mint-credentials", "join", "wait-ready",
                                   "fetch-kubeconfig", "revoke-credentials"}
    members = fleet.members()
    assert {n: m.control_plane for n, m in members.items()} == {
        "cp-1": True, "cp-2": True, "w-1": False, "w-2": False}
    assert fleet.etcd_members() == {"cp-1", "cp-2"}  # cp-2 joined with the certificate key
    assert fleet.commands().get("kubeadm init phase") == 1  # one upload-certs for the run
    # The run's tokens are gone; only kubeadm's own for the uploaded certificates is left.
    assert fleet.tokens() == [CERTS_TOKEN]
    # Every config was written 0600 and every join pinned the CA.
    assert fleet.stats()["audit"] == {"unsafe_skip_ca": 0, "loose_config_mode": 0}
    for name in ("cp-2", "w-1"):
        (config,) = fleet.configs(name)
        docs = {d["kind"]: d for d in yaml.safe_load_all(config) if d}
        pins = docs["JoinConfiguration"]["discovery"]["bootstrapToken"]["caCertHashes"]
        assert len(pins) == 1 and pins[0].startswith("sha256:")
        assert fleet.file(name, KUBEADM_RUN) == b"join"
    kubeconfig = Path(run.report["data"]["kubeconfig"])
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    conf = yaml.safe_load(kubeconfig.read_text())
    assert conf["clusters"][0]["cluster"]["server"] == f"https://{fleet.config.endpoint}"
    admin = yaml.safe_load(fleet.file("cp-1", ADMIN_CONF) or b"")
    assert (conf["users"][0]["user"]["client-key-data"]
            == admin["users"][0]["user"]["client-key-data"])


def test_a_node_whose_kubeadm_failed_this_boot_fails_preflight_until_rebooted(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.fail_kubeadm("w-1")
    assert k8slk("bootstrap", fleet.inventory).code == 1
    fleet.fail_kubeadm("w-1", failing=False)

    again = k8slk("bootstrap", fleet.inventory, "--json")
    assert again.code == 1, again.why()
    node = again.nodes["w-1"]
    assert (node["outcome"], node["phase"]) == ("failed", "preflight")
    assert "kubeadm already ran and failed on this node since its last boot" in node["message"]
    assert fleet.configs("w-1") and len(fleet.configs("w-1")) == 1  # not triggered again

    fleet.reboot("w-1")
    last = k8slk("bootstrap", fleet.inventory, "--json")
    assert last.code == 0, last.why()
    assert last.outcomes["w-1"] == "ok"
    assert "w-1" in fleet.members()


def test_strict_preflight_fails_nodes_below_the_images_minimums_before_any_write(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(2, 1, cpus=1)
    warned = k8slk("plan", "bootstrap", fleet.inventory, "--json")
    assert warned.code == 0, warned.why()
    run = k8slk("bootstrap", fleet.inventory, "--strict", "--json")
    assert run.code == 1, run.why()
    for name in ("cp-1", "w-1"):
        assert run.nodes[name]["phase"] == "preflight"
        assert "CPU" in run.nodes[name]["message"]
    assert "write-file" not in fleet.commands()
    assert fleet.file("cp-1", KUBEADM_YAML) is None


def test_wait_ready_fails_a_node_that_stays_not_ready(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = fleet_factory(2, 1, ready_delay=3600)
    book = write(tmp_path / "ready.yml", """\
name: ready-soon
stages:
  - name: init
    hosts: primary
    steps:
      - init: {}
  - name: ready
    hosts: primary
    steps:
      - wait-ready: {timeout: 1}
""")
    run = k8slk("run", book, fleet.inventory, "--json")
    assert run.code == 1, run.why()
    node = run.nodes["cp-1"]
    assert (node["outcome"], node["phase"]) == ("failed", "ready")
    assert "still NotReady after 1s" in node["message"]
    assert "cp-1" in fleet.members()


# -- status -----------------------------------------------------------------------------------


def test_status_reads_every_node_and_changes_none(fleet: InProcessFleet, k8slk: K8slk) -> None:
    fleet.fail_kubeadm("w-2")
    assert k8slk("bootstrap", fleet.inventory).code == 1
    writes = fleet.commands()["write-file"]
    run = k8slk("status", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    rows = {name: node["details"] for name, node in run.nodes.items()}
    assert rows["cp-1"]["kubeadm"] == "completed" and rows["cp-1"]["ready"] is True
    assert rows["cp-1"]["certsDaysLeft"] >= 360  # kubeadm certs check-expiration was read
    assert rows["w-1"]["kubeadm"] == "completed" and rows["w-1"]["registered"] is True
    assert rows["w-1"]["certsExpire"] is None  # workers have no control-plane certificates
    assert rows["w-2"]["kubeadm"] == "failed" and rows["w-2"]["registered"] is False
    assert all(r["reachable"] and r["hostKey"] == "ok" for r in rows.values())
    assert fleet.commands()["write-file"] == writes
    assert fleet.count("lock-take") == 1  # bootstrap's; status takes no lock


def test_status_shows_a_changed_host_key_as_a_row(fleet: InProcessFleet, k8slk: K8slk) -> None:
    fleet.change_host_key("w-1")
    run = k8slk("status", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    row = run.nodes["w-1"]["details"]
    assert (row["reachable"], row["hostKey"]) == (False, "mismatch")
    assert run.nodes["cp-1"]["details"]["kubeadm"] == "waiting"


# -- removal-guard, drain, kubeadm-reset, delete-node -------------------------------------------


def test_remove_node_drains_resets_and_deletes_a_worker_and_a_control_plane(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(5, 3)
    assert k8slk("bootstrap", fleet.inventory).code == 0
    run = k8slk("remove-node", fleet.inventory, "cp-3", "w-2", "--yes", "--json")
    assert run.code == 0, run.why()
    assert run.planned_steps() >= {"removal-guard", "drain", "kubeadm-reset", "delete-node"}
    assert run.outcomes["cp-3"] == run.outcomes["w-2"] == "ok"
    assert set(fleet.members()) == {"cp-1", "cp-2", "w-1"}
    assert fleet.etcd_members() == {"cp-1", "cp-2"}  # cp-3 left etcd in its reset
    for name in ("cp-3", "w-2"):
        assert fleet.file(name, MARKER) is None  # kubeadm reset -f ran on the node
    assert fleet.file("cp-3", ADMIN_CONF) is None
    assert fleet.count("kubectl drain") == 2 and fleet.count("kubectl delete node") == 2


def test_the_removal_guard_refuses_the_endpoint_carrier_and_drains_nothing(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(4, 3)
    assert k8slk("bootstrap", fleet.inventory).code == 0
    run = k8slk("remove-node", fleet.inventory, "cp-1", "--yes", "--json")
    assert run.code == 1, run.why()
    guard = next(n for n in run.report["nodes"] if n["phase"] == "guard")
    assert guard["name"] != "cp-1"  # it ran through a control plane that stays
    assert "carries the controlPlaneEndpoint" in guard["message"]
    assert "--force twice" in guard["message"]
    assert fleet.count("kubectl drain") == 0
    assert fleet.members()["cp-1"].unschedulable is False
    assert fleet.etcd_members() == {"cp-1", "cp-2", "cp-3"}


def test_the_removal_guard_refuses_the_last_control_plane(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    run = k8slk("remove-node", fleet.inventory, "cp-1", "--yes", "--json")
    assert run.code == 1, run.why()
    assert any("last control plane" in n["message"] for n in run.report["nodes"])
    assert fleet.count("kubectl drain") == 0
    assert set(fleet.members()) == {"cp-1", "w-1", "w-2"}


def test_a_refused_drain_uncordons_and_stops_unless_forced(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    fleet.guard_pod("w-1", "default/web-0")
    run = k8slk("remove-node", fleet.inventory, "w-1", "--drain-timeout", "90s", "--json")
    assert run.code == 1, run.why()
    node = run.nodes["w-1"]
    assert (node["outcome"], node["phase"]) == ("failed", "drain")
    assert "the drain did not finish: node uncordoned" in run.stderr  # the stage's cleanup
    assert "global timeout reached: 1m30s" in node["message"]  # --drain-timeout reached kubectl
    assert fleet.members()["w-1"].unschedulable is False
    assert fleet.file("w-1", MARKER) is not None  # no reset after a failed drain

    forced = k8slk("remove-node", fleet.inventory, "w-1", "--force", "--json")
    assert forced.code == 0, forced.why()
    assert "w-1" not in fleet.members()
    assert fleet.file("w-1", MARKER) is None


def test_reset_takes_the_whole_cluster_apart(fleet_factory: FleetFactory, k8slk: K8slk) -> None:
    fleet = fleet_factory(4, 2)
    assert k8slk("bootstrap", fleet.inventory).code == 0
    run = k8slk("reset", fleet.inventory, "--yes", "--json")
    assert run.code == 0, run.why()
    assert run.outcomes == {"cp-1": "ok", "cp-2": "ok", "w-1": "ok", "w-2": "ok"}
    assert fleet.members() == {} and fleet.etcd_members() == set()
    for name in fleet.names:
        assert fleet.file(name, MARKER) is None and fleet.file(name, ADMIN_CONF) is None


# -- run ------------------------------------------------------------------------------------------


def test_run_commands_on_nodes_and_in_the_kubelet_container(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    book = write(tmp_path / "mark.yml", """\
name: mark-workers
stages:
  - name: mark
    hosts: workers
    when: {role: worker, ready: true}
    steps:
      - run: {command: "echo marked by playbook > /run/node/mark"}
  - name: nodes
    hosts: primary
    steps:
      - run: {command: [kubectl, get, nodes], in: kubelet}
""")
    run = k8slk("run", book, fleet.inventory, "--json")
    assert run.code == 0, run.why()
    for worker in ("w-1", "w-2"):
        assert fleet.file(worker, "/run/node/mark") == b"marked by playbook\n"
        assert run.outcomes[worker] == "ok"
    assert fleet.file("cp-1", "/run/node/mark") is None
    assert "STATUS" in run.log and "w-2" in run.log  # kubectl's table reached the log


def test_a_failing_command_fails_its_node_only_and_ok_codes_are_honoured(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet.write_file("w-1", "/run/node/full", b"")
    book = write(tmp_path / "check.yml", """\
name: check
stages:
  - name: check
    hosts: workers
    steps:
      - run: {command: [test, -e, /run/node/full], okCodes: [1]}
  - name: encoded
    hosts: cp-1
    steps:
      - run: {command: [kubeadm, version, -o, short], in: kubelet}
""")
    run = k8slk("run", book, fleet.inventory, "--json")
    assert run.code == 1, run.why()
    node = run.nodes["w-1"]
    assert (node["outcome"], node["phase"]) == ("failed", "run")
    assert "exited 0" in node["message"]
    assert run.outcomes["w-2"] == "ok" and run.outcomes["cp-1"] == "ok"
    assert "v1.31.3" in run.log


def test_a_run_of_a_status_step_in_a_user_playbook_reports_rows(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    book = write(tmp_path / "look.yml", """\
name: look
readOnly: true
stages:
  - name: look
    hosts: workers
    steps:
      - status: {}
""")
    run = k8slk("run", book, fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert run.nodes["w-1"]["details"]["kubeadm"] == "waiting"
    assert run.nodes["cp-1"]["details"] == {}


def test_kubeconfig_merge_keeps_another_clusters_admin_apart(
    fleet_factory: FleetFactory, k8slk: K8slk, tmp_path: Path
) -> None:
    """Another cluster's admin is also ``kubernetes-admin`` (kubeadm's name): merging this
    cluster must not replace it, or the other context would present this cluster's key."""
    import subprocess

    import pytest

    from tests.unit.test_kubeconfig import _admin_conf, _real_kubectl

    kubectl = _real_kubectl()
    if kubectl is None:
        pytest.skip("no kubectl on this machine")
    fleet = fleet_factory(1, 1)
    assert k8slk("bootstrap", fleet.inventory).code == 0
    target = write(tmp_path / "config", _admin_conf("other", "T1RIRVI="))
    run = k8slk("kubeconfig", fleet.inventory, "-o", target, "--merge", "--json")
    assert run.code == 0, run.why()
    env = {"KUBECONFIG": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def key_of(context: str) -> str:
        done = subprocess.run(
            [kubectl, "config", "view", "--raw", "--minify", "--context", context, "-o",
             "jsonpath={.users[0].user.client-key-data}"],
            capture_output=True, text=True, env=env, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    admin = yaml.safe_load(fleet.file("cp-1", ADMIN_CONF) or b"")
    assert key_of("kubernetes-admin@other") == "T1RIRVI="
    assert key_of("kubernetes-admin@fleet") == admin["users"][0]["user"]["client-key-data"]
