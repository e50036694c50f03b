"""Every kind of inventory problem is reported at its file:line:column with its field path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from k8slk_ops.base.errors import EXIT_USAGE, UsageError
from k8slk_ops.inventory import InventoryError, InventoryIssue, load_inventory

GOOD_HEAD = """\
cluster:
  name: linuxkit
nodes:
  - {name: cp-1, address: 10.0.0.11, role: control-plane}
"""


def write(tmp_path: Path, text: str, name: str = "inv.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> list[InventoryIssue]:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    return list(info.value.issues)


def where(issues: list[InventoryIssue]) -> list[tuple[int, int, str]]:
    return [(i.line, i.column, i.field) for i in issues]


def test_bad_role_points_at_the_value_with_the_documented_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD_HEAD
        + """\
  - name: w-1
    address: 10.0.0.21
    role: wroker
""",
    )
    [issue] = problems(path)
    assert (issue.line, issue.column, issue.field) == (7, 11, "nodes[1].role")
    assert str(issue) == (
        f"{path}:7:11: nodes[1].role: must be 'control-plane' or 'worker', got 'wroker'"
    )


def test_unknown_key_points_at_the_key_and_suggests(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster:
          name: linuxkit
        nodes:
          - name: cp-1
            adress: 10.0.0.11
            role: control-plane
        """,
    )
    issues = problems(path)
    assert where(issues) == [(4, 5, "nodes[0]"), (5, 5, "nodes[0].adress")]
    assert issues[0].message == "required field 'address' is missing"
    assert issues[1].message == "unknown field 'adress'; did you mean 'address'?"


def test_unknown_keys_at_every_level_are_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        clutser: {}
        cluster:
          name: linuxkit
          podsubnet: 10.1.0.0/16
          kubeadm:
            ClusterConfig: {}
        ssh:
          identity_file: id
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane, ssh: {prot: 22}}
        """,
    )
    issues = problems(path)
    by_field = {i.field: i for i in issues}
    assert where(issues) == [
        (1, 1, "clutser"),
        (4, 3, "cluster.podsubnet"),
        (6, 5, "cluster.kubeadm.ClusterConfig"),
        (8, 3, "ssh.identity_file"),
        (10, 65, "nodes[0].ssh.prot"),
    ]
    assert by_field["clutser"].message.endswith("did you mean 'cluster'?")
    assert by_field["cluster.podsubnet"].message.endswith("did you mean 'podSubnet'?")
    assert by_field["cluster.kubeadm.ClusterConfig"].message.endswith(
        "did you mean 'ClusterConfiguration'?"
    )
    assert by_field["ssh.identity_file"].message.endswith("did you mean 'identityFile'?")
    assert by_field["nodes[0].ssh.prot"].message.endswith("did you mean 'port'?")


def test_many_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster:
          name: Linux_Kit
          kubernetesVersion: 1.31.3
          controlPlaneEndpoint: lb.example.com:70000
          podSubnet: 10.244.0.1/16
          serviceSubnet: not-a-cidr
        ssh:
          port: 0
          hostKeyPolicy: trusting
          connectTimeout: 0
          jumpHost: "bad user@bastion"
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane}
          - {name: cp-1, address: 10.0.0.300, role: worker}
          - {name: w-2, address: 10.0.0.11, role: worker}
        """,
    )
    issues = problems(path)
    assert where(issues) == [
        (2, 9, "cluster.name"),
        (3, 22, "cluster.kubernetesVersion"),
        (4, 25, "cluster.controlPlaneEndpoint"),
        (5, 14, "cluster.podSubnet"),
        (6, 18, "cluster.serviceSubnet"),
        (8, 9, "ssh.port"),
        (9, 18, "ssh.hostKeyPolicy"),
        (10, 19, "ssh.connectTimeout"),
        (11, 13, "ssh.jumpHost"),
        (14, 12, "nodes[1].name"),
        (14, 27, "nodes[1].address"),
        (15, 26, "nodes[2].address"),
    ]
    text = str(InventoryError(issues))
    assert text.splitlines()[0] == (
        f"{path}:2:9: cluster.name: must be a DNS-1123 label (lower-case letters, digits and "
        "'-', starting and ending with a letter or digit, at most 63 characters), got 'Linux_Kit'"
    )
    messages = [i.message for i in issues]
    assert messages[1] == "must be a version like v1.31.3, got '1.31.3'"
    assert "between 1 and 65535, got 70000" in messages[2]
    assert "host bits set" in messages[3]
    assert messages[6] == "must be 'strict', 'accept-new' or 'pinned', got 'trusting'"
    assert messages[9] == "duplicate node name 'cp-1' (also nodes[0])"
    assert "must be an IP address or a host name" in messages[10]
    assert messages[11] == "duplicate address '10.0.0.11' (also nodes[0])"


def test_wrong_types_say_what_was_expected_and_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster: linuxkit
        ssh:
          port: "22"
          user: 0
        nodes:
          name: cp-1
        """,
    )
    issues = problems(path)
    assert [(i.line, i.field, i.message) for i in issues] == [
        (1, "cluster", "must be a mapping, got 'linuxkit'"),
        (3, "ssh.port", "must be a whole number, got '22'"),
        (4, "ssh.user", "must be a string, got 0 (quote it)"),
        (5, "nodes", "must be a list of nodes, got a mapping"),
    ]


def test_missing_sections(tmp_path: Path) -> None:
    path = write(tmp_path, "ssh: {user: root}\n")
    issues = problems(path)
    assert [(i.line, i.field, i.message) for i in issues] == [
        (1, "cluster", "required field 'cluster' is missing"),
        (1, "nodes", "required field 'nodes' is missing"),
    ]


def test_no_control_plane_points_at_nodes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster: {name: linuxkit}
        nodes:
          - {name: w-1, address: 10.0.0.21, role: worker}
          - {name: w-2, address: 10.0.0.22, role: worker, labels: {"a b": c}}
        """,
    )
    issues = problems(path)
    assert [(i.line, i.field) for i in issues] == [(2, "nodes"), (4, "nodes[1].labels.a b")]
    assert issues[0].message == "at least one node must have role 'control-plane'"


