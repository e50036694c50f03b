"""The simulated node, without SSH: what k8slk-ops' own parsers read from it, and what its
kubeadm refuses. Settle and kubeadm durations are zero; a run is awaited, never slept on."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

import pytest
from k8sdouble import pki as k8spki

from k8slk_ops import kubeadm as tool
from k8slk_ops.node.facts import FACTS_SCRIPT, KubeadmState, parse_facts
from k8slk_ops.node.linuxkit import _ATOMIC_WRITE
from tests.fleet import kubeadm, layout, shell
from tests.fleet.cluster import Cluster
from tests.fleet.node import (
    ADMIN_CONF,
    CA_CERT,
    COMPLETED_LINE,
    KUBEADM_RUN,
    KUBEADM_YAML,
    MARKER,
    SimNode,
)
from tests.fleet.pki import ClusterPKI, make_pki
from tests.fleet.result import Result

ENDPOINT = "127.1.0.1:6443"
TOKEN = "abcdef.0123456789abcdef"


@pytest.fixture(scope="module")
def pki() -> ClusterPKI:
    return make_pki()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(pki: ClusterPKI, clock: Clock) -> Callable[..., SimNode]:
    cluster = Cluster(pki, ready_delay=1.0, clock=clock)
    specs = layout.node_specs(4, 2)
    config = layout.FleetConfig(nodes=specs, settle=0, kubeadm_seconds=0)

    def factory(index: int) -> SimNode:
        return SimNode(specs[index], cluster, config, kubeadm.run)

    return factory


def sh(node: SimNode, argv: list[str], stdin: bytes = b"") -> Result:
    answer = shell.dispatch(node, shlex.join(argv))
    if isinstance(answer, shell.NeedsInput):
        return answer.apply(stdin)
    assert isinstance(answer, Result), answer
    return answer


def ctr_exec(node: SimNode, *argv: str, exec_id: str = "t-1") -> Result:
    return sh(node, ["ctr", "--namespace", "services.linuxkit", "tasks", "exec", "--exec-id",
                     exec_id, "kubelet", *argv])


async def trigger(node: SimNode, flag: str, document: str) -> None:
    """Write the config and the flag the way k8slk-ops does, then wait for kubeadm.sh."""
    assert sh(node, ["sh", "-c", _ATOMIC_WRITE, "sh", KUBEADM_YAML, "600"],
              document.encode()).status == 0
    assert sh(node, ["sh", "-c", _ATOMIC_WRITE, "sh", KUBEADM_RUN, "644"],
              flag.encode()).status == 0
    assert node._script is not None
    await node._script


def init_doc(node: SimNode) -> str:
    spec = tool.InitSpec(
        node_name=node.name, advertise_address=node.spec.address,
        kubernetes_version="v1.31.3", cluster_name="fleet", control_plane_endpoint=ENDPOINT,
        bootstrap_tokens=(tool.BootstrapTokenSpec(token=TOKEN, ttl="30m"),),
    )
    return tool.render_init(spec, "v1beta4")


def join_doc(node: SimNode, **kw: Any) -> str:
    fields: dict[str, Any] = {
        "node_name": node.name, "api_server_endpoint": ENDPOINT, "token": TOKEN,
        "ca_cert_hashes": (node.cluster.pki.ca_hash,), "node_ip": node.spec.address,
    }
    fields.update(kw)
    return tool.render_join(tool.JoinSpec(**fields), "v1beta4")


def facts(node: SimNode) -> Any:
    return parse_facts(sh(node, ["sh", "-c", FACTS_SCRIPT]).stdout.decode())


def messages(node: SimNode) -> list[str]:
    return [tool.log_message(line) for line in node.log]


async def test_a_fresh_node_reads_as_waiting_through_the_tools_own_probe(make: Any) -> None:
    f = facts(make(0))
    assert (f.cpus, f.hostname, f.kubeadm_version) == (2, "cp-1", "v1.31.3")
    assert f.memory_bytes == 4_000_000 * 1024
    assert f.kubelet_running and not f.marker and not f.admin_conf and f.kubeadm_run is None
    assert f.kubeadm_state == KubeadmState.WAITING
    assert f.log and tool.parse_log_line(f.log[0]).source == "kubeadm.out"


async def test_init_completes_and_prints_the_pin_of_the_ca_it_wrote(make: Any) -> None:
    cp = make(0)
    await trigger(cp, "init", init_doc(cp))
    assert messages(cp)[-1] == COMPLETED_LINE
    assert KUBEADM_YAML not in cp.files and cp.files[KUBEADM_RUN] == b"init"
    assert MARKER in cp.files and ADMIN_CONF in cp.files
    pin = tool.ca_cert_hash(cp.files[CA_CERT])
    printed = tool.parse_join_commands("\n".join(messages(cp)))
    assert printed and {h for c in printed for h in c.ca_cert_hashes} == {pin}
    f = facts(cp)
    assert f.kubeadm_state == KubeadmState.COMPLETED and f.kubeadm_run == "init"
    assert f.tasks["kubeadm"].value == "STOPPED"


async def test_a_worker_joins_and_turns_ready_after_the_delay(make: Any, clock: Clock) -> None:
    cp, worker = make(0), make(2)
    await trigger(cp, "init", init_doc(cp))
    await trigger(worker, "join", join_doc(worker, node_labels={"zone": "a"}))
    assert messages(worker)[-1] == COMPLETED_LINE
    nodes = {n.name: n for n in tool.parse_nodes_json(ctr_exec(cp, "kubectl", "get", "nodes",
                                                                "-o", "json").stdout.decode())}
    assert set(nodes) == {"cp-1", "w-1"} and not nodes["w-1"].ready
    assert nodes["cp-1"].control_plane and not nodes["w-1"].control_plane
    assert nodes["w-1"].internal_ip == worker.spec.address
    clock.now += 1.5
    out = ctr_exec(cp, "kubectl", "get", "nodes", "-o", "json").stdout.decode()
    # As kubelet does: NotReady for want of a pod network, whatever the delay.
    assert all(
        not n.ready and "NetworkPluginNotReady" in n.not_ready_message
        for n in tool.parse_nodes_json(out)
    )
    applied = sh(cp, ["ctr", "--namespace", "services.linuxkit", "tasks", "exec", "--exec-id",
                      "t-2", "kubelet", "kubectl", "apply", "-f", "-"],
                 layout.POD_NETWORK_SOURCE.read_bytes())
    assert applied.status == 0 and b"daemonset.apps/lab-cni created" in applied.stdout
    out = ctr_exec(cp, "kubectl", "get", "nodes", "-o", "json").stdout.decode()
    assert all(n.ready for n in tool.parse_nodes_json(out))
    assert '"zone": "a"' in out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ca_cert_hashes": ("sha256:" + "0" * 64,)}, "are pinned"),
        ({"token": "zzzzzz.0123456789abcdef"}, 'for token ID "zzzzzz"'),
        ({"api_server_endpoint": "127.1.0.9:6443"}, "connection refused"),
    ],
)
async def test_a_join_with_bad_credentials_fails_like_kubeadm(
    make: Any, change: dict[str, Any], expected: str
) -> None:
    cp, worker = make(0), make(2)
    await trigger(cp, "init", init_doc(cp))
    await trigger(worker, "join", join_doc(worker, **change))
    said = messages(worker)
    assert COMPLETED_LINE not in said
    assert any(expected in m and m.startswith("error execution phase") for m in said)
    assert KUBEADM_YAML in worker.files  # kubeadm.sh stops at the error: the config stays
    assert facts(worker).kubeadm_state == KubeadmState.FAILED
    assert "w-1" not in worker.cluster.members


async def test_an_expired_token_is_refused(make: Any, clock: Clock) -> None:
    cp, worker = make(0), make(2)
    await trigger(cp, "init", init_doc(cp))
    clock.now += 31 * 60  # the init token lives 30 minutes
    await trigger(worker, "join", join_doc(worker))
    assert any("could not find a JWS signature" in m for m in messages(worker))


async def test_a_control_plane_join_needs_the_uploaded_certificates_key(make: Any) -> None:
    cp, cp2, cp2b = make(0), make(1), make(1)
    await trigger(cp, "init", init_doc(cp))
    extra = {"control_plane": True, "advertise_address": cp2.spec.address}
    await trigger(cp2, "join", join_doc(cp2, certificate_key="a" * 64, **extra))
    assert any('Secret "kubeadm-certs" was not found' in m for m in messages(cp2))
    out = ctr_exec(cp, "kubeadm", "init", "phase", "upload-certs", "--upload-certs")
    key = tool.parse_certificate_key(out.stdout.decode())
    await trigger(cp2b, "join", join_doc(cp2b, certificate_key="b" * 64, **extra))
    assert any("message authentication failed" in m for m in messages(cp2b))
    cp2b.boot()  # a reboot: the node can try again (its marker was written late in the run)
    cp2b.remove(MARKER)
    cp2b.boot()
    await trigger(cp2b, "join", join_doc(cp2b, certificate_key=key, **extra))
    assert messages(cp2b)[-1] == COMPLETED_LINE
    assert ADMIN_CONF in cp2b.files and cp2b.cluster.members["cp-2"].control_plane


async def test_a_flag_with_a_space_is_unknown_and_stops_the_task(make: Any) -> None:
    node = make(0)
    await trigger(node, "init ", init_doc(node))
    assert messages(node)[-1] == "Unknown kubeadm flag init "
    assert facts(node).kubeadm_state == KubeadmState.FAILED


async def test_a_configured_node_says_so_at_boot_and_never_runs_again(make: Any) -> None:
    cp = make(0)
    await trigger(cp, "init", init_doc(cp))
    cp.boot()
    assert messages(cp) == ["Kubernetes Node already has kubelet configuration"]
    assert facts(cp).kubeadm_state == KubeadmState.CONFIGURED
    assert KUBEADM_YAML not in cp.files and KUBEADM_RUN not in cp.files  # /run is a tmpfs


async def test_tokens_are_created_listed_and_deleted(make: Any) -> None:
    cp = make(0)
    assert ctr_exec(cp, "kubeadm", "token", "list").status == 1  # no cluster yet
    await trigger(cp, "init", init_doc(cp))
    made = ctr_exec(cp, "kubeadm", "token", "create", "--ttl", "30m", "--description", "run x")
    token = tool.parse_token(made.stdout.decode())
    listed = tool.parse_token_list(ctr_exec(cp, "kubeadm", "token", "list", "-o", "json")
                                   .stdout.decode())
    assert {t.token for t in listed} == {TOKEN, token}
    assert [t.description for t in listed if t.token == token] == ["run x"]
    table = ctr_exec(cp, "kubeadm", "token", "list").stdout.decode()
    assert {t.token for t in tool.parse_token_list(table)} == {TOKEN, token}
    assert ctr_exec(cp, "kubeadm", "token", "delete", token.split(".")[0]).status == 0
    assert token not in ctr_exec(cp, "kubeadm", "token", "list").stdout.decode()
    refused = ctr_exec(cp, "kubeadm", "token", "create", "--certificate-key", "a" * 64)
    assert b"without --print-join-command" in refused.stderr


async def test_commands_are_recognised_by_shape(make: Any) -> None:
    node = make(0)
    assert sh(node, ["frobnicate"]).status == 127
    assert sh(node, ["sh", "-c", "ls | wc -l"]).status == 127
    assert sh(node, ["sh", "-c", 'test -e "$1" || exit 3; cat "$1"', "sh", "/nope"]).status == 3
    wrapped = shell.dispatch(node, shlex.join(
        ["timeout", "-s", "KILL", "12", "sh", "-c", 'x; "$@" & p=$!; wait', "sh",
         "sh", "-c", "tail -n +1 -F /var/log/kubeadm.out.log 2>/dev/null"]))
    assert wrapped == shell.Follow(0)
    version = ctr_exec(node, "kubeadm", "version", "-o", "short")
    assert version.stdout == b"v1.31.3\n"
    assert sh(node, ["ctr", "--namespace", "services.linuxkit", "tasks", "exec", "kubelet",
                     "kubeadm", "version"]).status == 1  # no exec ID
    node.exec_ids.add("busy")
    busy = ctr_exec(node, "kubeadm", "version", exec_id="busy")
    assert busy.stderr == b"ctr: id busy: already exists\n"


async def test_the_cluster_lock_is_taken_once_and_released_by_its_holder(make: Any) -> None:
    from k8slk_ops.cluster.lock import _RELEASE, _TAKE

    node = make(0)
    take = ["sh", "-c", _TAKE, "sh", '{"run_id": "r1"}', "/run/k8slk-ops.lock"]
    assert sh(node, take).stdout == b"taken\n"
    other = ["sh", "-c", _TAKE, "sh", '{"run_id": "r2"}', "/run/k8slk-ops.lock"]
    assert sh(node, other).stdout == b'{"run_id": "r1"}'
    sh(node, ["sh", "-c", _RELEASE, "sh", '"run_id": "r2"', "/run/k8slk-ops.lock"])
    assert node.exists("/run/k8slk-ops.lock")
    sh(node, ["sh", "-c", _RELEASE, "sh", '"run_id": "r1"', "/run/k8slk-ops.lock"])
    assert not node.exists("/run/k8slk-ops.lock")


def test_the_pin_is_kubeadms(pki: ClusterPKI) -> None:
    assert k8spki.pin(pki.ca.cert) == tool.ca_cert_hash(pki.ca_pem) == pki.ca_hash


@pytest.mark.parametrize("cap", [65536, 700])
async def test_the_probe_ships_the_log_as_the_real_awk_does(
    make: Any, tmp_path: Any, cap: int
) -> None:
    """The fleet answers the probe's log section from the awk program it is sent; a node's
    real awk gives the same lines for the same log (a restart, a long init, the byte cap)."""
    import asyncio

    from k8slk_ops.node.facts import log_probe
    from tests.fleet.node import SETTLING_LINE, WAITING_LINE, log_prefix
    from tests.fleet.probe import run_probe

    node = make(0)
    await trigger(node, "init", init_doc(node))
    again = [WAITING_LINE, SETTLING_LINE, "Found kubeadm flag init"]
    again += [f"[wait-control-plane] still waiting, attempt {i}" for i in range(150)]
    node.log.extend(log_prefix() + m for m in again)  # the task restarted, and init runs long
    (tmp_path / "log").write_bytes(node.read("/var/log/kubeadm.out.log") or b"")
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", log_probe(str(tmp_path / "log"), cap), stdout=asyncio.subprocess.PIPE
    )
    real = (await proc.communicate())[0].decode()
    simulated = run_probe(node, log_probe("/var/log/kubeadm.out.log", cap)).decode()
    assert simulated == real
    assert real.count("\nlog ") + real.startswith("log ") > (3 if cap < 1000 else 150)
