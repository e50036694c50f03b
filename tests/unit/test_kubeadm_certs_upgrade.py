"""check-expiration tables and the upgrade plan / apply / node outputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from k8slk_ops.kubeadm import (
    KubeVersion,
    is_upgrade_apply_success,
    is_upgrade_node_success,
    parse_cert_expiration,
    parse_kubeadm_date,
    upgraded_to,
)
from tests.unit.upgradeplan import parse_upgrade_plan

CHECK = (
    "[check-expiration] Reading configuration from the cluster...\n"
    "[check-expiration] FYI: You can look at this config file with "
    "'kubectl -n kube-system get cm kubeadm-config -o yaml'\n"
    "\n"
    "CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   "
    "EXTERNALLY MANAGED\n"
    "admin.conf                 Oct 01, 2025 09:36 UTC   364d            ca                      "
    "no      \n"
    "apiserver-etcd-client      Oct 01, 2025 09:36 UTC   364d            etcd-ca                 "
    "no      \n"
    "!MISSING! front-proxy-client\n"
    "\n"
    "CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED\n"
    "ca                      Mar 03, 2032 12:16 UTC   7y              no      \n"
    "front-proxy-ca          Mar 03, 2032 12:16 UTC   7y              yes\n"
    "!MISSING! etcd-ca\n"
)


def test_check_expiration_both_tables() -> None:
    rows = parse_cert_expiration(CHECK)
    assert [r.name for r in rows] == [
        "admin.conf",
        "apiserver-etcd-client",
        "front-proxy-client",
        "ca",
        "front-proxy-ca",
        "etcd-ca",
    ]
    admin, etcd_client, missing, ca, fp_ca, missing_ca = rows
    assert admin.expires == datetime(2025, 10, 1, 9, 36, tzinfo=UTC)
    assert admin.residual == "364d"
    assert (admin.authority, admin.is_ca, admin.externally_managed) == ("ca", False, False)
    assert etcd_client.authority == "etcd-ca"
    assert missing.missing and missing.expires is None and not missing.is_ca
    assert ca.is_ca and ca.authority is None
    assert ca.expires == datetime(2032, 3, 3, 12, 16, tzinfo=UTC)
    assert fp_ca.externally_managed
    assert missing_ca.missing and missing_ca.is_ca


def test_old_table_without_authority_column() -> None:
    old = (
        "CERTIFICATE                EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED\n"
        "admin.conf                 Sep 16, 2020 21:03 UTC   364d            no\n"
    )
    (row,) = parse_cert_expiration(old)
    assert row.name == "admin.conf" and row.authority is None and not row.is_ca
    assert row.expires == datetime(2020, 9, 16, 21, 3, tzinfo=UTC)


def test_expires_within() -> None:
    admin, *_ = parse_cert_expiration(CHECK)
    now = datetime(2025, 9, 1, tzinfo=UTC)
    assert admin.expires_within(31, now)
    assert not admin.expires_within(29, now)
    missing = parse_cert_expiration(CHECK)[2]
    assert missing.expires_within(0, now)


def test_dates() -> None:
    assert parse_kubeadm_date("Jan 02, 2006 15:04 UTC") == datetime(2006, 1, 2, 15, 4, tzinfo=UTC)
    tz = timezone(timedelta(hours=2))
    assert parse_kubeadm_date("Jan 02, 2006 15:04 +0200") == datetime(2006, 1, 2, 15, 4, tzinfo=tz)
    assert parse_kubeadm_date("Jan 02, 2006 15:04 XYZ") is None
    assert parse_kubeadm_date("Foo 02, 2006 15:04 UTC") is None


def test_garbage_gives_no_rows() -> None:
    assert parse_cert_expiration("") == []
    assert parse_cert_expiration("error: no such file\n[check-expiration] x\n") == []


PLAN = (
    "[upgrade/config] Making sure the configuration is correct:\n"
    "[preflight] Running pre-flight checks.\n"
    "[upgrade] Running cluster health checks\n"
    "[upgrade] Fetching available versions to upgrade to\n"
    "[upgrade/versions] Cluster version: 1.31.1\n"
    "[upgrade/versions] kubeadm version: v1.31.7\n"
    "[upgrade/versions] Target version: v1.31.7\n"
    "[upgrade/versions] Latest version in the v1.31 series: v1.31.7\n"
    "\n"
    "Components that must be upgraded manually after you have upgraded the control plane "
    "with 'kubeadm upgrade apply':\n"
    "COMPONENT   NODE      CURRENT   TARGET\n"
    "kubelet     cp-1      v1.31.1   v1.31.7\n"
    "kubelet     w-1       v1.31.1   v1.31.7\n"
    "\n"
    "Upgrade to the latest version in the v1.31 series:\n"
    "\n"
    "COMPONENT                 NODE      CURRENT    TARGET\n"
    "kube-apiserver            cp-1      v1.31.1    v1.31.7\n"
    "etcd                      cp-1      3.5.15-0   3.5.15-0\n"
    "\n"
    "You can now apply the upgrade by executing the following command:\n"
    "\n"
    "\tkubeadm upgrade apply v1.31.7\n"
    "\n"
    "_____________________________________________________________________\n"
)


def test_upgrade_plan() -> None:
    plan = parse_upgrade_plan(PLAN)
    assert plan.cluster_version == KubeVersion(1, 31, 1)
    assert plan.kubeadm_version == KubeVersion(1, 31, 7)
    assert plan.target_version == KubeVersion(1, 31, 7)
    assert plan.apply_versions == (KubeVersion(1, 31, 7),)
    assert [(c.component, c.node, c.current, c.target) for c in plan.components] == [
        ("kubelet", "cp-1", "v1.31.1", "v1.31.7"),
        ("kubelet", "w-1", "v1.31.1", "v1.31.7"),
        ("kube-apiserver", "cp-1", "v1.31.1", "v1.31.7"),
        ("etcd", "cp-1", "3.5.15-0", "3.5.15-0"),
    ]
    assert not plan.up_to_date


def test_old_plan_table_without_node_column() -> None:
    old = (
        "[upgrade/versions] Cluster version: v1.15.3\n"
        "COMPONENT   CURRENT       AVAILABLE\n"
        "Kubelet     3 x v1.15.3   v1.16.0\n"
        "\n"
        "Awesome, you're up-to-date! Enjoy!\n"
    )
    plan = parse_upgrade_plan(old)
    assert plan.cluster_version == KubeVersion(1, 15, 3)
    (row,) = plan.components
    assert (row.component, row.node, row.current, row.target) == (
        "Kubelet",
        None,
        "3 x v1.15.3",
        "v1.16.0",
    )
    assert plan.up_to_date and plan.target_version is None


def test_upgrade_apply_success_both_forms() -> None:
    old = '[upgrade/successful] SUCCESS! Your cluster was upgraded to "v1.30.1". Enjoy!\n'
    new = '[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "v1.33.1".\n'
    assert is_upgrade_apply_success("lots\nof\nlines\n" + old)
    assert is_upgrade_apply_success(new, "v1.33.1")
    assert upgraded_to(old) == KubeVersion(1, 30, 1)
    assert not is_upgrade_apply_success(new, "v1.33.2")
    assert not is_upgrade_apply_success("[upgrade/apply] Are you sure? [y/N]: ")
    logged = f"2025-01-01T00:00:00Z kubeadm.out {new}"
    assert is_upgrade_apply_success(logged)


def test_upgrade_node_success() -> None:
    ok = "[upgrade] The configuration for this node was successfully updated!\n"
    assert is_upgrade_node_success("[upgrade] Reading configuration\n" + ok)
    assert not is_upgrade_node_success("[upgrade] Reading configuration\n")
