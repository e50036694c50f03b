"""kubeadm overrides cannot switch off the tool's own checks, and render errors show at load."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from k8slk_ops.inventory import InventoryError, load_inventory
from k8slk_ops.kubeadm import JoinSpec, RenderError, render_join

PIN = "sha256:" + "ab" * 32


def _load(tmp_path: Path, kubeadm: str) -> InventoryError:
    path = tmp_path / "inv.yml"
    path.write_text(
        "cluster:\n  name: lab\n  kubeadm:\n"
        + textwrap.indent(textwrap.dedent(kubeadm), "    ")
        + "nodes:\n  - {name: cp-1, address: 10.0.0.11, role: control-plane}\n"
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    return info.value


@pytest.mark.parametrize(
    ("kubeadm", "line", "field", "words"),
    [
        (
            "JoinConfiguration:\n  discovery:\n    bootstrapToken:\n      unsafeSkipCAVerification: true\n",
            5,
            "cluster.kubeadm.JoinConfiguration.discovery",
            "CA",
        ),
        (
            f"JoinConfiguration:\n  discovery:\n    bootstrapToken: {{caCertHashes: ['{PIN}']}}\n",
            5,
            "cluster.kubeadm.JoinConfiguration.discovery",
            "CA",
        ),
        (
            "InitConfiguration:\n  bootstrapTokens: [{token: abcdef.0123456789abcdef, ttl: '0'}]\n",
            5,
            "cluster.kubeadm.InitConfiguration.bootstrapTokens",
            "revoked",
        ),
        (
            "InitConfiguration:\n  certificateKey: " + "a" * 64 + "\n",
            5,
            "cluster.kubeadm.InitConfiguration.certificateKey",
            "minted",
        ),
        (
            "JoinConfiguration:\n  controlPlane: {certificateKey: " + "a" * 64 + "}\n",
            5,
            "cluster.kubeadm.JoinConfiguration.controlPlane.certificateKey",
            "minted",
        ),
        (
            "InitConfiguration:\n  nodeRegistration: {name: other}\n",
            5,
            "cluster.kubeadm.InitConfiguration.nodeRegistration.name",
            "inventory",
        ),
    ],
)
def test_overrides_of_what_the_tool_decides_are_refused_at_load(
    tmp_path: Path, kubeadm: str, line: int, field: str, words: str
) -> None:
    [issue] = _load(tmp_path, kubeadm).issues
    assert (issue.line, issue.field) == (line, field), issue
    assert words in issue.message


def test_a_discovery_timeout_override_is_still_accepted(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "cluster:\n  name: lab\n  kubeadm:\n    JoinConfiguration:\n"
        "      discovery: {timeout: 5m0s}\n"
        "nodes:\n  - {name: cp-1, address: 10.0.0.11, role: control-plane}\n"
    )
    assert load_inventory(path).cluster.name == "lab"


def test_the_renderer_refuses_them_too() -> None:
    spec = JoinSpec(
        node_name="w-1",
        api_server_endpoint="10.0.0.11:6443",
        token="abcdef.0123456789abcdef",
        ca_cert_hashes=(PIN,),
        overrides={"JoinConfiguration": {"discovery": {"bootstrapToken": {"caCertHashes": [PIN]}}}},
    )
    with pytest.raises(RenderError, match="discovery"):
        render_join(spec, "v1beta4")


def test_a_render_error_is_reported_by_inventory_check(tmp_path: Path) -> None:
    # an argument whose value is a mapping cannot be rendered: found at load, not at init
    err = _load(
        tmp_path,
        "ClusterConfiguration:\n  apiServer:\n    extraArgs: {audit-log-maxage: {x: 1}}\n",
    )
    [issue] = err.issues
    assert issue.field == "cluster.kubeadm.ClusterConfiguration.apiServer.extraArgs", issue
    assert issue.line == 6
    assert "must be a scalar" in issue.message


def test_a_field_of_no_api_version_is_reported_at_load(tmp_path: Path) -> None:
    err = _load(tmp_path, "ClusterConfiguration:\n  useHyperKubeImage: true\n  proxy: {disabled: true}\n")
    [issue] = err.issues
    assert "does not exist" in issue.message
