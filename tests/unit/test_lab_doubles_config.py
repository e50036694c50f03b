"""The lab's kubeadm double reads --config files as real kubeadm does, per API version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DOUBLES = Path(__file__).resolve().parents[1] / "lab" / "doubles"
if str(DOUBLES) not in sys.path:
    sys.path.insert(0, str(DOUBLES))

from k8sdouble import config as kc  # noqa: E402
from k8sdouble.errors import CommandError  # noqa: E402

from k8slk_ops.kubeadm import (  # noqa: E402
    BootstrapTokenSpec,
    InitSpec,
    JoinSpec,
    config_api_version,
    render_init,
    render_join,
)

PIN = "sha256:" + "ab" * 32
KEY = "c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f"
TOKEN = "abcdef.0123456789abcdef"
V2, V3, V4 = "v1.15.3", "v1.25.0", "v1.31.3"


def fails(text: str, version: str, command: str = "init") -> str:
    with pytest.raises(CommandError) as err:
        kc.load(text, version, command)
    assert err.value.code == 1 and err.value.hint
    return err.value.text


def init_doc(api: str, body: str = "") -> str:
    return f"apiVersion: kubeadm.k8s.io/{api}\nkind: InitConfiguration\n{body}"


def join_doc(api: str, body: str) -> str:
    return f"apiVersion: kubeadm.k8s.io/{api}\nkind: JoinConfiguration\n{body}"


def gvk(api: str, kind: str) -> str:
    return f'schema.GroupVersionKind{{Group:"kubeadm.k8s.io", Version:"{api}", Kind:"{kind}"}}'


DISCOVERY = f"""\
discovery:
  bootstrapToken:
    apiServerEndpoint: 10.0.0.10:6443
    token: {TOKEN}
    caCertHashes: ["{PIN}"]
