"""admin.conf pointed at the endpoint, merged without clobbering, written 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from k8slk_ops import kubeconfig

ADMIN = """\
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.11:6443
  name: lab
contexts:
- context: {cluster: lab, user: kubernetes-admin}
  name: kubernetes-admin@lab
current-context: kubernetes-admin@lab
users:
- name: kubernetes-admin
  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
"""

OTHER = """\
apiVersion: v1
kind: Config
clusters:
- cluster: {server: https://other:6443}
  name: other
contexts:
- context: {cluster: other, user: me}
  name: other
current-context: other
users:
- name: me
  user: {token: abc}
"""


def test_point_at_sets_every_server() -> None:
    out = kubeconfig.load(kubeconfig.point_at(ADMIN, "lb.example:6443"))
    assert out["clusters"][0]["cluster"]["server"] == "https://lb.example:6443"
    assert out["users"][0]["user"]["client-key-data"] == "S0VZ"


def test_merge_keeps_other_contexts() -> None:
    merged = kubeconfig.load(kubeconfig.merge(OTHER, ADMIN))
    assert {c["name"] for c in merged["contexts"]} == {"other", "kubernetes-admin@lab"}
    assert {u["name"] for u in merged["users"]} == {"me", "kubernetes-admin"}
    assert merged["current-context"] == "kubernetes-admin@lab"
    again = kubeconfig.load(kubeconfig.merge(kubeconfig.dump(merged), ADMIN))
    assert len(again["clusters"]) == 2


def test_write_private_is_0600_and_atomic(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "admin.kubeconfig"
    kubeconfig.write_private(target, ADMIN)
    assert target.read_text() == ADMIN
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    kubeconfig.write_private(target, OTHER)
    assert target.read_text() == OTHER
    assert [p.name for p in target.parent.iterdir()] == ["admin.kubeconfig"]
