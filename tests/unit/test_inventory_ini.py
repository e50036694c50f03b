"""Old Ansible INI inventories load unchanged, group_vars and children groups included, read as
Ansible reads them; errors name INI lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from k8slk_ops.engine.context import ClusterFacts, PlanContext, RunOptions
from k8slk_ops.engine.plan import make_plan
from k8slk_ops.engine.playbook import load_builtin
from k8slk_ops.inventory import InventoryError, InventoryIssue, load_inventory
from k8slk_ops.inventory.ini_loader import expand_pattern
from k8slk_ops.node.facts import parse_facts
from k8slk_ops.steps import STEPS
from tests.unit.clirun import K8slk
from tests.unit.test_playbook_plan import WAITING, actions

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

        [k8s:children]
        init-master
        workers

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


def test_workers_reached_through_a_child_group_are_planned(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11

        [workers]
        w-2 ansible_host=10.0.0.22

        [east]
        w-1 ansible_host=10.0.0.21

        [workers:children]
        east

        [all:vars]
        clusterName=lab
        """,
    )
    inv = load_inventory(hosts)
    assert [(n.name, n.role) for n in inv.nodes] == [
        ("cp-1", "control-plane"),
        ("w-2", "worker"),  # Ansible lists a group's own hosts before its children's
        ("w-1", "worker"),
    ]
    assert inv.warnings == ()
    context = PlanContext(
        inventory=inv,
        options=RunOptions(run_id="r1"),
        facts={n.name: parse_facts(WAITING) for n in inv.nodes},
        unreachable={},
        cluster=ClusterFacts(primary="cp-1"),
    )
    plan = make_plan(load_builtin("bootstrap", STEPS), context).to_json()
    assert set(actions(plan, "join-workers")) == {"w-1", "w-2"}


THREE_LEVELS = """\
[init-master]
cp-1 ansible_host=10.0.0.11

[rack-1]
w-1 ansible_host=10.0.0.21
[rack-2]
w-2 ansible_host=10.0.0.22 ansible_user=w2-own
[west]
w-3 ansible_host=10.0.0.23

[east:children]
rack-1
rack-2
[zones:children]
east
west
[workers:children]
zones
[k8s:children]
init-master
workers

[all:vars]
clusterName=lab
ansible_user=from-all
ansible_port=2200
[k8s:vars]
ansible_port=2201
[zones:vars]
ansible_user=from-zones
[east:vars]
ansible_user=from-east
[rack-1:vars]
connectTimeout=7
"""


def test_a_three_level_children_tree_reaches_every_worker(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, "hosts.ini", THREE_LEVELS))
    assert [(n.name, n.role) for n in inv.nodes] == [
        ("cp-1", "control-plane"),
        ("w-3", "worker"),  # west is a child of zones, east's racks one level further down
        ("w-1", "worker"),
        ("w-2", "worker"),
    ]
    assert inv.warnings == ()


def test_group_vars_are_inherited_child_over_parent_host_over_all(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, "hosts.ini", THREE_LEVELS))
    users = {n.name: inv.ssh_for(n).user for n in inv.nodes}
    assert users == {
        "cp-1": "from-all",  # in no group that sets ansible_user: all's value
        "w-1": "from-east",  # east (depth 3) over zones (depth 2) over all
        "w-2": "w2-own",  # the host's own line over every group
        "w-3": "from-zones",  # west sets nothing: its parent's value
    }
    ports = {n.name: inv.ssh_for(n).port for n in inv.nodes}
    assert set(ports.values()) == {2201}  # k8s, a parent of every node, over all
    assert inv.ssh_for("w-1").connect_timeout == 7.0  # from rack-1, three levels down
    assert inv.ssh_for("w-2").connect_timeout == 10.0  # rack-1's vars do not reach rack-2


def test_group_vars_files_follow_the_same_order(tmp_path: Path) -> None:
    hosts = write(tmp_path, "hosts.ini", THREE_LEVELS)
    write(tmp_path, "group_vars/all.yml", "ansible_user: from-all-file\n")
    write(tmp_path, "group_vars/zones.yml", "ansible_user: from-zones-file\n")
    inv = load_inventory(hosts)
    users = {n.name: inv.ssh_for(n).user for n in inv.nodes}
    # Ansible: INI group vars < group_vars/all < group_vars/<group> < the host's line.
    assert users == {
        "cp-1": "from-all-file",
        "w-1": "from-zones-file",
        "w-2": "w2-own",
        "w-3": "from-zones-file",
    }