"""


# --- what k8slk-ops renders loads, with the values it meant ---------------------------------


@pytest.mark.parametrize("version", [V2, V3, V4])
def test_rendered_init_loads(version: str) -> None:
    spec = InitSpec(
        node_name="cp-1",
        advertise_address="192.168.56.100",
        kubernetes_version=version,
        cluster_name="linuxkit",
        control_plane_endpoint="lb.example:6443",
        pod_subnet="10.244.0.0/16",
        service_subnet="10.96.0.0/12",
        cert_sans=("lb.example", "10.0.0.10"),
        bootstrap_tokens=(BootstrapTokenSpec(token=TOKEN, ttl="30m0s", description="run r1"),),
        certificate_key=KEY,
        node_labels={"zone": "a"},
        overrides={"ClusterConfiguration": {"apiServer": {"extraArgs": {"v": "2"}}}},
    )
    cfg = kc.load(render_init(spec, config_api_version(version)), version, "init")
    assert cfg.api_version == f"kubeadm.k8s.io/{config_api_version(version).value}"
    assert cfg.warnings == ()
    assert (cfg.node_name, cfg.advertise_address, cfg.bind_port) == ("cp-1", "192.168.56.100", 6443)
    assert cfg.control_plane_endpoint == "lb.example:6443"
    assert cfg.cert_sans == ("lb.example", "10.0.0.10")
    assert (cfg.cluster_name, cfg.kubernetes_version) == ("linuxkit", version)
    assert (cfg.service_subnet, cfg.pod_subnet, cfg.dns_domain) == (
        "10.96.0.0/12",
        "10.244.0.0/16",
        "cluster.local",
    )
    assert cfg.bootstrap_tokens == (
        kc.BootstrapToken(
            TOKEN,
            1800.0,
            "run r1",
            ("signing", "authentication"),
            ("system:bootstrappers:kubeadm:default-node-token",),
        ),
    )
    assert cfg.certificate_key == KEY
    assert set(cfg.documents) == {
        "InitConfiguration",
        "ClusterConfiguration",
        "KubeletConfiguration",
    }


@pytest.mark.parametrize("version", [V2, V3, V4])
@pytest.mark.parametrize("control_plane", [False, True])
def test_rendered_join_loads(version: str, control_plane: bool) -> None:
    spec = JoinSpec(
        node_name="node-2",
        api_server_endpoint="192.168.56.100:6443",
        token=TOKEN,
        ca_cert_hashes=(PIN,),
        node_ip="192.168.56.102",
        control_plane=control_plane,
        certificate_key=KEY if control_plane else None,
        discovery_timeout="5m0s",
    )
    cfg = kc.load(render_join(spec, config_api_version(version)), version, "join")
    assert cfg.node_name == "node-2"
    assert cfg.discovery_endpoint == "192.168.56.100:6443"
    assert cfg.discovery_token == TOKEN
    assert cfg.ca_cert_hashes == (PIN,)
    assert cfg.unsafe_skip_ca_verification is False
    assert cfg.join_control_plane is control_plane
    assert cfg.join_certificate_key == (KEY if control_plane else None)
    assert cfg.advertise_address == ("192.168.56.102" if control_plane else None)


# --- versions and durations ---------------------------------------------------------------------


def test_version_helpers() -> None:
    assert kc.parse_version("v1.31.3") == (1, 31, 3)
    assert kc.parse_version("1.22") == (1, 22, 0)
    assert kc.parse_version("v1.32.0-rc.1") == (1, 32, 0)
    with pytest.raises(ValueError):
        kc.parse_version("latest")
    assert kc.known_api_versions("v1.15.3") == ("v1beta2",)
    assert kc.known_api_versions("v1.25.0") == ("v1beta2", "v1beta3")
    assert kc.known_api_versions("v1.28.0") == ("v1beta3",)
    assert kc.known_api_versions("v1.31.3") == ("v1beta3", "v1beta4")
    assert kc.known_api_versions("v1.36.0") == ("v1beta4",)
    assert kc.default_api_version("v1.25.0") == "kubeadm.k8s.io/v1beta3"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h0m0s", 86400.0),
        ("1h", 3600.0),
        ("90m", 5400.0),
        ("0s", 0.0),
        ("0", 0.0),
        ("1.5s", 1.5),
        ("1h30m", 5400.0),
        ("-2m", -120.0),
        ("+250ms", 0.25),
        ("10us", 1e-5),
        ("3\u00b5s", 3e-6),
        (".5h", 1800.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert kc.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("abc", 'time: invalid duration "abc"'),
        ("90", 'time: missing unit in duration "90"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        (".h", 'time: invalid duration ".h"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
def test_parse_duration_refuses_with_go_text(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        kc.parse_duration(text)
    assert str(err.value) == message


# --- API versions -----------------------------------------------------------------------------


def test_removed_version_before_1_31_names_no_kind() -> None:
    assert fails(init_doc("v1beta2"), "v1.27.0") == (
        'your configuration file uses an old API spec: "kubeadm.k8s.io/v1beta2". Please use '
        "kubeadm v1.22 instead and run 'kubeadm config migrate --old-config old.yaml "
        "--new-config new.yaml', which will write the new, similar spec using a newer API version."
    )


def test_removed_version_from_1_31_names_the_kind() -> None:
    text = fails(join_doc("v1beta2", DISCOVERY), V4, "join")
    assert text.startswith(
        'your configuration file uses an old API spec: "kubeadm.k8s.io/v1beta2" '
        '(kind: "JoinConfiguration"). Please use kubeadm v1.22 instead'
    )


@pytest.mark.parametrize(
    ("api", "version", "use"),
    [("v1beta1", V3, "v1.15"), ("v1alpha3", V2, "v1.14"), ("v1beta3", "v1.36.0", "v1.35")],
)
def test_older_versions_refused(api: str, version: str, use: str) -> None:
    text = fails(init_doc(api), version)
    assert f'old API spec: "kubeadm.k8s.io/{api}"' in text
    assert f"Please use kubeadm {use} instead" in text


@pytest.mark.parametrize(("api", "version"), [("v1beta9", V4), ("v1beta3", V2), ("v1beta4", V3)])
def test_unknown_version_is_not_registered(api: str, version: str) -> None:
    assert fails(init_doc(api), version) == (
        f'no kind "InitConfiguration" is registered for version "kubeadm.k8s.io/{api}" in scheme '
        '"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"'
    )


def test_v1beta4_is_experimental_in_1_28_to_1_30() -> None:
    assert fails(init_doc("v1beta4"), "v1.29.4") == (
        'experimental API spec: "kubeadm.k8s.io/v1beta4" is not allowed. You can use the '
        "--allow-experimental-api flag if the command supports it."
    )


@pytest.mark.parametrize(("api", "version"), [("v1beta3", V4), ("v1beta2", V3)])
def test_deprecated_version_warns(api: str, version: str) -> None:
    cfg = kc.load(init_doc(api), version, "init")
    (warning,) = cfg.warnings
    assert warning.startswith("W") and "] your configuration file uses a deprecated API" in warning
    assert f'"kubeadm.k8s.io/{api}"' in warning
    assert cfg.api_version == f"kubeadm.k8s.io/{api}"


def test_every_document_needs_api_version_and_kind() -> None:
    assert fails("apiVersion: kubeadm.k8s.io/v1beta4\n", V4) == (
        "invalid configuration for GroupVersionKind {Group:kubeadm.k8s.io Version:v1beta4 "
        "Kind:}: kind and apiVersion is mandatory information that must be specified"
    )
    assert "kind and apiVersion is mandatory" in fails("kind: InitConfiguration\n", V4)
    assert "kind and apiVersion is mandatory" in fails("apiVersion: v1\nkind: ConfigMap\n", V4)


def test_a_kind_twice_is_refused() -> None:
    text = init_doc("v1beta4") + "---\n" + init_doc("v1beta4")
    assert (
        fails(text, V4)
        == 'invalid configuration: kind "InitConfiguration" is specified twice in YAML file'
    )


def test_yaml_syntax_error() -> None:
    text = fails(init_doc("v1beta4", "nodeRegistration: {name: [\n"), V4)
    assert text.startswith("could not interpret GroupVersionKind; unmarshal error: ")


# --- strict decoding ----------------------------------------------------------------------------


def test_unknown_field_fails_with_its_path() -> None:
    text = init_doc("v1beta4", "nodeRegistration:\n  name: cp-1\n  foo: bar\n")
    assert fails(text, V4) == (
        f"error unmarshaling configuration {gvk('v1beta4', 'InitConfiguration')}: "
        'strict decoding error: unknown field "nodeRegistration.foo"'
    )


def test_unknown_fields_are_listed_in_key_order_with_list_indices() -> None:
    body = f"zeta: 1\nbootstrapTokens:\n- token: {TOKEN}\n  tll: 1h\nalpha: 2\n"
    assert fails(init_doc("v1beta3", body), V3).endswith(
        'strict decoding error: unknown field "alpha", unknown field "bootstrapTokens[0].tll", '
        'unknown field "zeta"'
    )


@pytest.mark.parametrize(
    ("version", "api", "kind", "body", "field"),
    [
        (V3, "v1beta3", "InitConfiguration", "timeouts: {}\n", "timeouts"),
        (V3, "v1beta3", "InitConfiguration", "dryRun: true\n", "dryRun"),
        (V2, "v1beta2", "InitConfiguration", "skipPhases: [addon/kube-proxy]\n", "skipPhases"),
        (V2, "v1beta2", "InitConfiguration", "patches: {directory: /p}\n", "patches"),
        (
            V2,
            "v1beta2",
            "InitConfiguration",
            "nodeRegistration: {imagePullPolicy: Never}\n",
            "nodeRegistration.imagePullPolicy",
        ),
        (
            V3,
            "v1beta3",
            "InitConfiguration",
            "nodeRegistration: {imagePullSerial: true}\n",
            "nodeRegistration.imagePullSerial",
        ),
        (V4, "v1beta4", "ClusterConfiguration", "useHyperKubeImage: false\n", "useHyperKubeImage"),
        (V3, "v1beta3", "ClusterConfiguration", "dns: {type: CoreDNS}\n", "dns.type"),
        (
            V4,
            "v1beta4",
            "ClusterConfiguration",
            "apiServer: {timeoutForControlPlane: 4m0s}\n",
            "apiServer.timeoutForControlPlane",
        ),
        (
            V3,
            "v1beta3",
            "ClusterConfiguration",
            "encryptionAlgorithm: RSA-2048\n",
            "encryptionAlgorithm",
        ),
        (
            V3,
            "v1beta3",
            "ClusterConfiguration",
            "etcd: {local: {extraEnvs: []}}\n",
            "etcd.local.extraEnvs",
        ),
        (V4, "v1beta4", "JoinConfiguration", DISCOVERY + "  timeout: 5m0s\n", "discovery.timeout"),
    ],
)
def test_fields_the_version_lacks_are_unknown(
    version: str, api: str, kind: str, body: str, field: str
) -> None:
    text = f"apiVersion: kubeadm.k8s.io/{api}\nkind: {kind}\n{body}"
    command = "join" if kind == "JoinConfiguration" else "init"
    assert fails(text, version, command).endswith(f'strict decoding error: unknown field "{field}"')


def test_every_field_of_each_version_is_known() -> None:
    v4_cluster = """\
