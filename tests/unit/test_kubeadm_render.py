"""Rendering: golden files per API version, structure after loading, overrides, refusals."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from k8slk_ops.kubeadm import (
    BootstrapTokenSpec,
    ConfigApi,
    InitSpec,
    JoinSpec,
    RenderError,
    config_api_version,
    render_init,
    render_join,
)

PIN = "sha256:" + "ab" * 32
KEY = "c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f"
TOKEN = "abcdef.0123456789abcdef"


def init_spec(version: str = "v1.31.3", **kw: Any) -> InitSpec:
    fields: dict[str, Any] = {
        "node_name": "cp-1",
        "advertise_address": "192.168.56.100",
        "kubernetes_version": version,
        "cluster_name": "linuxkit",
        "control_plane_endpoint": "lb.example:6443",
        "pod_subnet": "10.244.0.0/16",
        "service_subnet": "10.96.0.0/12",
        "cert_sans": ("lb.example", "10.0.0.10"),
        "bootstrap_tokens": (
            BootstrapTokenSpec(token=TOKEN, ttl="30m0s", description="k8slk-ops run r1"),
        ),
        "certificate_key": KEY,
    }
    fields.update(kw)
    return InitSpec(**fields)


def join_spec(**kw: Any) -> JoinSpec:
    fields: dict[str, Any] = {
        "node_name": "worker-1",
        "api_server_endpoint": "192.168.56.100:6443",
        "token": TOKEN,
        "ca_cert_hashes": (PIN,),
        "node_ip": "192.168.56.101",
    }
    fields.update(kw)
    return JoinSpec(**fields)


def docs(text: str) -> dict[str, dict[str, Any]]:
    loaded = list(yaml.safe_load_all(text))
    by_kind = {d["kind"]: d for d in loaded}
    assert len(by_kind) == len(loaded)
    return by_kind


GOLDEN_INIT_V1BETA2 = """\
apiVersion: kubeadm.k8s.io/v1beta2
kind: InitConfiguration
bootstrapTokens:
- description: "k8slk-ops run r1"
  groups:
  - system:bootstrappers:kubeadm:default-node-token
  token: abcdef.0123456789abcdef
  ttl: 30m0s
  usages:
  - signing
  - authentication
certificateKey: c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f
localAPIEndpoint:
  advertiseAddress: "192.168.56.100"
  bindPort: 6443
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  kubeletExtraArgs:
    node-ip: "192.168.56.100"
  name: cp-1
---
apiVersion: kubeadm.k8s.io/v1beta2
kind: ClusterConfiguration
apiServer:
  certSANs:
  - lb.example
  - "10.0.0.10"
clusterName: linuxkit
controlPlaneEndpoint: lb.example:6443
kubernetesVersion: v1.15.3
networking:
  dnsDomain: cluster.local
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
"""

GOLDEN_INIT_V1BETA4 = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- description: "k8slk-ops run r1"
  groups:
  - system:bootstrappers:kubeadm:default-node-token
  token: abcdef.0123456789abcdef
  ttl: 30m0s
  usages:
  - signing
  - authentication
certificateKey: c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f
localAPIEndpoint:
  advertiseAddress: "192.168.56.100"
  bindPort: 6443
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  kubeletExtraArgs:
  - name: node-ip
    value: "192.168.56.100"
  name: cp-1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  certSANs:
  - lb.example
  - "10.0.0.10"
clusterName: linuxkit
controlPlaneEndpoint: lb.example:6443
kubernetesVersion: v1.31.3
networking:
  dnsDomain: cluster.local
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
"""

GOLDEN_JOIN_V1BETA3 = """\
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "192.168.56.100:6443"
    caCertHashes:
    - sha256:abababababababababababababababababababababababababababababababab
    token: abcdef.0123456789abcdef
    unsafeSkipCAVerification: false
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  kubeletExtraArgs:
    node-ip: "192.168.56.101"
  name: worker-1
"""

GOLDEN_JOIN_CP_V1BETA4 = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
controlPlane:
  certificateKey: c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f
  localAPIEndpoint:
    advertiseAddress: "192.168.56.102"
    bindPort: 6443
