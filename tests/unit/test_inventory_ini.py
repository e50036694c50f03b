"""Old Ansible INI inventories load unchanged, group_vars included; errors name INI lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from k8slk_ops.inventory import InventoryError, InventoryIssue, load_inventory
from k8slk_ops.inventory.ini_loader import expand_pattern

REPO = Path(__file__).resolve().parents[2]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> list[InventoryIssue]:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    return list(info.value.issues)


def test_sample_ansible_inventory() -> None:
    inv = load_inventory(REPO / "inventories" / "ansible-hosts.ini")
    assert inv.cluster.name == "linuxkit"
    assert inv.cluster.pod_subnet == "100.97.0.0/16"
    assert inv.cluster.service_subnet == "100.96.0.0/16"
    assert inv.endpoint == "10.0.0.11:6443"
    assert inv.first_control_plane.name == "cp-1"
    assert [n.name for n in inv.control_planes] == ["cp-1", "cp-2", "cp-3"]
    assert [n.name for n in inv.workers] == ["w-1", "w-2"]
    assert inv.node("w-2").address == "10.0.0.22"
    assert inv.ssh_for("w-2").user == "root" and inv.ssh_for("w-2").port == 22


def test_hosts_file_without_extension_and_group_vars(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts",
        """\
        [init-master]
        192.168.122.178

        [masters]
        192.168.122.206

        [workers]
        192.168.122.27
        """,
    )
    write(
        tmp_path,
        "group_vars/all.yaml",
        """\
        # Required ansible configuration
        ansible_python_interpreter: "/usr/bin/python3"
        ansible_shell_executable: "ctr --namespace services.linuxkit tasks exec --exec-id x kubelet sh"
        ansible_ssh_common_args: "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        clusterName: local
        podSubnet: 100.97.0.0/16
        serviceSubnet: 100.96.0.0/16
        controlPlaneEndpoint: "192.168.122.178"
        """,
    )
    inv = load_inventory(hosts)
    assert inv.cluster.name == "local"
    assert inv.endpoint == "192.168.122.178:6443"
    assert [(n.name, n.address, n.role) for n in inv.nodes] == [
        ("192.168.122.178", "192.168.122.178", "control-plane"),
        ("192.168.122.206", "192.168.122.206", "control-plane"),
        ("192.168.122.27", "192.168.122.27", "worker"),
    ]
    ssh = inv.ssh_for(inv.first_control_plane)
    assert ssh.host_key_policy == "accept-new"  # recorded on first use, never ignored
    assert ssh.known_hosts.name == "known_hosts"


def test_group_vars_override_file_vars_and_host_vars_override_both(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "cluster.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11 ansible_user=core ansible_port=2222

        [workers]
        w-1 ansible_host=10.0.0.21

        [all:vars]
        clusterName=fromfile
        podSubnet=10.1.0.0/16
        ansible_user=admin

        [k8s:vars]
        podSubnet=10.2.0.0/16
        ansible_ssh_private_key_file=keys/id_ed25519
        """,
    )
    write(tmp_path, "group_vars/all.yml", "clusterName: fromgroupvars\nansible_port: 2200\n")
    write(tmp_path, "keys/id_ed25519", "not a real key\n")
    inv = load_inventory(hosts)
    assert inv.cluster.name == "fromgroupvars"
    assert inv.cluster.pod_subnet == "10.2.0.0/16"
    cp, w = inv.ssh_for("cp-1"), inv.ssh_for("w-1")
    assert (cp.user, cp.port) == ("core", 2222)
    assert (w.user, w.port) == ("admin", 2200)
    assert w.identity_file == tmp_path / "keys" / "id_ed25519"


def test_role_group_vars_apply_to_their_hosts_only(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11
        [workers]
        w-[1:3] hostKeyPolicy=accept-new
        [workers:vars]
        ansible_user=core
        [all:vars]
        clusterName=lab
        ansible_ssh_common_args='-J ops@bastion:2222 -o ConnectTimeout=4'
        """,
    )
    inv = load_inventory(hosts)
    assert [n.name for n in inv.workers] == ["w-1", "w-2", "w-3"]
    assert inv.ssh_for("cp-1").user == "root"
    assert inv.ssh_for("w-2").user == "core"
    assert inv.ssh_for("w-3").host_key_policy == "accept-new"
    assert inv.ssh_for("cp-1").jump_host == "ops@bastion:2222"
    assert inv.ssh_for("w-1").connect_timeout == 4.0


def test_a_host_listed_in_init_master_and_masters_is_one_control_plane(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11
        [masters]
        cp-1
        cp-2 ansible_host=10.0.0.12
        [all:vars]
        clusterName=lab
        """,
    )
    inv = load_inventory(hosts)
    assert [n.name for n in inv.control_planes] == ["cp-1", "cp-2"]
    assert inv.node("cp-1").address == "10.0.0.11"


