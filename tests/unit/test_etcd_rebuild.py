"""``etcd restore --pki``: the rebuild's pure parts (who is blank, the refusals, the one-member
restore, the etcd image found, the init's preflight exception, the PKI archive read back) and
its plan, as data: facts in, stages and refusals out."""

from __future__ import annotations

import hashlib
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import UsageError
from k8slk_ops.cluster import etcdrebuild, pkiarchive
from k8slk_ops.cluster.etcdrebuild import ControlPlaneSeen
from k8slk_ops.cluster.etcdrestore import SnapshotFile
from k8slk_ops.engine.context import ClusterFacts, PlanContext, RunOptions
from k8slk_ops.engine.plan import make_plan, needed_nodes
from k8slk_ops.engine.playbook import load_builtin
from k8slk_ops.inventory import load_inventory
from k8slk_ops.node.facts import parse_facts
from k8slk_ops.steps import STEPS

SHA = "ab" * 32
OTHER = "cd" * 32

INVENTORY = """\
cluster:
  name: lab
  controlPlaneEndpoint: 127.0.9.250:6443
nodes:
  - {name: cp-1, address: 127.0.9.11, role: control-plane}
  - {name: cp-2, address: 127.0.9.12, role: control-plane}
  - {name: cp-3, address: 127.0.9.13, role: control-plane}
  - {name: w-1, address: 127.0.9.21, role: worker}
"""

BLANK = """\
cpus=2
mem_kb=4000000
marker=0
admin_conf=0
task TASK PID STATUS
task kubelet 1 RUNNING
task kubeadm 2 RUNNING
kubeadm_version=v1.31.3
log 2026-12-07T06:00:00Z kubeadm.out Waiting for /run/kubeadm-run to exist before running kubeadm commands
"""

CONFIGURED = """\
cpus=2
mem_kb=4000000
marker=1
admin_conf=1
task TASK PID STATUS
task kubelet 1 RUNNING
task kubeadm 2 STOPPED
kubeadm_version=v1.31.3
log 2026-12-07T06:00:00Z kubeadm.out Kubernetes Node already has kubelet configuration
"""


def _marked(text: str, sha: str, stage: str) -> str:
    return text + f"rebuild={sha} {stage} \n"


# -- blank, and the refusals ------------------------------------------------------------------


def test_a_node_whose_kubeadm_waits_for_its_first_trigger_is_blank() -> None:
    assert etcdrebuild.blank(parse_facts(BLANK))
    assert not etcdrebuild.blank(parse_facts(CONFIGURED))
    # Waiting, but an earlier init left its files on the disk: not blank.
    assert not etcdrebuild.blank(parse_facts(BLANK.replace("admin_conf=0", "admin_conf=1")))


def test_blank_control_planes_are_not_refused() -> None:
    seen = [ControlPlaneSeen(n, parse_facts(BLANK)) for n in ("cp-1", "cp-2")]
    assert etcdrebuild.refusals(seen, SHA) == []


def test_a_control_plane_that_is_not_blank_is_refused_by_name() -> None:
    seen = [ControlPlaneSeen("cp-1", parse_facts(BLANK)),
            ControlPlaneSeen("cp-2", parse_facts(CONFIGURED))]
    [problem] = etcdrebuild.refusals(seen, SHA)
    assert problem.startswith("cp-2 is not blank")
    assert "without --pki" in problem and "reset" in problem


def test_an_unreachable_control_plane_is_refused() -> None:
    [problem] = etcdrebuild.refusals([ControlPlaneSeen("cp-3", None, "connection refused")], SHA)
    assert problem.startswith("cp-3 cannot be reached (connection refused)")


def test_a_control_plane_marked_by_this_rebuild_is_taken_up_again() -> None:
    seen = [ControlPlaneSeen("cp-1", parse_facts(_marked(CONFIGURED, SHA, "init"))),
            ControlPlaneSeen("cp-2", parse_facts(_marked(CONFIGURED, SHA, "join"))),
            ControlPlaneSeen("cp-3", parse_facts(BLANK))]
    assert etcdrebuild.refusals(seen, SHA) == []


