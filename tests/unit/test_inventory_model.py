"""The inventory model: examples load, defaults, per-node SSH, paths, summary, frozen."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from k8slk_ops.inventory import (
    Inventory,
    NodeSpec,
    SSHSettings,
    inventory_format,
    load_inventory,
    summarize,
)

REPO = Path(__file__).resolve().parents[2]
FP = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example inventories name private keys in ~/.ssh: they must exist to load."""
    home = tmp_path / "examples-home"
    (home / ".ssh").mkdir(parents=True)
    for name in ("id_ed25519", "prod_ed25519"):
        (home / ".ssh" / name).write_text("not a real key\n")
    monkeypatch.setenv("HOME", str(home))


def write(tmp_path: Path, text: str, name: str = "inv.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_example_loads_with_one_control_plane_and_three_workers() -> None:
    inv = load_inventory(REPO / "inventories" / "example.yml")
    assert [n.name for n in inv.control_planes] == ["cp-1"]
    assert [n.name for n in inv.workers] == ["w-1", "w-2", "w-3"]
    assert inv.cluster.kubernetes_version == "v1.31.3"
    assert inv.endpoint == "10.0.0.11:6443"
    assert inv.ssh_for("w-3").port == 2222
    assert inv.ssh_for("w-2").port == 22
    assert inv.node("w-1").labels == {"zone": "a"}


def test_ha_example_has_three_control_planes_behind_the_balancer() -> None:
    path = REPO / "inventories" / "ha-example.yml"
    inv = load_inventory(path)
    assert len(inv.control_planes) == 3 and len(inv.workers) == 2
    assert inv.endpoint == "lb.example.com:6443"
    assert inv.endpoint_host == "lb.example.com" and inv.endpoint_port == 6443
    assert "lb.example.com" in inv.cluster.cert_sans
    assert inv.cluster.kubeadm.for_kind("KubeProxyConfiguration") == {"mode": "ipvs"}
    assert inv.cluster.kubeadm.for_kind("InitConfiguration") == {}
    overrides = inv.cluster.kubeadm.as_mapping()
    assert list(overrides) == [
        "ClusterConfiguration",
        "KubeletConfiguration",
        "KubeProxyConfiguration",
    ]
    assert overrides["KubeletConfiguration"] == {"maxPods": 150, "serverTLSBootstrap": True}
    ssh = inv.ssh_for("cp-2")
    assert ssh.identity_file == Path("~/.ssh/prod_ed25519").expanduser()
    assert ssh.jump_host == "ops@bastion.example.com:22"
    assert ssh.host_key_policy == "accept-new"


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(
        tmp_path,
        """\
        cluster: {name: linuxkit}
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane}
        """,
    )
    inv = load_inventory(path)
    assert inv.cluster.kubernetes_version is None
    assert inv.cluster.pod_subnet == "10.244.0.0/16"
    assert inv.cluster.service_subnet == "10.96.0.0/12"
    assert inv.cluster.dns_domain == "cluster.local"
    assert inv.cluster.cert_sans == ()
    assert inv.endpoint == "10.0.0.11:6443"
    ssh = inv.ssh_for(inv.first_control_plane)
    assert (ssh.user, ssh.port, ssh.host_key_policy) == ("root", 22, "strict")
    assert ssh.known_hosts == tmp_path / "home" / ".ssh" / "known_hosts"
    assert ssh.config_file == tmp_path / "home" / ".ssh" / "config"
    assert ssh.identity_file is None and ssh.jump_host is None
    assert (ssh.connect_timeout, ssh.keepalive_interval) == (10.0, 15.0)
    assert inv.source == path


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("lb.example.com", "lb.example.com:6443"),
        ("LB.Example.com:8443", "lb.example.com:8443"),
        ("10.0.0.10", "10.0.0.10:6443"),
        ("fd00::10", "[fd00::10]:6443"),
        ("[fd00::10]:7443", "[fd00::10]:7443"),
    ],
)
def test_endpoint_gets_the_default_port(tmp_path: Path, endpoint: str, expected: str) -> None:
    path = write(
        tmp_path,
        f"""\
        cluster: {{name: linuxkit, controlPlaneEndpoint: "{endpoint}"}}
        nodes:
          - {{name: cp-1, address: 10.0.0.11, role: control-plane}}
        """,
    )
    assert load_inventory(path).endpoint == expected


def test_ipv6_first_control_plane_endpoint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster: {name: linuxkit}
        nodes:
          - {name: cp-1, address: "FD00:0::11", role: control-plane}
        """,
    )
    inv = load_inventory(path)
    assert inv.first_control_plane.address == "fd00::11"
    assert inv.endpoint == "[fd00::11]:6443"


def test_per_node_ssh_overrides_only_what_they_set(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        cluster: {{name: linuxkit}}
        ssh:
          user: admin
          port: 2200
          jumpHost: bastion.example.com
          connectTimeout: 3
        nodes:
          - {{name: cp-1, address: 10.0.0.11, role: control-plane}}
          - name: w-1
            address: 10.0.0.21
            role: worker
            ssh: {{port: 2222, hostKeyPolicy: pinned, hostKeyFingerprint: "{FP}"}}
          - name: w-2
            address: 10.0.0.22
            role: worker
            ssh: {{jumpHost: null, user: core}}
        """,
    )
    inv = load_inventory(path)
    cp, w1, w2 = (inv.ssh_for(n) for n in ("cp-1", "w-1", "w-2"))
    assert (cp.user, cp.port, cp.jump_host) == ("admin", 2200, "bastion.example.com")
    assert (w1.user, w1.port, w1.jump_host) == ("admin", 2222, "bastion.example.com")
    assert (w1.host_key_policy, w1.host_key_fingerprint) == ("pinned", FP)
    assert (w2.user, w2.port, w2.jump_host) == ("core", 2200, None)
    assert cp.connect_timeout == w1.connect_timeout == w2.connect_timeout == 3.0
    assert isinstance(cp, SSHSettings)
    assert inv.ssh_for(inv.node("w-1")) == w1


