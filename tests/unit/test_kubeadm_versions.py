"""Versions: parsing every form, ordering, skew rules, and the API version per release."""

from __future__ import annotations

import pytest

from k8slk_ops.kubeadm import (
    ConfigApi,
    KubeVersion,
    ParseError,
    VersionError,
    config_api_version,
    parse_kubeadm_version,
    upgrade_step_allowed,
)

V = KubeVersion.parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v1.31.3", KubeVersion(1, 31, 3)),
        ("1.31.3", KubeVersion(1, 31, 3)),
        ("v1.31.3-rc.1", KubeVersion(1, 31, 3, "rc.1")),
        (" v1.15.3\n", KubeVersion(1, 15, 3)),
        ("v1.32.0-alpha.0.123+abcdef", KubeVersion(1, 32, 0, "alpha.0.123", "abcdef")),
    ],
)
def test_parse_forms(text: str, expected: KubeVersion) -> None:
    got = V(text)
    assert got == expected
    assert (got.pre, got.build) == (expected.pre, expected.build)


@pytest.mark.parametrize("text", ["", "v1.31", "1.31.x", "vv1.31.3", "1.031.3", "v1.31.3-", "x"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(VersionError):
        V(text)


def test_str_round_trips() -> None:
    for text in ("v1.31.3", "v1.31.3-rc.1", "v1.32.0-alpha.0.123+abcdef"):
        assert str(V(text)) == text
    assert str(V("1.31.3")) == "v1.31.3"


def test_ordering_is_semver() -> None:
    ordered = [
        "v1.9.9",
        "v1.30.0",
        "v1.31.0-alpha.1",
        "v1.31.0-alpha.2",
        "v1.31.0-alpha.10",
        "v1.31.0-beta.0",
        "v1.31.0-rc.1",
        "v1.31.0",
        "v1.31.3",
        "v1.31.10",
        "v2.0.0",
    ]
    parsed = [V(t) for t in ordered]
    assert sorted(reversed(parsed)) == parsed
    assert V("v1.31.3") == V("1.31.3")
    assert V("v1.31.3+a") == V("v1.31.3+b")  # build metadata does not order
    assert len({V("v1.31.3"), V("1.31.3")}) == 1


def test_minor_skew() -> None:
    assert V("v1.31.3").minor_skew(V("v1.29.9")) == 2
    assert V("v1.29.0").minor_skew(V("v1.31.0")) == -2
    with pytest.raises(VersionError):
        V("v2.0.0").minor_skew(V("v1.31.0"))


def test_skew_rules() -> None:
    assert upgrade_step_allowed(V("v1.30.5"), V("v1.31.3"))
    assert upgrade_step_allowed(V("v1.31.1"), V("v1.31.7"))
    assert not upgrade_step_allowed(V("v1.29.5"), V("v1.31.3"))  # two minors at once
    assert not upgrade_step_allowed(V("v1.31.3"), V("v1.30.9"))  # downgrade


@pytest.mark.parametrize(
    ("version", "api"),
    [
        ("v1.15.3", ConfigApi.V1BETA2),
        ("v1.21.14", ConfigApi.V1BETA2),
        ("v1.22.0", ConfigApi.V1BETA3),
        ("v1.30.9", ConfigApi.V1BETA3),
        ("v1.31.0-rc.1", ConfigApi.V1BETA4),
        ("v1.31.3", ConfigApi.V1BETA4),
        ("1.34.1", ConfigApi.V1BETA4),
    ],
)
def test_config_api_version(version: str, api: ConfigApi) -> None:
    assert config_api_version(version) is api
    assert config_api_version(V(version)) is api
    assert api.group_version == f"kubeadm.k8s.io/{api.value}"


@pytest.mark.parametrize("version", ["v1.14.10", "v1.9.0", "v0.31.0", "v2.1.0"])
def test_config_api_version_refuses_unsupported(version: str) -> None:
    with pytest.raises(VersionError, match="not supported"):
        config_api_version(version)


def test_config_api_accepts_both_spellings() -> None:
    assert ConfigApi.of("kubeadm.k8s.io/v1beta3") is ConfigApi.V1BETA3
    assert ConfigApi.of("v1beta4") is ConfigApi.V1BETA4
    with pytest.raises(VersionError):
        ConfigApi.of("v1beta1")


def test_parse_kubeadm_version_short_and_long() -> None:
    assert parse_kubeadm_version("v1.31.3\n") == V("v1.31.3")
    noisy = "W1001 09:00:00.000 warning: something\nv1.15.3\n"
    assert parse_kubeadm_version(noisy) == V("v1.15.3")
    long_form = (
        'kubeadm version: &version.Info{Major:"1", Minor:"15", GitVersion:"v1.15.3", '
        'GitCommit:"2d3c76f9091b6bec110a5e63777c332469e0cba2", GitTreeState:"clean"}\n'
    )
    assert parse_kubeadm_version(long_form) == V("v1.15.3")
    with pytest.raises(ParseError):
        parse_kubeadm_version("command not found\n")