etcd:
  local: {imageRepository: r, imageTag: t, dataDir: /var/lib/etcd, extraArgs: [{name: a, value: b}],
          extraEnvs: [{name: A, value: B}], serverCertSANs: [x], peerCertSANs: [y]}
networking: {serviceSubnet: 10.96.0.0/12, podSubnet: 10.244.0.0/16, dnsDomain: cluster.local}
kubernetesVersion: v1.31.3
controlPlaneEndpoint: lb.example:6443
apiServer: {certSANs: [lb.example], extraArgs: [{name: v, value: "2"}],
            extraVolumes: [{name: a, hostPath: /a, mountPath: /a, readOnly: true, pathType: File}],
            extraEnvs: [{name: A, value: B}]}
controllerManager: {extraArgs: [{name: v, value: "2"}]}
scheduler: {extraArgs: []}
dns: {imageRepository: r, imageTag: t, disabled: false}
proxy: {disabled: false}
certificatesDir: /etc/kubernetes/pki
imageRepository: registry.k8s.io
featureGates: {EtcdLearnerMode: true}
clusterName: linuxkit
encryptionAlgorithm: ECDSA-P256
certificateValidityPeriod: 8760h0m0s
caCertificateValidityPeriod: 87600h0m0s
"""
    v4_init = f"""\