def test_groups_of_one_depth_merge_by_name_then_priority(tmp_path: Path) -> None:
    text = """\
        [init-master]
        cp-1 ansible_host=10.0.0.11
        [workers]
        w-1 ansible_host=10.0.0.21
        [blue]
        w-1
        [amber]
        w-1
        [amber:vars]
        ansible_user=amber
        [blue:vars]
        ansible_user=blue
        [all:vars]
        clusterName=lab
        """
    inv = load_inventory(write(tmp_path, "hosts.ini", text))
    assert inv.ssh_for("w-1").user == "blue"  # same depth: the later name wins
    text = text.replace("ansible_user=amber", "ansible_user=amber\nansible_group_priority=10")
    inv = load_inventory(write(tmp_path, "hosts.ini", text))
    assert inv.ssh_for("w-1").user == "amber"  # a higher ansible_group_priority wins


def test_a_children_cycle_is_refused_with_its_line(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11
        [east]
        w-1
        [zones:children]
        east
        [east:children]
        zones
        [workers:children]
        zones
        [all:vars]
        clusterName=lab
        """,
    )
    [issue] = problems(hosts)
    assert (issue.file, issue.line, issue.column) == (str(hosts), 8, 1)
    assert "[east:children] lists zones, which contains east" in issue.message
    assert "zones -> east -> zones (with line 6)" in issue.message
    assert "remove one of these lines" in issue.message


def test_a_group_listed_as_its_own_child_is_refused(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        "[init-master]\ncp-1\n[workers:children]\nworkers\n[all:vars]\nclusterName=lab\n",
    )
    [issue] = problems(hosts)
    assert issue.line == 4 and "workers -> workers" in issue.message


def test_undefined_groups_are_refused_as_ansible_refuses_them(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11
        [workers:children]
        east
        [all:children]
        all
        [west:vars]
        ansible_user=core
        [all:vars]
        clusterName=lab
        """,
    )
    issues = problems(hosts)
    assert [(i.line, i.column) for i in issues] == [(4, 1), (6, 1), (7, 1)]
    assert "includes undefined group 'east'" in issues[0].message
    assert "all, the group of every host" in issues[1].message
    assert "[west:vars] is for a group no section defines" in issues[2].message


def test_a_host_of_no_role_group_is_reported_with_its_line(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        lonely ansible_host=10.0.0.4
        [init-master]
        cp-1 ansible_host=10.0.0.11
        [bastion]
        jump-1 ansible_host=10.0.0.5
        [east]
        w-1 ansible_host=10.0.0.21
        [all:vars]
        clusterName=lab
        """,
    )
    inv = load_inventory(hosts)
    assert inv.names == ("cp-1",)
    assert [(w.file, w.line, w.column) for w in inv.warnings] == [
        (str(hosts), 1, 1),
        (str(hosts), 5, 1),
        (str(hosts), 7, 1),
    ]
    assert inv.warnings[2].message.startswith(
        "host 'w-1' is not a node: its groups ([east]) are not [init-master], [masters] or "
        "[workers] nor under them; if it is one, list its group under [workers:children]"
    )
    assert "([ungrouped])" in inv.warnings[0].message


def test_a_cluster_setting_that_reaches_some_nodes_only_is_refused(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11
        [workers]
        w-1 ansible_host=10.0.0.21
        w-2 ansible_host=10.0.0.22 podSubnet=10.3.0.0/16
        [workers:vars]
        podSubnet=10.2.0.0/16
        [all:vars]
        clusterName=lab
        podSubnet=10.1.0.0/16
        """,
    )
    issues = problems(hosts)
    assert [(i.line, i.column) for i in issues] == [(5, 28), (7, 1)]
    assert "podSubnet is a cluster setting, but this sets it for w-2 only, not for all 3" in (
        issues[0].message
    )
    assert "for w-1 only" in issues[1].message