def test_a_control_plane_marked_by_another_snapshot_is_refused() -> None:
    seen = [ControlPlaneSeen("cp-1", parse_facts(_marked(CONFIGURED, OTHER, "init")))]
    [problem] = etcdrebuild.refusals(seen, SHA)
    assert f"another snapshot (SHA-256 {OTHER})" in problem


def test_the_marker_reads_back() -> None:
    assert etcdrebuild.parse_marker(etcdrebuild.marker_text(SHA, "join")) == (SHA, "join")
    assert etcdrebuild.parse_marker(f"{SHA} restored") is None
    assert etcdrebuild.parse_marker(None) is None


# -- the restore, the image, the init -----------------------------------------------------------


def test_the_first_control_plane_is_restored_as_kubeadm_will_name_its_member() -> None:
    one = etcdrebuild.member("cp-1", "10.0.0.1", "registry.k8s.io/etcd:3.5.15-0")
    argv = etcdrebuild.restore_argv(one, SHA, skip_hash_check=False)
    assert argv[:4] == ["etcdutl", "snapshot", "restore", "/restore/snapshot.db"]
    assert "--name=cp-1" in argv
    assert "--initial-cluster=cp-1=https://10.0.0.1:2380" in argv
    assert "--initial-advertise-peer-urls=https://10.0.0.1:2380" in argv
    assert "--data-dir=/restore/staging" in argv and "--skip-hash-check" not in argv
    old = etcdrebuild.member("cp-1", "fd00::1", "registry.k8s.io/etcd:3.4.23-0")
    argv = etcdrebuild.restore_argv(old, SHA, skip_hash_check=True)
    assert argv[0] == "etcdctl" and argv[-1] == "--skip-hash-check"
    assert "--initial-advertise-peer-urls=https://[fd00::1]:2380" in argv


def test_the_etcd_image_is_found_among_the_nodes_images() -> None:
    listing = ("registry.k8s.io/pause:3.10\nregistry.k8s.io/etcd:3.5.9-0\n"
               "registry.k8s.io/etcd:3.5.15-0\nregistry.k8s.io/etcd@sha256:" + "0" * 64 + "\n"
               "registry.k8s.io/kube-apiserver:v1.31.3\n")
    assert etcdrebuild.pick_etcd_image(listing) == "registry.k8s.io/etcd:3.5.15-0"
    assert etcdrebuild.pick_etcd_image("registry.k8s.io/pause:3.10\n") is None
    assert etcdrebuild.pick_etcd_image("") is None


def test_the_init_lets_the_restored_data_directory_through_and_nothing_else() -> None:
    ours = etcdrebuild.init_overrides({})
    assert ours["InitConfiguration"]["nodeRegistration"]["ignorePreflightErrors"] == [
        "DirAvailable--var-lib-etcd"]
    theirs = {"InitConfiguration": {"nodeRegistration": {"ignorePreflightErrors": ["Swap"]}},
              "ClusterConfiguration": {"apiServer": {"extraArgs": {"v": "2"}}}}
    merged = etcdrebuild.init_overrides(theirs)
    assert merged["InitConfiguration"]["nodeRegistration"]["ignorePreflightErrors"] == [
        "Swap", "DirAvailable--var-lib-etcd"]
    assert merged["ClusterConfiguration"] == theirs["ClusterConfiguration"]
    assert theirs["InitConfiguration"]["nodeRegistration"]["ignorePreflightErrors"] == ["Swap"]
    for api in ("kubeadm.k8s.io/v1beta2", "kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"):
        spec = kubeadm.InitSpec(node_name="cp-1", advertise_address="10.0.0.1",
                                kubernetes_version="v1.31.3", overrides=ours)
        docs = list(yaml.safe_load_all(kubeadm.render_init(spec, api)))
        init = next(d for d in docs if d["kind"] == "InitConfiguration")
        assert init["nodeRegistration"]["ignorePreflightErrors"] == [
            "DirAvailable--var-lib-etcd"], api


# -- the PKI archive read back ------------------------------------------------------------------