discovery:
  bootstrapToken:
    apiServerEndpoint: lb.example:6443
    caCertHashes:
    - sha256:abababababababababababababababababababababababababababababababab
    token: abcdef.0123456789abcdef
    unsafeSkipCAVerification: false
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  kubeletExtraArgs:
  - name: node-ip
    value: "192.168.56.102"
  name: cp-2
timeouts:
  discovery: 5m0s
"""


def test_golden_init_v1beta2() -> None:
    spec = init_spec("v1.15.3")
    assert render_init(spec, config_api_version("v1.15.3")) == GOLDEN_INIT_V1BETA2


def test_golden_init_v1beta4() -> None:
    assert render_init(init_spec(), "v1beta4") == GOLDEN_INIT_V1BETA4


def test_golden_join_worker_v1beta3() -> None:
    assert render_join(join_spec(), ConfigApi.V1BETA3) == GOLDEN_JOIN_V1BETA3


def test_golden_join_control_plane_v1beta4() -> None:
    spec = join_spec(
        node_name="cp-2",
        api_server_endpoint="lb.example:6443",
        node_ip="192.168.56.102",
        control_plane=True,
        certificate_key=KEY,
        discovery_timeout="5m0s",
    )
    assert render_join(spec, "kubeadm.k8s.io/v1beta4") == GOLDEN_JOIN_CP_V1BETA4


@pytest.mark.parametrize("api", list(ConfigApi))
def test_init_structure(api: ConfigApi) -> None:
    d = docs(render_init(init_spec(), api))
    assert list(d) == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]
    init, cluster, kubelet = (
        d["InitConfiguration"],
        d["ClusterConfiguration"],
        d["KubeletConfiguration"],
    )
    assert init["apiVersion"] == cluster["apiVersion"] == f"kubeadm.k8s.io/{api.value}"
    assert kubelet == {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
    }
    reg = init["nodeRegistration"]
    assert reg["name"] == "cp-1"
    assert reg["criSocket"] == "unix:///var/run/containerd/containerd.sock"
    args = reg["kubeletExtraArgs"]
    if api is ConfigApi.V1BETA4:
        assert args == [{"name": "node-ip", "value": "192.168.56.100"}]
    else:
        assert args == {"node-ip": "192.168.56.100"}
    assert init["localAPIEndpoint"] == {"advertiseAddress": "192.168.56.100", "bindPort": 6443}
    assert init["certificateKey"] == KEY
    assert init["bootstrapTokens"][0]["token"] == TOKEN
    assert cluster["kubernetesVersion"] == "v1.31.3"
    assert cluster["clusterName"] == "linuxkit"
    assert cluster["controlPlaneEndpoint"] == "lb.example:6443"
    assert cluster["networking"] == {
        "podSubnet": "10.244.0.0/16",
        "serviceSubnet": "10.96.0.0/12",
        "dnsDomain": "cluster.local",
    }
    assert cluster["apiServer"]["certSANs"] == ["lb.example", "10.0.0.10"]


def test_init_leaves_out_what_is_not_given() -> None:
    spec = InitSpec(node_name="cp-1", advertise_address="10.0.0.11", kubernetes_version="v1.30.2")
    d = docs(render_init(spec, "v1beta3"))
    init, cluster = d["InitConfiguration"], d["ClusterConfiguration"]
    assert "bootstrapTokens" not in init
    assert "certificateKey" not in init
    assert "controlPlaneEndpoint" not in cluster
    assert "apiServer" not in cluster
    assert cluster["networking"] == {"dnsDomain": "cluster.local"}


@pytest.mark.parametrize("api", list(ConfigApi))
def test_join_structure(api: ConfigApi) -> None:
    d = docs(render_join(join_spec(discovery_timeout="2m0s"), api))
    assert list(d) == ["JoinConfiguration"]
    join = d["JoinConfiguration"]
    assert join["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "192.168.56.100:6443",
        "token": TOKEN,
        "caCertHashes": [PIN],
        "unsafeSkipCAVerification": False,
    }
    assert "controlPlane" not in join
    if api is ConfigApi.V1BETA4:
        assert join["timeouts"] == {"discovery": "2m0s"}
        assert "timeout" not in join["discovery"]
    else:
        assert join["discovery"]["timeout"] == "2m0s"
        assert "timeouts" not in join


def test_join_refuses_without_pin() -> None:
    with pytest.raises(RenderError, match="without a CA pin"):
        join_spec(ca_cert_hashes=())
    with pytest.raises(RenderError, match="not a CA pin"):
        join_spec(ca_cert_hashes=("sha256:" + "AB" * 32,))
    with pytest.raises(RenderError, match="sequence of pins"):
        join_spec(ca_cert_hashes=PIN)


@pytest.mark.parametrize(
    "override",
    [
        {"discovery": {"bootstrapToken": {"unsafeSkipCAVerification": True}}},
        {"discovery": {"bootstrapToken": {"caCertHashes": []}}},
        {"discovery": {"bootstrapToken": {"caCertHashes": None}}},
        {"discovery": {"bootstrapToken": {"caCertHashes": ["sha256:short"]}}},
        {"discovery": {"file": {"kubeConfigPath": "/x"}}},
    ],
)
def test_overrides_cannot_unpin(override: dict[str, Any]) -> None:
    spec = join_spec(overrides={"JoinConfiguration": override})
    with pytest.raises(RenderError):
        render_join(spec, "v1beta3")


def test_control_plane_join_needs_a_key() -> None:
    with pytest.raises(RenderError, match="certificate key"):
        join_spec(control_plane=True)
    with pytest.raises(RenderError, match="only for control-plane"):
        join_spec(certificate_key=KEY)


@pytest.mark.parametrize(
    "kw",
    [
        {"token": "ABCDEF.0123456789abcdef"},
        {"token": "abcdef0123456789abcdef"},
        {"api_server_endpoint": "192.168.56.100"},
        {"api_server_endpoint": "192.168.56.100:99999"},
        {"node_ip": "not-an-ip"},
        {"node_name": "two words"},
    ],
)
def test_join_spec_validation(kw: dict[str, Any]) -> None:
    with pytest.raises(RenderError):
        join_spec(**kw)


def test_overrides_deep_merge() -> None:
    overrides = {
        "ClusterConfiguration": {
            "networking": {"podSubnet": "100.97.0.0/16"},
            "apiServer": {"certSANs": ["only.example"]},
            "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
            "controlPlaneEndpoint": None,
        },
        "KubeletConfiguration": {"maxPods": 250, "cgroupDriver": "systemd"},
        "InitConfiguration": {"nodeRegistration": {"taints": []}},
        "JoinConfiguration": {"nodeRegistration": {"taints": []}},
    }
    d = docs(render_init(init_spec(overrides=overrides), "v1beta3"))
    cluster = d["ClusterConfiguration"]
    assert cluster["networking"] == {
        "podSubnet": "100.97.0.0/16",  # replaced
        "serviceSubnet": "10.96.0.0/12",  # kept
        "dnsDomain": "cluster.local",
    }
    assert cluster["apiServer"]["certSANs"] == ["only.example"]  # lists replace
    assert cluster["etcd"] == {"local": {"dataDir": "/var/lib/etcd"}}
    assert "controlPlaneEndpoint" not in cluster  # None removes
    assert d["KubeletConfiguration"]["maxPods"] == 250
    assert d["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    assert d["InitConfiguration"]["nodeRegistration"]["taints"] == []
    assert d["InitConfiguration"]["nodeRegistration"]["name"] == "cp-1"
    assert "JoinConfiguration" not in d


def test_override_order_does_not_change_output() -> None:
    a = {"ClusterConfiguration": {"apiServer": {"extraArgs": {"a": "1", "b": "2"}}, "x": 1}}
    b = {"ClusterConfiguration": {"x": 1, "apiServer": {"extraArgs": {"b": "2", "a": "1"}}}}
    for api in ConfigApi:
        assert render_init(init_spec(overrides=a), api) == render_init(init_spec(overrides=b), api)


def test_v1beta4_list_args_from_map_overrides() -> None:
    overrides = {
        "ClusterConfiguration": {
            "apiServer": {"extraArgs": {"audit-log-maxage": 7, "anonymous-auth": False}},
            "etcd": {"local": {"extraArgs": {"quota-backend-bytes": "8589934592"}}},
        },
        "InitConfiguration": {"nodeRegistration": {"kubeletExtraArgs": {"v": "2"}}},
    }
    d = docs(render_init(init_spec(overrides=overrides), "v1beta4"))
    assert d["ClusterConfiguration"]["apiServer"]["extraArgs"] == [
        {"name": "anonymous-auth", "value": "false"},
        {"name": "audit-log-maxage", "value": "7"},
    ]
    assert d["ClusterConfiguration"]["etcd"]["local"]["extraArgs"] == [
        {"name": "quota-backend-bytes", "value": "8589934592"}
    ]
    assert d["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "192.168.56.100"},
        {"name": "v", "value": "2"},
    ]


def test_list_args_converted_to_maps_for_older_versions() -> None:
    overrides = {
        "JoinConfiguration": {
            "nodeRegistration": {
                "kubeletExtraArgs": [
                    {"name": "node-ip", "value": "10.1.1.1"},
                    {"name": "max-pods", "value": "200"},
                ]
            }
        }
    }
    d = docs(render_join(join_spec(overrides=overrides), "v1beta2"))
    assert d["JoinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == {
        "max-pods": "200",
        "node-ip": "10.1.1.1",  # the user's value replaces ours, by name
    }


def test_repeated_list_arg_is_refused_for_map_versions_only() -> None:
    repeated = [
        {"name": "feature-gates", "value": "A=true"},
        {"name": "feature-gates", "value": "B=true"},
    ]
    overrides = {"ClusterConfiguration": {"apiServer": {"extraArgs": repeated}}}
    d = docs(render_init(init_spec(overrides=overrides), "v1beta4"))
    assert d["ClusterConfiguration"]["apiServer"]["extraArgs"] == repeated
    with pytest.raises(RenderError, match="more than once"):
        render_init(init_spec(overrides=overrides), "v1beta3")


def test_malformed_args_are_refused() -> None:
    bad = {"ClusterConfiguration": {"apiServer": {"extraArgs": [{"nom": "x"}]}}}
    with pytest.raises(RenderError, match="name"):
        render_init(init_spec(overrides=bad), "v1beta4")
    bad2 = {"ClusterConfiguration": {"apiServer": {"extraArgs": "x=y"}}}
    with pytest.raises(RenderError):
        render_init(init_spec(overrides=bad2), "v1beta3")


def test_discovery_timeout_converted_both_ways() -> None:
    old = {"JoinConfiguration": {"discovery": {"timeout": "4m0s"}}}
    new = {"JoinConfiguration": {"timeouts": {"discovery": "4m0s"}}}
    d4 = docs(render_join(join_spec(overrides=old), "v1beta4"))["JoinConfiguration"]
    assert d4["timeouts"] == {"discovery": "4m0s"}
    assert "timeout" not in d4["discovery"]
    d3 = docs(render_join(join_spec(overrides=new), "v1beta3"))["JoinConfiguration"]
    assert d3["discovery"]["timeout"] == "4m0s"
    assert "timeouts" not in d3


def test_control_plane_timeout_moves_between_kinds() -> None:
    old = {"ClusterConfiguration": {"apiServer": {"timeoutForControlPlane": "8m0s"}}}
    d4 = docs(render_init(init_spec(overrides=old), "v1beta4"))
    assert d4["InitConfiguration"]["timeouts"] == {"controlPlaneComponentHealthCheck": "8m0s"}
    assert "timeoutForControlPlane" not in d4["ClusterConfiguration"]["apiServer"]
    new = {"InitConfiguration": {"timeouts": {"controlPlaneComponentHealthCheck": "8m0s"}}}
    d2 = docs(render_init(init_spec(overrides=new), "v1beta2"))
    assert d2["ClusterConfiguration"]["apiServer"]["timeoutForControlPlane"] == "8m0s"
    assert "timeouts" not in d2["InitConfiguration"]


def test_conflicting_forms_are_refused() -> None:
    both = {
        "JoinConfiguration": {"discovery": {"timeout": "4m0s"}, "timeouts": {"discovery": "1m0s"}}
    }
    with pytest.raises(RenderError, match="same setting"):
        render_join(join_spec(overrides=both), "v1beta4")


@pytest.mark.parametrize(
    ("kind", "override", "api"),
    [
        ("JoinConfiguration", {"timeouts": {"tlsBootstrap": "1m0s"}}, "v1beta3"),
        ("InitConfiguration", {"skipPhases": ["addon/kube-proxy"]}, "v1beta2"),
        ("ClusterConfiguration", {"encryptionAlgorithm": "ECDSA-P256"}, "v1beta3"),
        ("ClusterConfiguration", {"certificateValidityPeriod": "8760h0m0s"}, "v1beta2"),
        ("ClusterConfiguration", {"useHyperKubeImage": False}, "v1beta3"),
        ("ClusterConfiguration", {"dns": {"type": "CoreDNS"}}, "v1beta4"),
    ],
)
def test_fields_the_version_lacks_are_refused(
    kind: str, override: dict[str, Any], api: str
) -> None:
    with pytest.raises(RenderError, match="does not exist in"):
        if kind == "JoinConfiguration":
            render_join(join_spec(overrides={kind: override}), api)
        else:
            render_init(init_spec(overrides={kind: override}), api)


def test_fields_kept_where_the_version_has_them() -> None:
    overrides = {
        "ClusterConfiguration": {"encryptionAlgorithm": "ECDSA-P256"},
        "InitConfiguration": {"skipPhases": ["addon/kube-proxy"]},
    }
    d = docs(render_init(init_spec(overrides=overrides), "v1beta4"))
    assert d["ClusterConfiguration"]["encryptionAlgorithm"] == "ECDSA-P256"
    assert d["InitConfiguration"]["skipPhases"] == ["addon/kube-proxy"]


def test_override_kind_checks() -> None:
    with pytest.raises(RenderError, match="unknown kind"):
        render_init(init_spec(overrides={"ResetConfigurationz": {}}), "v1beta4")
    with pytest.raises(RenderError, match="another kind"):
        render_init(
            init_spec(overrides={"ClusterConfiguration": {"kind": "InitConfiguration"}}),
            "v1beta4",
        )
    # an apiVersion written for another version is converted, not copied
    d = docs(
        render_init(
            init_spec(overrides={"ClusterConfiguration": {"apiVersion": "kubeadm.k8s.io/v1beta2"}}),
            "v1beta4",
        )
    )
    assert d["ClusterConfiguration"]["apiVersion"] == "kubeadm.k8s.io/v1beta4"


def test_kube_proxy_configuration_only_when_overridden() -> None:
    assert "KubeProxyConfiguration" not in docs(render_init(init_spec(), "v1beta3"))
    d = docs(
        render_init(init_spec(overrides={"KubeProxyConfiguration": {"mode": "ipvs"}}), "v1beta3")
    )
    assert d["KubeProxyConfiguration"] == {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "ipvs",
    }


def test_node_labels_become_a_kubelet_argument() -> None:
    spec = join_spec(node_labels={"zone": "a", "disk": "ssd"})
    reg = docs(render_join(spec, "v1beta3"))["JoinConfiguration"]["nodeRegistration"]
    assert reg["kubeletExtraArgs"]["node-labels"] == "disk=ssd,zone=a"
    with pytest.raises(RenderError, match="label"):
        render_join(join_spec(node_labels={"a,b": "c"}), "v1beta3")


def test_strings_yaml_would_misread_are_quoted() -> None:
    overrides = {
        "KubeletConfiguration": {
            "a": "yes",
            "b": "on",
            "c": "0x1F",
            "d": "1:30",
            "e": "2024-01-01",
            "f": "null",
            "g": "#comment",
            "h": "- item",
            "i": "key: value",
            "j": "",
            "k": "6443",
            "l": "1e3",
            "m": 'multi\nline\ttab "quoted" \\',
            "n": "~",
            "o": "ünïcode",
        }
    }
    text = render_init(init_spec(overrides=overrides), "v1beta4")
    kubelet = docs(text)["KubeletConfiguration"]
    for key, value in overrides["KubeletConfiguration"].items():
        assert kubelet[key] == value, key
    assert 'a: "yes"' in text
    assert 'c: "0x1F"' in text


def test_inputs_are_not_modified() -> None:
    overrides = {
        "JoinConfiguration": {"discovery": {"timeout": "4m0s"}},
        "ClusterConfiguration": {"apiServer": {"extraArgs": {"v": "2"}}},
    }
    snapshot = repr(overrides)
    render_join(join_spec(overrides=overrides), "v1beta4")
    render_init(init_spec(overrides=overrides), "v1beta4")
    assert repr(overrides) == snapshot