def test_a_bad_group_value_is_reported_once_not_per_node(tmp_path: Path) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11
        [workers]
        w-[1:5]
        [workers:vars]
        ansible_port=ssh
        [all:vars]
        clusterName=lab
        """,
    )
    [issue] = problems(hosts)
    assert (issue.line, issue.column) == (6, 14)
    assert issue.message == "must be a whole number, got 'ssh'"


def test_the_sample_inventory_has_no_warnings() -> None:
    assert load_inventory(REPO / "inventories" / "ansible-hosts.ini").warnings == ()


def test_inventory_check_ends_with_the_cluster_it_understood(tmp_path: Path, k8slk: K8slk) -> None:
    hosts = write(
        tmp_path,
        "hosts.ini",
        """\
        [init-master]
        cp-1 ansible_host=10.0.0.11
        [masters]
        cp-[2:3]
        [east]
        w-[01:25]
        [bastion]
        jump-1
        [workers:children]
        east
        [all:vars]
        clusterName=lab
        """,
    )
    run = k8slk("inventory", "check", hosts)
    assert run.code == 0, run.why()
    shown = ", ".join(f"w-{i:02d}" for i in range(1, 21))
    assert run.stdout.splitlines() == [
        f"{hosts}: ok (1 warning)",
        "  cluster:        lab",
        "  endpoint:       10.0.0.11:6443",
        "  control planes: cp-1, cp-2, cp-3",
        f"  workers:        {shown}, ... and 5 more",
        "  nodes:          28 (3 control planes, 25 workers)",
    ]
    assert run.stderr.startswith(f"warning: {hosts}:8:1: host 'jump-1' is not a node")
    single = write(tmp_path, "one.ini", "[init-master]\ncp-1\n[all:vars]\nclusterName=lab\n")
    run = k8slk("inventory", "check", single)
    assert run.code == 0, run.why()
    assert run.stdout.splitlines()[-2:] == [
        "  workers:        none",
        "  nodes:          1 (1 control plane, 0 workers)",
    ]
    assert run.stderr == ""


def test_children_nested_too_deep_are_refused_at_the_line(tmp_path: Path) -> None:
    chain = "".join(f"[g{i}:children]\ng{i + 1}\n" for i in range(40))
    hosts = write(
        tmp_path,
        "hosts.ini",
        f"[init-master]\ncp-1\n[g40]\nw-1\n{chain}[workers:children]\ng0\n"
        "[all:vars]\nclusterName=lab\n",
    )
    [issue] = problems(hosts)
    # g0 is at depth 2 (under workers): g31 is the 33rd level, named on line 66.
    assert issue.line == 66
    assert "nests g31 33 levels deep; at most 32 levels" in issue.message


# -- group_vars of a role: read and judged once, whatever the number of its hosts ---------------


def _workers_inventory(tmp_path: Path, group_vars: str, workers: int = 100) -> Path:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "workers.yml").write_text(group_vars)
    path = tmp_path / "hosts.ini"
    path.write_text("[init-master]\ncp-1 ansible_host=10.0.0.1\n[workers]\n"
                    + "".join(f"w-{i} ansible_host=10.0.1.{i}\n" for i in range(workers))
                    + "[all:vars]\nclusterName=lab\n")
    return path


def _count(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    from k8slk_ops.inventory import ini_loader

    calls: list[object] = []
    real = getattr(ini_loader, name)

    def counting(*args: object) -> object:
        calls.append(args[0])
        return real(*args)

    monkeypatch.setattr(ini_loader, name, counting)
    return calls


def test_a_role_group_vars_file_is_parsed_once_and_its_problems_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 workers share group_vars/workers.yml: one parse, one judgement per variable, each
    problem once (not once per worker)."""
    parses = _count(monkeypatch, "load_yaml_document")
    suggestions = _count(monkeypatch, "suggest")
    path = _workers_inventory(tmp_path, "ansibel_user: core\nfoo_bar: 1\nansible_port: x\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert [p.name for p in parses] == ["workers.yml"]  # type: ignore[attr-defined]
    assert sorted(suggestions) == ["ansibel_user", "foo_bar"]
    where = str(tmp_path / "group_vars" / "workers.yml")
    lines = str(err.value).splitlines()
    assert [line for line in lines if "unknown variable" in line] == [
        f"{where}:1:1: unknown variable 'ansibel_user'; did you mean 'ansible_user'?",
        f"{where}:2:1: unknown variable 'foo_bar'",
    ]
    assert len([line for line in lines if line.startswith(f"{where}:3:")]) == 1, lines


def test_thousands_of_unknown_group_vars_stop_being_collected_past_what_is_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 unknown variables for 100 workers took 86 s: 500,000 judgements, each with a
    suggestion. Now each variable is judged once, and none past the error's display cap."""
    from k8slk_ops.inventory.errors import MAX_SHOWN

    parses = _count(monkeypatch, "load_yaml_document")
    suggestions = _count(monkeypatch, "suggest")
    path = _workers_inventory(tmp_path, "".join(f"unknown_{i:04d}: {i}\n" for i in range(5000)))
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert len(parses) == 1
    assert len(suggestions) <= MAX_SHOWN + 1
    assert err.value.more
    assert len(err.value.issues) == MAX_SHOWN + 1
    assert len(set(err.value.issues)) == len(err.value.issues)
    last = str(err.value).splitlines()[-1]
    assert last.startswith("... and more problems (not counted past 200)")