bootstrapTokens:
- {{token: {TOKEN}, description: d, ttl: 1h, usages: [signing, authentication],
   groups: ["system:bootstrappers:kubeadm:default-node-token"]}}
dryRun: false
nodeRegistration: {{name: cp-1, criSocket: "unix:///var/run/containerd/containerd.sock",
  taints: [{{key: k, value: v, effect: NoSchedule}}], kubeletExtraArgs: [{{name: a, value: b}}],
  ignorePreflightErrors: [NumCPU], imagePullPolicy: IfNotPresent, imagePullSerial: true}}
localAPIEndpoint: {{advertiseAddress: 10.0.0.11, bindPort: 6443}}
certificateKey: {KEY}
skipPhases: [addon/kube-proxy]
patches: {{directory: /etc/kubernetes/patches}}
timeouts: {{controlPlaneComponentHealthCheck: 4m0s, kubeletHealthCheck: 4m0s,
  kubernetesAPICall: 1m0s, etcdAPICall: 2m0s, tlsBootstrap: 5m0s, discovery: 5m0s,
  upgradeManifests: 5m0s}}
"""
    text = (
        init_doc("v1beta4", v4_init)
        + "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
        + v4_cluster
    )
    cfg = kc.load(text, V4, "init")
    assert cfg.skip_phases == ("addon/kube-proxy",)
    assert cfg.advertise_address == "10.0.0.11"
    v2_cluster = """\