def test_paths_resolve_against_the_inventory_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    sub = tmp_path / "clusters" / "prod"
    sub.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    write(
        sub,
        """\
        cluster: {name: linuxkit}
        ssh:
          identityFile: keys/id_ed25519
          knownHosts: ~/kh
          configFile: /etc/ssh/ssh_config
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane}
          - name: w-1
            address: 10.0.0.21
            role: worker
            ssh: {identityFile: ../other/id_rsa}
        """,
    )
    for key in (sub / "keys" / "id_ed25519", tmp_path / "clusters" / "other" / "id_rsa"):
        key.parent.mkdir(parents=True)
        key.write_text("not a real key\n")
    inv = load_inventory(Path("clusters/prod/inv.yml"))
    cp = inv.ssh_for("cp-1")
    assert cp.identity_file == sub / "keys" / "id_ed25519"
    assert cp.known_hosts == tmp_path / "home" / "kh"
    assert cp.config_file == Path("/etc/ssh/ssh_config")
    assert inv.ssh_for("w-1").identity_file == tmp_path / "clusters" / "other" / "id_rsa"
    assert inv.source == Path("clusters/prod/inv.yml")


def test_addresses_and_names_normalise(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster: {name: linuxkit, certSANs: [LB.Example.com, "*.api.example.com", 10.0.0.10]}
        nodes:
          - {name: cp-1, address: Node1.Example.COM., role: control-plane}
        """,
    )
    inv = load_inventory(path)
    assert inv.first_control_plane.address == "node1.example.com"
    assert inv.cluster.cert_sans == ("lb.example.com", "*.api.example.com", "10.0.0.10")


def test_dual_stack_subnets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster:
          name: linuxkit
          podSubnet: "10.244.0.0/16,fd00:10:244::/56"
          serviceSubnet: "10.96.0.0/12,fd00:10:96::/112"
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane}
        """,
    )
    assert load_inventory(path).cluster.pod_subnet == "10.244.0.0/16,fd00:10:244::/56"


def test_loaded_inventory_is_frozen(tmp_path: Path) -> None:
    inv = load_inventory(REPO / "inventories" / "example.yml")
    with pytest.raises(ValidationError):
        inv.cluster.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        inv.ssh.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        inv.nodes[0].role = "worker"  # type: ignore[misc]
    with pytest.raises(TypeError):
        inv.nodes[0] = inv.nodes[1]  # type: ignore[index]
    assert inv.cluster.name == "linuxkit"


def test_node_lookup_and_select() -> None:
    inv = load_inventory(REPO / "inventories" / "example.yml")
    assert isinstance(inv.node("w-2"), NodeSpec)
    assert [n.name for n in inv.select(["w-3", "cp-1"])] == ["cp-1", "w-3"]
    with pytest.raises(KeyError, match="no node 'w-9'"):
        inv.node("w-9")
    with pytest.raises(KeyError):
        inv.select(["w-1", "nope"])


def test_model_rejects_inconsistent_construction() -> None:
    inv = load_inventory(REPO / "inventories" / "example.yml")
    data = inv.model_dump(by_alias=True, exclude_unset=True, exclude={"source"})
    data["nodes"] = list(data["nodes"])
    data["nodes"][1]["name"] = "cp-1"
    with pytest.raises(ValidationError, match="duplicate node name"):
        Inventory.model_validate(data)
    again = inv.model_dump(by_alias=True, exclude_unset=True)
    # The addon manifests are read by the loader, not part of the data.
    assert inv.addon_manifests
    assert Inventory.model_validate(again) == inv.model_copy(update={"addon_manifests": ()})


def test_summary_is_plain_data() -> None:
    inv = load_inventory(REPO / "inventories" / "ha-example.yml")
    summary = summarize(inv)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["counts"] == {"control-plane": 3, "worker": 2}
    assert summary["endpoint"] == "lb.example.com:6443"
    assert summary["kubernetesVersion"] == "v1.31.3"
    assert summary["firstControlPlane"] == "cp-1"
    assert summary["kubeadmOverrides"] == [
        "ClusterConfiguration",
        "KubeletConfiguration",
        "KubeProxyConfiguration",
    ]
    assert summary["nodes"][3]["ssh"] == "root@10.0.0.21:22"


def test_summary_says_where_the_version_comes_from(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster: {name: linuxkit}
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane}
        """,
    )
    summary = summarize(load_inventory(path))
    assert summary["kubernetesVersion"] == "from the nodes' kubeadm"
    assert summary["counts"] == {"control-plane": 1, "worker": 0}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("hosts.ini", "", "ini"),
        ("inv.yml", "[masters]\n", "yaml"),
        ("inv.yaml", "", "yaml"),
        ("hosts", "# old\n\n[init-master]\ncp-1\n", "ini"),
        ("hosts", "cluster: {name: x}\n", "yaml"),
        ("inventory.txt", "[a, b]\n", "yaml"),
    ],
)
def test_format_detection(name: str, text: str, expected: str) -> None:
    assert inventory_format(Path(name), text) == expected