def _pki(tmp_path: Path) -> Path:
    files = {m: f"-----BEGIN {m}-----\n".encode() for m in pkiarchive.MEMBERS}
    return pkiarchive.write(tmp_path / "lab-20261207T000000Z.db", files,
                            datetime(2026, 12, 7, tzinfo=UTC)).path


def test_the_archive_reads_back_with_its_modes(tmp_path: Path) -> None:
    path = _pki(tmp_path)
    loaded = pkiarchive.load(path)
    assert sorted(loaded.files) == sorted(pkiarchive.MEMBERS)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.mode("ca.key") == 0o600 and loaded.mode("etcd/ca.crt") == 0o644
    assert "BEGIN" not in repr(loaded)


def test_an_archive_with_anything_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pki.tar"
    with tarfile.open(path, "w") as tar:
        for name in (*pkiarchive.MEMBERS, "../etc/passwd"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(pkiarchive.PkiError, match="not one of the files"):
        pkiarchive.load(path)


def test_an_archive_without_every_file_or_no_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short.pki.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("ca.crt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(pkiarchive.PkiError, match=r"lacks ca\.key"):
        pkiarchive.load(path)
    (tmp_path / "junk").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(pkiarchive.PkiError, match="not a tar archive"):
        pkiarchive.load(tmp_path / "junk")
    with pytest.raises(pkiarchive.PkiError, match="cannot read"):
        pkiarchive.load(tmp_path / "missing.pki.tar")


# -- the plan -----------------------------------------------------------------------------------


def _context(tmp_path: Path, facts: dict[str, str], cluster: ClusterFacts) -> PlanContext:
    inv = tmp_path / "inv.yml"
    inv.write_text(INVENTORY)
    snap = SnapshotFile(tmp_path / "lab.db", 3, SHA, True, b"abc")
    keys = pkiarchive.load(_pki(tmp_path))
    return PlanContext(
        inventory=load_inventory(inv),
        options=RunOptions(run_id="r1", restore=snap, restore_pki=keys),
        facts={n: parse_facts(t) for n, t in facts.items()},
        unreachable={},
        cluster=cluster,
    )


def _stages(ctx: PlanContext) -> dict[str, list[str]]:
    return {s["stage"]: [n["node"] for n in s["nodes"] if n["actions"]]
            for s in make_plan(load_builtin("etcd-rebuild", STEPS), ctx).to_json()}


def test_blank_control_planes_plan_init_on_the_first_and_joins_of_the_others(
    tmp_path: Path,
) -> None:
    ctx = _context(tmp_path, dict.fromkeys(("cp-1", "cp-2", "cp-3"), BLANK),
                   ClusterFacts(primary="cp-1"))
    book = load_builtin("etcd-rebuild", STEPS)
    assert sorted(needed_nodes(book, ctx)) == ["cp-1", "cp-2", "cp-3"]
    stages = _stages(ctx)
    assert stages["prepare"] == ["cp-1"] and stages["init"] == ["cp-1"]
    assert stages["credentials"] == ["cp-1"]
    assert stages["join-control-planes"] == ["cp-2", "cp-3"]
    assert stages["check"] == ["cp-1"]


def test_a_control_plane_that_is_not_blank_refuses_the_plan(tmp_path: Path) -> None:
    ctx = _context(tmp_path, {"cp-1": BLANK, "cp-2": CONFIGURED, "cp-3": BLANK},
                   ClusterFacts(primary="cp-1"))
    with pytest.raises(UsageError, match="cp-2 is not blank") as refused:
        make_plan(load_builtin("etcd-rebuild", STEPS), ctx)
    assert "nothing was changed" in str(refused.value) and "cp-1" not in str(refused.value)


def test_a_run_cut_short_after_the_first_join_is_taken_up(tmp_path: Path) -> None:
    ctx = _context(tmp_path, {"cp-1": _marked(CONFIGURED, SHA, "init"),
                              "cp-2": _marked(CONFIGURED, SHA, "join"), "cp-3": BLANK},
                   ClusterFacts(primary="cp-1", initialised=True))
    stages = _stages(ctx)
    assert stages["prepare"] == [] and stages["init"] == []
    assert stages["credentials"] == ["cp-1"]
    assert stages["join-control-planes"] == ["cp-3"]
