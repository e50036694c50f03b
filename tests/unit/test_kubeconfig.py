"""admin.conf pointed at the endpoint, merged without clobbering, written 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from k8slk_ops.cluster import kubeconfig

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


# -- what a node's admin.conf may carry into the operator's kubeconfig -------------------------

import os  # noqa: E402

import pytest  # noqa: E402


@pytest.mark.parametrize(
    ("section", "extra", "named"),
    [
        ("user", "exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh}", "exec"),
        ("user", "auth-provider: {name: gcp}", "auth-provider"),
        ("user", "token: abc", "token"),
        ("cluster", "proxy-url: http://evil:3128", "proxy-url"),
        ("cluster", "insecure-skip-tls-verify: true", "insecure-skip-tls-verify"),
        ("cluster", "certificate-authority: /etc/passwd", "certificate-authority"),
    ],
)
def test_fields_kubeadm_never_writes_are_refused(section: str, extra: str, named: str) -> None:
    lines = ADMIN.splitlines()
    anchor = "    server: https://127.0.0.11:6443" if section == "cluster" else "- name: kubernetes-admin"
    text = ADMIN
    if section == "cluster":
        text = ADMIN.replace(anchor, f"{anchor}\n    {extra}")
    else:
        text = ADMIN.replace(
            "  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}",
            f"  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n    {extra}",
        )
    assert text != ADMIN and lines
    with pytest.raises(kubeconfig.KubeconfigError, match=named):
        kubeconfig.point_at(text, "lb:6443")


def test_unknown_top_level_keys_are_refused() -> None:
    with pytest.raises(kubeconfig.KubeconfigError, match="extensions"):
        kubeconfig.point_at(ADMIN + "extensions: [{name: x, extension: {}}]\n", "lb:6443")


def test_a_context_must_name_the_cluster_and_user_given() -> None:
    bad = ADMIN.replace("user: kubernetes-admin}", "user: somebody-else}")
    with pytest.raises(kubeconfig.KubeconfigError, match="somebody-else"):
        kubeconfig.point_at(bad, "lb:6443")


def test_only_allowed_fields_come_out() -> None:
    out = kubeconfig.load(kubeconfig.point_at(ADMIN, "lb:6443"))
    assert out == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "lab",
                "cluster": {"certificate-authority-data": "Q0E=", "server": "https://lb:6443"},
            }
        ],
        "users": [
            {
                "name": "kubernetes-admin",
                "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"},
            }
        ],
        "contexts": [
            {"name": "kubernetes-admin@lab", "context": {"cluster": "lab", "user": "kubernetes-admin"}}
        ],
        "current-context": "kubernetes-admin@lab",
        "preferences": {},
    }


@pytest.mark.parametrize(
    "existing",
    ["clusters: [x]\n", "clusters: {a: 1}\n", "users:\n- user: {}\n", "- a\n", "contexts: [{name: [1]}]\n"],
)
def test_a_malformed_file_to_merge_into_is_a_clear_error(existing: str) -> None:
    with pytest.raises(kubeconfig.KubeconfigError, match="cannot merge into"):
        kubeconfig.merge(existing, ADMIN, source="/home/op/.kube/config")


def test_the_operators_own_entries_are_kept_as_they_are() -> None:
    mine = OTHER.replace("user: {token: abc}", "user: {exec: {command: aws}}")
    merged = kubeconfig.load(kubeconfig.merge(mine, ADMIN))
    assert {"name": "me", "user": {"exec": {"command": "aws"}}} in merged["users"]


def test_write_private_writes_through_a_link_to_its_target(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "config"
    real.parent.mkdir()
    real.write_text(OTHER)
    os.chmod(real, 0o644)
    link = tmp_path / "config"
    link.symlink_to(real)
    written = kubeconfig.write_private(link, ADMIN)
    assert link.is_symlink()
    assert written == real
    assert real.read_text() == ADMIN
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(p.name for p in real.parent.iterdir()) == ["config"]


def test_write_private_refuses_a_target_that_is_not_a_regular_file(tmp_path: Path) -> None:
    link = tmp_path / "config"
    link.symlink_to("/dev/null")
    with pytest.raises(kubeconfig.KubeconfigError, match="not a regular file"):
        kubeconfig.write_private(link, ADMIN)


def test_read_existing_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config"
    os.mkfifo(fifo)
    with pytest.raises(kubeconfig.KubeconfigError, match="not a regular file"):
        kubeconfig.read_existing(fifo)
    assert kubeconfig.read_existing(tmp_path / "absent") is None


def _admin_conf(cluster: str, key: str) -> str:
    """What kubeadm writes for ``cluster``: the user is ``kubernetes-admin`` in every cluster."""
    return ADMIN.replace("lab", cluster).replace("S0VZ", key)


def _real_kubectl() -> str | None:
    """This machine's kubectl: a versioned binary of the Cloud SDK, else the one on PATH."""
    import shutil

    sdk = Path("/usr/lib/google-cloud-sdk/bin")
    versioned = sorted(sdk.glob("kubectl.1.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    return str(versioned[-1]) if versioned else shutil.which("kubectl")


def test_merging_two_clusters_keeps_each_contexts_own_key(tmp_path: Path) -> None:
    """kubeadm names both admins ``kubernetes-admin``: merged as they were, the second
    replaced the first's user and ``kubernetes-admin@a`` presented b's key. Checked with the
    real kubectl reading the merged file."""
    import subprocess

    import pytest

    kubectl = _real_kubectl()
    if kubectl is None:
        pytest.skip("no kubectl on this machine")
    target = tmp_path / "config"
    first = kubeconfig.merge("", kubeconfig.point_at(_admin_conf("a", "S0VZLUE="), "a:6443"),
                             cluster="a")
    kubeconfig.write_private(target, first)
    both = kubeconfig.merge(target.read_text(),
                            kubeconfig.point_at(_admin_conf("b", "S0VZLUI="), "b:6443"),
                            str(target), cluster="b")
    kubeconfig.write_private(target, both)

    def kubectl_says(*args: str) -> str:
        env = {"KUBECONFIG": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        done = subprocess.run([kubectl, *args], capture_output=True, text=True, env=env,
                              check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    names = kubectl_says("config", "get-contexts", "-o", "name").split()
    assert sorted(names) == ["kubernetes-admin@a", "kubernetes-admin@b"]
    for cluster, key in (("a", "S0VZLUE="), ("b", "S0VZLUI=")):
        context = f"kubernetes-admin@{cluster}"
        view = ["config", "view", "--raw", "--minify", "--context", context, "-o"]
        assert kubectl_says(*view, "jsonpath={.users[0].user.client-key-data}") == key
        assert kubectl_says(*view, "jsonpath={.users[0].name}") == context
        assert kubectl_says(*view, "jsonpath={.clusters[0].cluster.server}") == \
            f"https://{cluster}:6443"
    assert kubectl_says("config", "current-context").strip() == "kubernetes-admin@b"