def test_an_invalid_node_that_may_be_the_control_plane_silences_that_rule(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """\
        cluster: {name: linuxkit}
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plan}
        """,
    )
    assert [i.field for i in problems(path)] == ["nodes[0].role"]


def test_overlapping_subnets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster:
          name: linuxkit
          podSubnet: 10.96.0.0/16
          serviceSubnet: 10.96.128.0/20
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane}
        """,
    )
    [issue] = problems(path)
    assert (issue.line, issue.column, issue.field) == (4, 18, "cluster.serviceSubnet")
    assert "overlap" in issue.message


def test_overlap_with_a_default_points_at_the_field_the_file_sets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster:
          name: linuxkit
          podSubnet: 10.100.0.0/16
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane}
        """,
    )
    [issue] = problems(path)
    assert (issue.line, issue.field) == (3, "cluster.podSubnet")
    assert "serviceSubnet 10.96.0.0/12" in issue.message


def test_pinned_policy_needs_a_fingerprint_per_node(tmp_path: Path) -> None:
    fp = "SHA256:" + "A" * 43
    path = write(
        tmp_path,
        f"""\
        cluster: {{name: linuxkit}}
        ssh: {{hostKeyPolicy: pinned}}
        nodes:
          - name: cp-1
            address: 10.0.0.11
            role: control-plane
            ssh: {{hostKeyFingerprint: "{fp}"}}
          - name: w-1
            address: 10.0.0.21
            role: worker
        """,
    )
    [issue] = problems(path)
    assert (issue.line, issue.field) == (8, "nodes[1].ssh.hostKeyFingerprint")
    assert "pinned" in issue.message and "ssh-keygen -lf" in issue.message


def test_fingerprint_format_and_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster: {name: linuxkit}
        ssh:
          hostKeyFingerprint: "SHA256:abc"
        nodes:
          - name: cp-1
            address: 10.0.0.11
            role: control-plane
            ssh:
              hostKeyPolicy: pinned
              hostKeyFingerprint: "MD5:aa:bb"
        """,
    )
    issues = problems(path)
    assert [(i.line, i.field) for i in issues] == [
        (3, "ssh.hostKeyFingerprint"),
        (10, "nodes[0].ssh.hostKeyFingerprint"),
    ]
    assert "belongs to one node" in issues[0].message
    assert "ssh-keygen -lf" in issues[1].message


def test_explicit_null_for_an_inherited_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD_HEAD.replace("control-plane}", "control-plane, ssh: {port: null}}"),
    )
    [issue] = problems(path)
    assert (issue.line, issue.field) == (4, "nodes[0].ssh.port")
    assert issue.message.startswith("must not be null")


def test_kubeadm_overrides_may_not_set_api_version(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster:
          name: linuxkit
          kubeadm:
            KubeletConfiguration:
              apiVersion: kubelet.config.k8s.io/v1beta1
        nodes:
          - {name: cp-1, address: 10.0.0.11, role: control-plane}
        """,
    )
    [issue] = problems(path)
    assert (issue.line, issue.field) == (4, "cluster.kubeadm.KubeletConfiguration")
    assert "'apiVersion' cannot be overridden" in issue.message


def test_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cluster:\n  name: linuxkit\n nodes: [\n")
    [issue] = problems(path)
    assert issue.line == 3
    assert issue.message.startswith("YAML syntax error:")
    assert str(issue).startswith(f"{path}:3:")


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "cluster:\n\tname: linuxkit\n")
    [issue] = problems(path)
    assert issue.line == 2 and "YAML syntax error" in issue.message


def test_every_duplicate_key_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        cluster:
          name: linuxkit
          name: other
        nodes:
          - name: cp-1
            address: 10.0.0.11
            role: control-plane
            role: worker
        """,
    )
    issues = problems(path)
    assert [(i.line, i.column, i.field) for i in issues] == [
        (3, 3, "cluster.name"),
        (8, 5, "nodes[0].role"),
    ]
    assert issues[0].message == "duplicate key 'name' (first at line 2)"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    [issue] = problems(path)
    assert str(issue) == f"{path}: no such file"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    [issue] = problems(tmp_path)
    assert "is a directory" in issue.message


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    [issue] = problems(path)
    assert str(issue) == f"{path}:1:1: the file is empty"


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("just text\n", "'just text'"), ("42\n", "42")],
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    path = write(tmp_path, text)
    [issue] = problems(path)
    assert issue.message == f"the top level must be a mapping, got {found}"
    assert issue.line == 1


def test_inventory_error_is_a_usage_error_with_one_line_per_issue(tmp_path: Path) -> None:
    path = write(tmp_path, "cluster: {name: linuxkit}\nnodes: []\nextra: 1\n")
    with pytest.raises(UsageError) as info:
        load_inventory(path)
    assert info.value.exit_code == EXIT_USAGE
    lines = str(info.value).splitlines()
    assert lines == [
        f"{path}:2:1: nodes: must list at least one node",
        f"{path}:3:1: extra: unknown field 'extra' (valid: cluster, ssh, nodes)",
    ]
