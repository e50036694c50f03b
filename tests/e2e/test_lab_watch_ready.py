"""Ready by events on the lab: ``bootstrap`` waits for Ready through ``kubectl get nodes
--watch`` streamed from the primary (the nodes' kubectl is a real one, talking to the lab's API
double), and every real kubectl of this machine (``kubectl.1.27``..``kubectl.1.33``) watches the
double as it watches a real API server: the list's resourceVersion, then only later changes,
one event per line, and a watch that ends at its ``timeoutSeconds``.

One module-scoped lab of four nodes (strict network, the lab's CNI as the inventory's addon).
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import cli
from tests.lab.image import real_kubectls

pytestmark = pytest.mark.lab

NAMES = {"cp-1", "w-1", "w-2", "w-3"}


def kubectls() -> dict[int, str]:
    found = real_kubectls()
    if not found:
        pytest.skip("no real kubectl on this host")
    return found


def kubectl(binary: str, kubeconfig: Path, *args: str,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def cluster(lab_factory_module: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    kubectls()
    lab = lab_factory_module(nodes=4, control_planes=1, ready_delay=1.0)
    work = tmp_path_factory.mktemp("watch")
    kubeconfig = work / "admin.kubeconfig"
    run = cli("bootstrap", str(lab.inventory_path), "--json", "--kubeconfig-out",
              str(kubeconfig), log_file=work / "boot.log")
    return {"lab": lab, "run": run, "kubeconfig": kubeconfig}


def test_bootstrap_waits_for_ready_through_one_watch(cluster: dict[str, Any]) -> None:
    run = cluster["run"]
    assert run.code == 0, run.why()
    assert {n["name"]: n["outcome"] for n in run.report["nodes"]} == dict.fromkeys(NAMES, "ok")
    # Every node Ready, as this machine's newest kubectl sees the cluster.
    found = kubectls()
    out = kubectl(found[max(found)], cluster["kubeconfig"], "get", "nodes", "-o", "json")
    assert out.returncode == 0, out.stderr
    ready = {i["metadata"]["name"]: next(c["status"] for c in i["status"]["conditions"]
                                         if c["type"] == "Ready")
             for i in json.loads(out.stdout)["items"]}
    assert ready == dict.fromkeys(NAMES, "True")
    # The run's ready stage followed one watch, and never fell back to polling.
    assert run.log.count("node list: watching it on cp-1 (kubectl get nodes --watch") == 1
    assert "polling instead" not in run.log
    # The watch ended with the run: no kubectl is left watching on the primary.
    assert not [c for c in cluster["lab"].command_lines("cp-1") if "--watch" in c]


@pytest.mark.parametrize("minor", range(27, 34))
def test_each_real_kubectl_watches_the_api_double(cluster: dict[str, Any], minor: int) -> None:
    found = kubectls()
    if minor not in found:
        pytest.skip(f"no kubectl 1.{minor} on this host")
    binary, kubeconfig = found[minor], cluster["kubeconfig"]
    # The NodeList's resourceVersion (``get -o json`` prints kubectl's own List, without
    # one): a watch from it starts after the list.
    listed = kubectl(binary, kubeconfig, "get", "--raw", "/api/v1/nodes")
    assert listed.returncode == 0, listed.stderr
    version = json.loads(listed.stdout)["metadata"]["resourceVersion"]
    assert version.isdigit() and int(version) > 0
    # kubectl's own list-then-watch, ended by the server at timeoutSeconds (--raw asks it).
    raw = kubectl(binary, kubeconfig, "get", "--raw",
                  "/api/v1/nodes?watch=true&timeoutSeconds=1", timeout=30)
    assert raw.returncode == 0, raw.stderr
    events = [json.loads(line) for line in raw.stdout.splitlines() if line.strip()]
    # Without a resourceVersion: every node first, as ADDED; then changes (heartbeats).
    assert sorted(e["object"]["metadata"]["name"] for e in events[:len(NAMES)]) == sorted(NAMES)
    assert [e["type"] for e in events] == ["ADDED"] * len(NAMES) + \
        ["MODIFIED"] * (len(events) - len(NAMES))
    later = kubectl(binary, kubeconfig, "get", "--raw",
                    f"/api/v1/nodes?watch=true&timeoutSeconds=1&resourceVersion={version}",
                    timeout=30)
    assert later.returncode == 0, later.stderr
    for line in later.stdout.splitlines():  # heartbeats only: each newer than the list
        event = json.loads(line)
        assert event["type"] == "MODIFIED"
        assert int(event["object"]["metadata"]["resourceVersion"]) > int(version)
    # ``kubectl get --watch``: the nodes once each, then a change as it happens.
    watch = subprocess.Popen(
        [binary, "--kubeconfig", str(kubeconfig), "get", "nodes", "--watch",
         "--output-watch-events", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    stop = threading.Timer(30.0, watch.kill)  # a change that never comes fails, not hangs
    stop.start()
    try:
        assert watch.stdout is not None
        first = [json.loads(watch.stdout.readline()) for _ in NAMES]
        assert sorted(e["object"]["metadata"]["name"] for e in first) == sorted(NAMES)
        assert {e["type"] for e in first} == {"ADDED"}
        cordon = kubectl(binary, kubeconfig, "cordon", "w-3")
        assert cordon.returncode == 0, cordon.stderr
        while True:
            event = json.loads(watch.stdout.readline())
            node = event["object"]
            if node["metadata"]["name"] == "w-3" and node["spec"].get("unschedulable"):
                break
        assert event["type"] == "MODIFIED"
        assert int(node["metadata"]["resourceVersion"]) > int(version)
    finally:
        stop.cancel()
        watch.kill()
        watch.wait()
        kubectl(binary, kubeconfig, "uncordon", "w-3")