def test_ini_errors_point_at_ini_lines(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.999

        [worker]
        w-1 ansible_host=10.0.0.21 ansible_port=ssh

        [all:vars]
        clusterName=Lab
        podSubnet=10.96.0.0/16
        serviceSubnet=10.96.0.0/12
        podSubnett=1
        """,
    )
    issues = problems(hosts)
    assert [(i.file, i.line, i.column, i.field) for i in issues] == [
        (str(hosts), 2, 19, "nodes[0].address"),
        (str(hosts), 4, 1, ""),
        (str(hosts), 8, 13, "cluster.name"),
        (str(hosts), 10, 15, "cluster.serviceSubnet"),
        (str(hosts), 11, 1, ""),
    ]
    assert issues[1].message == "unknown group [worker]; did you mean [workers]?"
    assert "overlap" in issues[3].message
    assert issues[4].message == "unknown variable 'podSubnett'; did you mean 'podSubnet'?"


def test_bad_port_on_a_host_line(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11 ansible_port=ssh
        [all:vars]
        clusterName=lab
        """,
    )
    [issue] = problems(hosts)
    assert (issue.line, issue.column, issue.field) == (2, 42, "nodes[0].ssh.port")
    assert issue.message == "must be a whole number, got 'ssh'"


def test_errors_in_group_vars_name_that_file(tmp_path: Path) -> None:
    hosts = write(tmp_path, "hosts", "[init-master]\ncp-1 ansible_host=10.0.0.11\n")
    group_vars = write(
        tmp_path,
        "group_vars/all.yml",
        """\
        clusterName: lab
        podSubnet: 10.244.0.0/33
        """,
    )
    [issue] = problems(hosts)
    assert (issue.file, issue.line, issue.column) == (str(group_vars), 2, 12)
    assert issue.field == "cluster.podSubnet"


def test_syntax_error_in_group_vars(tmp_path: Path) -> None:
    hosts = write(tmp_path, "hosts", "[init-master]\ncp-1\n[all:vars]\nclusterName=x\n")
    group_vars = write(tmp_path, "group_vars/all.yml", "a: [1,\n")
    issues = problems(hosts)
    assert [(i.file, i.line) for i in issues] == [(str(group_vars), 2)]


def test_missing_cluster_name_says_what_to_set(tmp_path: Path) -> None:
    hosts = write(tmp_path, "hosts.ini", "[init-master]\ncp-1 ansible_host=10.0.0.11\n")
    [issue] = problems(hosts)
    assert issue.field == "clusterName"
    assert "[all:vars]" in issue.message and "group_vars/all.yml" in issue.message


def test_no_control_plane(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        "[workers]\nw-1 ansible_host=10.0.0.21\n[all:vars]\nclusterName=lab\n",
    )
    [issue] = problems(hosts)
    assert issue.line == 1
    assert issue.message == "no control plane: put a host in [init-master] or [masters]"


def test_structure_problems(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11
        cp-2 ansible_host=10.0.0.12
        [workers]
        cp-1
        w-1 port
        [all:vars]
        clusterName=lab
        just words
        ansible_host=10.0.0.1
        [all:weird]
        """,
    )
    issues = problems(hosts)
    assert [(i.line, i.column) for i in issues] == [
        (3, 1),
        (5, 1),
        (6, 5),
        (9, 1),
        (10, 1),
        (11, 1),
    ]
    messages = [i.message for i in issues]
    assert "holds one host" in messages[0]
    assert "both a control plane and in [workers]" in messages[1]
    assert messages[2] == "expected 'name=value' after the host, got 'port'"
    assert "expected 'name=value'" in messages[3]
    assert "names one host" in messages[4]
    assert "unknown section kind" in messages[5]


def test_host_patterns() -> None:
    assert expand_pattern("w[1:3]") == ["w1", "w2", "w3"]
    assert expand_pattern("n[08:10].lab") == ["n08.lab", "n09.lab", "n10.lab"]
    assert expand_pattern("r[a:c]-[1:2]") == ["ra-1", "ra-2", "rb-1", "rb-2", "rc-1", "rc-2"]
    assert expand_pattern("w[0:6:3]") == ["w0", "w3", "w6"]
    with pytest.raises(ValueError):
        expand_pattern("w[3:1x]")
    with pytest.raises(ValueError, match="over 10000 hosts"):
        expand_pattern("w[0:99999999]")
