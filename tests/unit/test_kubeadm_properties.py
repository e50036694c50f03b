"""Property tests: rendering round-trips through a YAML loader, parsers never crash, log lines
round-trip, and secrets embedded anywhere are found and redacted."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from k8slk_ops.kubeadm import (
    ConfigApi,
    InitSpec,
    JoinSpec,
    KubeadmError,
    KubeadmLogState,
    LogLine,
    ca_cert_hash,
    classify_kubeadm_error,
    find_secrets,
    is_upgrade_apply_success,
    is_upgrade_node_success,
    parse_cert_expiration,
    parse_certificate_key,
    parse_join_commands,
    parse_kubeadm_version,
    parse_log_line,
    parse_nodes_json,
    parse_preflight_errors,
    parse_print_join_command,
    parse_token,
    parse_token_list,
    redact,
    render_init,
    render_join,
)
from k8slk_ops.kubeadm.yamlout import dump_document

settings.register_profile(
    "kubeadm",
    max_examples=int(os.environ.get("KUBEADM_EXAMPLES", "60")),
    deadline=None,
    database=None,
)
settings.load_profile("kubeadm")

PIN = "sha256:" + "ab" * 32
LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=True)
    | st.text(max_size=20)
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=12), values, max_size=6))
def test_any_document_round_trips_through_yaml(doc: dict[str, Any]) -> None:
    assert yaml.safe_load(dump_document(doc)) == doc


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12).filter(
            lambda k: k not in ("apiVersion", "kind", "cgroupDriver")
        ),
        values.filter(lambda v: v is not None),
        max_size=6,
    ),
    st.sampled_from(list(ConfigApi)),
)
def test_render_init_round_trips(kubelet: dict[str, Any], api: ConfigApi) -> None:
    spec = InitSpec(
        node_name="cp-1",
        advertise_address="10.0.0.11",
        kubernetes_version="v1.31.3",
        overrides={"KubeletConfiguration": kubelet},
    )
    loaded = list(yaml.safe_load_all(render_init(spec, api)))
    assert [d["kind"] for d in loaded] == [
        "InitConfiguration",
        "ClusterConfiguration",
        "KubeletConfiguration",
    ]
    assert loaded[2] == {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        **kubelet,
    }


tokens = st.builds(
    lambda a, b: f"{a}.{b}",
    st.text(LOWER_ALNUM, min_size=6, max_size=6),
    st.text(LOWER_ALNUM, min_size=16, max_size=16),
)
hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=30)
label_text = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_./", min_size=1, max_size=10)


@given(
    names,
    tokens,
    st.lists(hex64.map(lambda h: "sha256:" + h), min_size=1, max_size=3),
    st.booleans(),
    hex64,
    st.dictionaries(label_text, label_text, max_size=3),
    st.sampled_from(list(ConfigApi)),
)
def test_render_join_round_trips(
    name: str,
    token: str,
    pins: list[str],
    control_plane: bool,
    key: str,
    labels: dict[str, str],
    api: ConfigApi,
) -> None:
    spec = JoinSpec(
        node_name=name,
        api_server_endpoint="10.0.0.10:6443",
        token=token,
        ca_cert_hashes=tuple(pins),
        node_ip="10.0.0.21",
        control_plane=control_plane,
        certificate_key=key if control_plane else None,
        node_labels=labels,
    )
    (doc,) = yaml.safe_load_all(render_join(spec, api))
    boot = doc["discovery"]["bootstrapToken"]
    assert boot["token"] == token
    assert boot["caCertHashes"] == pins
    assert boot["unsafeSkipCAVerification"] is False
    assert doc["nodeRegistration"]["name"] == name
    assert ("controlPlane" in doc) is control_plane
    if control_plane:
        assert doc["controlPlane"]["certificateKey"] == key


# Lines of real outputs, to mix with noise so the parsers see near-valid input too.
FRAGMENTS = [
    "kubeadm join 10.10.0.100:6443 --token z28v5d.4vm6rzekoibear23 \\",
    f"\t--discovery-token-ca-cert-hash {PIN} \\",
    f"\t--discovery-token-ca-cert-hash {PIN} ",
    "\t--control-plane --certificate-key <value withheld>",
    "[upload-certs] Using certificate key:",
    "c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f",
    "TOKEN  TTL  EXPIRES  USAGES  DESCRIPTION  EXTRA GROUPS",
    "abcdef.0123456789abcdef   23h   2024-10-02T09:36:00Z   a,b   x y   g",
    "abcdef.0123456789abcdef   23h   2024-99-02T09:36:00Z   a,b   x y   g",
    '{"token": "abcdef.0123456789abcdef", "expires": "bad"}',
    "CERTIFICATE AUTHORITY   EXPIRES   RESIDUAL TIME   EXTERNALLY MANAGED",
    "ca   Feb 30, 2032 12:16 UTC   7y   no",
    "ca   Mar 03, 2032 12:16 UTC   7y   no",
    "!MISSING! etcd-ca",
    "[upgrade/versions] Cluster version: 1.31.1",
    "[upgrade/versions] Target version: v9.99999999999999999999.1",
    "COMPONENT   NODE   CURRENT   TARGET",
    "\tkubeadm upgrade apply v1.31.7",
    '[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "vx".',
    "\t[ERROR Mem]: the system RAM (621 MB) is less than the minimum 1700 MB",
    "error execution phase preflight: preflight checks failed",
    "2019-09-16T21:03:16Z kubeadm.out Found kubeadm flag join",
    "2019-09-16T21:03:16Z kubeadm.out kubeadm has completed... removing configuration",
    "v1.31.3",
    'GitVersion:"v1.2"',
    '{"kind": "List", "items": [{"metadata": {"name": "x"}, "status": {"conditions": 5}}]}',
]
texts = st.text() | st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=40), max_size=12).map(
    "\n".join
)

PARSERS: list[Callable[[str], object]] = [
    parse_join_commands,
    parse_print_join_command,
    parse_token,
    parse_certificate_key,
    parse_token_list,
    parse_cert_expiration,
    is_upgrade_apply_success,
    is_upgrade_node_success,
    parse_preflight_errors,
    classify_kubeadm_error,
    parse_kubeadm_version,
    parse_nodes_json,
    parse_log_line,
    find_secrets,
    redact,
    lambda t: ca_cert_hash(t.encode()),
]


@pytest.mark.parametrize("parser", PARSERS)
@given(text=texts)
def test_parsers_never_crash(parser: Callable[[str], object], text: str) -> None:
    try:
        parser(text)
    except KubeadmError as exc:
        # the documented way to say "this output does not carry it", with a reason;
        # any other exception fails the test
        assert str(exc)


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=60), max_size=30), st.booleans())
def test_log_state_never_crashes(lines: list[str], stop: bool) -> None:
    state = KubeadmLogState(keep=5)
    for line in lines:
        state.feed(line)
    if stop:
        state.task_stopped()
        assert state.done  # a stopped task is always an ending, good or bad
    assert len(state.tail) <= 5


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: UTC if m == 0 else timezone(timedelta(minutes=m))
)
log_lines = st.builds(
    LogLine,
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).flatmap(
        lambda d: offsets.map(lambda tz: d.replace(tzinfo=tz))
    ),
    st.from_regex(r"[a-z][a-z0-9-]{0,15}\.out", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_characters="\n\r"), max_size=80),
)


@given(log_lines)
def test_log_lines_round_trip(line: LogLine) -> None:
    assert parse_log_line(line.format()) == line


separators = st.sampled_from([" ", "\n", "\t", ": ", "=", "'", '"', "(", ", "])
prose = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ !?", max_size=20)


@given(prose, separators, tokens, separators, prose)
def test_tokens_anywhere_are_found_and_redacted(
    before: str, sep1: str, token: str, sep2: str, after: str
) -> None:
    text = f"{before}{sep1}{token}{sep2}{after}"
    assert token in find_secrets(text)
    assert token not in redact(text)


@given(
    prose, hex64, st.sampled_from(["--certificate-key ", "certificateKey: ", "--certificate-key="])
)
def test_certificate_keys_are_found(before: str, key: str, lead: str) -> None:
    text = f"{before}\n{lead}{key}\n"
    assert find_secrets(text) == [key]
    assert key not in redact(text)
    assert find_secrets(f"{before} caCertHashes: [sha256:{key}]") == []