apiServer: {extraArgs: {v: "2"}, timeoutForControlPlane: 4m0s}
dns: {type: CoreDNS}
useHyperKubeImage: false
etcd: {external: {endpoints: ["https://e:2379"], caFile: /ca, certFile: /c, keyFile: /k}}
"""
    text = (
        init_doc("v1beta2", "nodeRegistration: {kubeletExtraArgs: {node-ip: 10.0.0.11}}\n")
        + "---\napiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n"
        + v2_cluster
    )
    assert kc.load(text, V2, "init").api_version == "kubeadm.k8s.io/v1beta2"
    v3_join = DISCOVERY + (
        f"  tlsBootstrapToken: {TOKEN}\n  timeout: 5m0s\ncaCertPath: /etc/kubernetes/pki/ca.crt\n"
        "nodeRegistration: {name: w-1, imagePullPolicy: Never}\nskipPhases: [preflight]\n"
        "patches: {directory: /p}\n"
    )
    assert kc.load(join_doc("v1beta3", v3_join), V3, "join").skip_phases == ("preflight",)


def test_duplicate_key_fails_with_its_line() -> None:
    text = init_doc("v1beta4", "nodeRegistration:\n  name: a\n  name: b\n")
    assert fails(text, V4) == (
        f"error unmarshaling configuration {gvk('v1beta4', 'InitConfiguration')}: "
        'strict decoding error: yaml: unmarshal errors:\n  line 5: key "name" already set in map'
    )


def test_not_strict_warns_as_kubeadm_init_does() -> None:
    text = init_doc("v1beta4", "nodeRegistration:\n  name: a\n  name: b\n  foo: 1\n")
    cfg = kc.load(text, V4, "init", strict=False)
    (warning,) = cfg.warnings
    assert warning.endswith(
        'strict decoding error: yaml: unmarshal errors:\n  line 5: key "name" already set in map, '
        'unknown field "nodeRegistration.foo"'
    )
    assert cfg.node_name == "b"  # the lenient decode keeps the last value


@pytest.mark.parametrize(
    ("version", "api", "body", "message"),
    [
        (
            V4,
            "v1beta4",
            "nodeRegistration: {ignorePreflightErrors: NumCPU}\n",
            "json: cannot unmarshal string into Go struct field NodeRegistrationOptions."
            "nodeRegistration.ignorePreflightErrors of type []string",
        ),
        (
            V4,
            "v1beta4",
            "nodeRegistration: {kubeletExtraArgs: {node-ip: 10.0.0.1}}\n",
            "json: cannot unmarshal object into Go struct field NodeRegistrationOptions."
            "nodeRegistration.kubeletExtraArgs of type []v1beta4.Arg",
        ),
        (
            V3,
            "v1beta3",
            "nodeRegistration: {kubeletExtraArgs: [{name: node-ip, value: 10.0.0.1}]}\n",
            "json: cannot unmarshal array into Go struct field NodeRegistrationOptions."
            "nodeRegistration.kubeletExtraArgs of type map[string]string",
        ),
        (
            V4,
            "v1beta4",
            'localAPIEndpoint: {bindPort: "6443"}\n',
            "json: cannot unmarshal string into Go struct field APIEndpoint."
            "localAPIEndpoint.bindPort of type int32",
        ),
        (
            V4,
            "v1beta4",
            "localAPIEndpoint: {bindPort: 1.5}\n",
            "json: cannot unmarshal number 1.5 into Go struct field APIEndpoint."
            "localAPIEndpoint.bindPort of type int32",
        ),
        (
            V4,
            "v1beta4",
            "nodeRegistration: {name: 1234}\n",
            "json: cannot unmarshal number into Go struct field NodeRegistrationOptions."
            "nodeRegistration.name of type string",
        ),
        (
            V4,
            "v1beta4",
            "bootstrapTokens: {token: x}\n",
            "json: cannot unmarshal object into Go struct field InitConfiguration."
            "bootstrapTokens of type []v1.BootstrapToken",
        ),
    ],
)
def test_wrong_types_fail_as_go_json_does(version: str, api: str, body: str, message: str) -> None:
    text = fails(init_doc(api, body), version)
    assert text == f"error unmarshaling configuration {gvk(api, 'InitConfiguration')}: {message}"


def test_cluster_extra_args_form_is_checked_per_version() -> None:
    doc = "apiVersion: kubeadm.k8s.io/{api}\nkind: ClusterConfiguration\n{body}"
    text = fails(doc.format(api="v1beta4", body="controllerManager: {extraArgs: {v: '2'}}\n"), V4)
    assert text.endswith(
        "json: cannot unmarshal object into Go struct field ControlPlaneComponent."
        "controllerManager.extraArgs of type []v1beta4.Arg"
    )
    text = fails(doc.format(api="v1beta3", body="apiServer: {extraArgs: [{name: v}]}\n"), V3)
    assert text.endswith(
        "json: cannot unmarshal array into Go struct field APIServer.apiServer.extraArgs of type "
        "map[string]string"
    )


def test_component_configs_are_lenient_at_the_top() -> None:
    text = (
        init_doc("v1beta4")
        + "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        + "cgroupDriver: cgroupfs\nanythingAtAll: {x: 1}\n"
        + "---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
        + "mode: ipvs\n"
    )
    cfg = kc.load(text, V4, "init")
    assert cfg.documents["KubeletConfiguration"]["anythingAtAll"] == {"x": 1}
    assert cfg.warnings == ()
    bad = "apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n"
    assert fails(bad, V4).startswith('no kind "KubeletConfiguration" is registered for version')


def test_other_kinds_in_an_init_file_are_ignored_with_a_warning() -> None:
    text = (
        init_doc("v1beta4", "nodeRegistration: {name: cp-1}\n")
        + "---\napiVersion: example.com/v1\nkind: Widget\nsize: 3\n"
        + "---\n"
        + join_doc("v1beta4", DISCOVERY)
    )
    cfg = kc.load(text, V4, "init")
    assert len(cfg.warnings) == 2
    assert cfg.warnings[0].endswith(
        "[config] WARNING: Ignored YAML document with GroupVersionKind example.com/v1, Kind=Widget"
    )
    assert cfg.warnings[1].endswith(
        "GroupVersionKind kubeadm.k8s.io/v1beta4, Kind=JoinConfiguration"
    )
    assert cfg.node_name == "cp-1"


# --- defaults and validation: init --------------------------------------------------------------


def test_init_defaults() -> None:
    cfg = kc.load("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n", V4, "init")
    assert cfg.api_version == "kubeadm.k8s.io/v1beta4"
    assert (cfg.node_name, cfg.advertise_address, cfg.bind_port) == (None, None, 6443)
    assert (cfg.cluster_name, cfg.service_subnet, cfg.dns_domain) == (
        "kubernetes",
        "10.96.0.0/12",
        "cluster.local",
    )
    assert (cfg.pod_subnet, cfg.kubernetes_version, cfg.control_plane_endpoint) == (None,) * 3
    assert cfg.bootstrap_tokens == () and cfg.cert_sans == () and cfg.skip_phases == ()
    assert cfg.certificate_key is None and cfg.join_control_plane is False


def test_init_only_component_configs_takes_the_newest_version() -> None:
    text = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
    assert kc.load(text, V3, "init").api_version == "kubeadm.k8s.io/v1beta3"


def test_bootstrap_token_defaults_and_ttls() -> None:
    body = (
        f"bootstrapTokens:\n- token: {TOKEN}\n- token: {TOKEN.replace('a', 'b')}\n  ttl: '0'\n"
        f"- token: {TOKEN.replace('a', 'c')}\n  ttl: 90m\n  usages: [signing]\n  groups: []\n"
        "- description: generated\n"
    )
    tokens = kc.load(init_doc("v1beta4", body), V4, "init").bootstrap_tokens
    assert [t.ttl_seconds for t in tokens] == [86400.0, None, 5400.0, 86400.0]
    assert tokens[0].usages == ("signing", "authentication")
    assert tokens[2].usages == ("signing",) and tokens[2].groups == ()
    assert tokens[3].description == "generated"
    assert kc._TOKEN_RE.fullmatch(tokens[3].token)


def test_bootstrap_token_expires() -> None:
    body = f"bootstrapTokens:\n- token: {TOKEN}\n  expires: '2000-01-01T00:00:00Z'\n"
    (token,) = kc.load(init_doc("v1beta4", body), V4, "init").bootstrap_tokens
    assert token.ttl_seconds == 0.0


def test_bad_bootstrap_token_in_init() -> None:
    text = fails(init_doc("v1beta4", "bootstrapTokens:\n- token: ABC.def\n"), V4)
    assert text == (
        f"error unmarshaling configuration {gvk('v1beta4', 'InitConfiguration')}: the bootstrap "
        'token "ABC.def" was not of the form "\\\\A([a-z0-9]{6})\\\\.([a-z0-9]{16})\\\\z"'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("bootstrapTokens:\n- ttl: 1x\n", 'time: unknown unit "x" in duration "1x"'),
        ("timeouts: {discovery: '90'}\n", 'time: missing unit in duration "90"'),
        (
            "timeouts: {discovery: 90}\n",
            "json: cannot unmarshal number into Go value of type string",
        ),
    ],
)
def test_durations_must_parse(body: str, message: str) -> None:
    assert fails(init_doc("v1beta4", body), V4).endswith(f"}}: {message}")


def test_bad_token_usages_and_groups() -> None:
    body = f"bootstrapTokens:\n- token: {TOKEN}\n  usages: [signing, x]\n  groups: [admins]\n"
    text = fails(init_doc("v1beta4", body), V4)
    assert text.startswith("[bootstrapTokens[0].usages: Invalid value: []string{")
    assert (
        "invalid bootstrap token usage string: x, valid usage options: signing,authentication"
        in text
    )
    assert 'bootstrap group "admins" is invalid (must match ' in text


def test_advertise_address_must_be_an_ip() -> None:
    text = init_doc("v1beta4", "localAPIEndpoint: {advertiseAddress: cp-1.example}\n")
    assert fails(text, V4) == (
        'couldn\'t use "cp-1.example" as "apiserver-advertise-address", must be ipv4 or ipv6 address'
    )


def test_init_validation_errors_are_aggregated() -> None:
    body = (
        "nodeRegistration: {name: CP_1}\nlocalAPIEndpoint: {bindPort: 70000}\ncertificateKey: abc\n"
    )
    text = fails(init_doc("v1beta4", body), V4)
    assert text.startswith('[nodeRegistration.name: Invalid value: "CP_1": a lowercase RFC 1123')
    assert "localAPIEndpoint.bindPort: Invalid value: 70000: port number is not valid" in text
    assert (
        'certificateKey: Invalid value: "abc": certificate key decoding error: encoding/hex: '
        "odd length hex string]"
    ) in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "networking: {serviceSubnet: 10.96.0.0/33}\n",
            'networking.serviceSubnet: Invalid value: "10.96.0.0/33": couldn\'t parse subnet',
        ),
        (
            "controlPlaneEndpoint: 'lb:99999'\n",
            'controlPlaneEndpoint: Invalid value: "lb:99999": endpoint is not valid',
        ),
        ("apiServer: {certSANs: ['bad name']}\n", 'apiServer.certSANs: Invalid value: "bad name"'),
    ],
)
def test_cluster_validation(body: str, message: str) -> None:
    text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n" + body
    assert fails(text, V3).startswith(message)


def test_cluster_accepts_ip_wildcard_and_dual_stack() -> None:
    body = (
        "apiServer: {certSANs: ['*.example.com', '10.0.0.1', 'fd00::1']}\n"
        "networking: {podSubnet: '10.244.0.0/16,fd00:10::/56'}\ncontrolPlaneEndpoint: lb\n"
    )
    text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n" + body
    cfg = kc.load(text, V3, "init")
    assert cfg.control_plane_endpoint == "lb"
    assert cfg.cert_sans == ("*.example.com", "10.0.0.1", "fd00::1")


# --- join ---------------------------------------------------------------------------------------


def test_join_needs_a_join_configuration() -> None:
    assert (
        fails(init_doc("v1beta4"), V4, "join")
        == "no JoinConfiguration found in the supplied config"
    )


def test_join_ignores_other_kinds() -> None:
    text = init_doc("v1beta4", "whatever: 1\n") + "---\n" + join_doc("v1beta4", DISCOVERY)
    cfg = kc.load(text, V4, "join")
    assert cfg.discovery_token == TOKEN and cfg.warnings == ()
    assert set(cfg.documents) == {"InitConfiguration", "JoinConfiguration"}


def test_join_without_discovery() -> None:
    assert fails(join_doc("v1beta4", "nodeRegistration: {name: w}\n"), V4, "join") == (
        'discovery: Invalid value: "": bootstrapToken or file must be set'
    )


@pytest.mark.parametrize(("version", "api"), [(V3, "v1beta3"), (V2, "v1beta2")])
def test_join_without_ca_pin(version: str, api: str) -> None:
    body = (
        f"discovery:\n  bootstrapToken: {{apiServerEndpoint: '10.0.0.10:6443', token: {TOKEN}}}\n"
    )
    assert fails(join_doc(api, body), version, "join") == (
        'discovery.bootstrapToken: Invalid value: "": using token-based discovery without '
        "caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config "
        "file or pass --discovery-token-unsafe-skip-ca-verification flag to continue"
    )


def test_join_without_ca_pin_from_1_31_names_the_field() -> None:
    body = (
        f"discovery:\n  bootstrapToken: {{apiServerEndpoint: '10.0.0.10:6443', token: {TOKEN}}}\n"
    )
    text = fails(join_doc("v1beta4", body), V4, "join")
    assert text.startswith('discovery.bootstrapToken.caCertHashes: Invalid value: "": using token')


def test_join_unsafe_skip_is_read() -> None:
    body = (
        "discovery:\n  bootstrapToken: {apiServerEndpoint: '10.0.0.10:6443', "
        f"token: {TOKEN}, unsafeSkipCAVerification: true}}\n"
    )
    cfg = kc.load(join_doc("v1beta4", body), V4, "join")
    assert cfg.unsafe_skip_ca_verification is True and cfg.ca_cert_hashes == ()


def test_join_bad_token_and_endpoint() -> None:
    body = DISCOVERY.replace(TOKEN, "nope").replace("10.0.0.10:6443", "10.0.0.10")
    assert fails(join_doc("v1beta4", body), V4, "join") == (
        '[discovery.bootstrapToken.token: Invalid value: "nope": the bootstrap token is invalid, '
        'discovery.bootstrapToken.apiServerEndpoint: Invalid value: "10.0.0.10": address '
        "10.0.0.10: missing port in address, "
        'discovery.tlsBootstrapToken: Invalid value: "nope": the bootstrap token is invalid]'
    )


def test_join_control_plane() -> None:
    body = DISCOVERY + (
        f"controlPlane:\n  localAPIEndpoint: {{advertiseAddress: 10.0.0.12, bindPort: 7443}}\n"
        f"  certificateKey: {KEY}\n"
    )
    cfg = kc.load(join_doc("v1beta3", body), V3, "join")
    assert cfg.join_control_plane and cfg.join_certificate_key == KEY
    assert (cfg.advertise_address, cfg.bind_port) == ("10.0.0.12", 7443)
    bad = DISCOVERY + "controlPlane:\n  localAPIEndpoint: {advertiseAddress: cp-2}\n"
    assert 'couldn\'t use "cp-2"' in fails(join_doc("v1beta3", bad), V3, "join")
    empty = kc.load(join_doc("v1beta3", DISCOVERY + "controlPlane: {}\n"), V3, "join")
    assert empty.join_control_plane and empty.advertise_address is None


def test_join_file_discovery() -> None:
    body = f"discovery:\n  file: {{kubeConfigPath: /etc/kubernetes/discovery.conf}}\n  tlsBootstrapToken: {TOKEN}\n"
    cfg = kc.load(join_doc("v1beta4", body), V4, "join")
    assert cfg.discovery_endpoint is None and cfg.discovery_token == TOKEN


# --- reset, upgrade, files ----------------------------------------------------------------------


def test_reset_and_upgrade_configurations() -> None:
    reset = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ResetConfiguration\nforce: true\n"
    cfg = kc.load(reset, V4, "reset")
    assert cfg.documents["ResetConfiguration"]["force"] is True
    assert (
        fails(init_doc("v1beta4"), V4, "reset")
        == "no ResetConfiguration found in the supplied config"
    )
    assert 'strict decoding error: unknown field "forse"' in fails(
        reset.replace("force", "forse"), V4, "reset"
    )
    upgrade = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: UpgradeConfiguration\napply: {forceUpgrade: true}\n"
    assert kc.load(upgrade, V4, "upgrade").api_version == "kubeadm.k8s.io/v1beta4"
    assert 'ResetConfiguration" is registered' in fails(
        reset.replace("v1beta4", "v1beta3"), V3, "reset"
    )
    # before 1.31, upgrade read an Init/ClusterConfiguration
    assert kc.load(init_doc("v1beta3"), V3, "upgrade").api_version == "kubeadm.k8s.io/v1beta3"


def test_documents_split_on_separator_lines() -> None:
    text = (
        "---\n# leading\n"
        + init_doc("v1beta4", "nodeRegistration: {name: a}\n")
        + "--- # c\n\n---\n"
    )
    text += "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: c\n"
    cfg = kc.load(text, V4, "init")
    assert (cfg.node_name, cfg.cluster_name) == ("a", "c")
    assert fails(init_doc("v1beta4") + "--- x\n", V4) == "invalid Yaml document separator: x"


def test_load_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_ROOT", str(tmp_path))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "kubeadm.yaml").write_text(join_doc("v1beta4", DISCOVERY))
    assert kc.load_file("/run/kubeadm.yaml", V4, "join").discovery_token == TOKEN
    with pytest.raises(CommandError) as err:
        kc.load_file("/run/missing.yaml", V4, "join")
    assert err.value.text == (
        'unable to read config from "/run/missing.yaml" : open /run/missing.yaml: '
        "no such file or directory"
    )


def test_unknown_command_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        kc.load(init_doc("v1beta4"), V4, "apply")


def test_imports_under_debian_python() -> None:
    python = Path("/usr/bin/python3")
    if not python.exists():
        pytest.skip("no Debian python3 here")
    code = (
        "import sys; from k8sdouble import config as c; "
        "cfg = c.load(sys.stdin.read(), 'v1.31.3', 'join'); print(cfg.discovery_token)"
    )
    out = subprocess.run(
        [str(python), "-I", "-c", f"import sys; sys.path.insert(0, {str(DOUBLES)!r}); {code}"],
        input=join_doc("v1beta4", DISCOVERY),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == TOKEN
