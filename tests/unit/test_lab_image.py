"""Which real kubectl a lab node gets, and the loud fallback when the host has none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.lab import image

GOOGLE = {m: f"/usr/lib/google-cloud-sdk/bin/kubectl.1.{m}" for m in range(27, 34)}


@pytest.mark.parametrize(("version", "minor"), [
    ("v1.31.3", 31), ("v1.27.0", 27), ("v1.33.1", 33),
    ("v1.15.3", 27), ("v1.25.4", 27), ("v1.40.0", 33),
])
def test_the_nodes_minor_else_the_nearest(monkeypatch: pytest.MonkeyPatch, version: str,
                                          minor: int) -> None:
    monkeypatch.setattr(image, "real_kubectls", lambda: GOOGLE)
    assert image.real_kubectl(version) == GOOGLE[minor]


def test_debian_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "real_kubectls", lambda: {20: "/usr/bin/kubectl"})
    assert image.real_kubectl("v1.31.3") == "/usr/bin/kubectl"
    assert image.real_kubectl("v1.15.3") == "/usr/bin/kubectl"


def test_a_tie_takes_the_newer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "real_kubectls", lambda: {20: "/a", 26: "/b"})
    assert image.real_kubectl("v1.22.0") == "/a"
    assert image.real_kubectl("v1.23.0") == "/b"  # 3 either side


def test_link_points_at_the_real_one_or_the_double(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(image, "real_kubectls", lambda: GOOGLE)
    assert image.link_kubectl(tmp_path, "v1.30.2") == GOOGLE[30]
    assert os.readlink(tmp_path / "bin/kubectl") == GOOGLE[30]
    monkeypatch.setattr(image, "real_kubectls", dict)
    assert image.link_kubectl(tmp_path, "v1.30.2") == image.DOUBLE_KUBECTL
    assert os.readlink(tmp_path / "bin/kubectl") == image.DOUBLE_KUBECTL


def test_the_hosts_kubectls_are_real_binaries_under_usr() -> None:
    for minor, path in image.real_kubectls().items():
        assert path.startswith("/usr/") and not path.startswith("/usr/local/")
        assert image._minor_of(Path(path)) == minor
