"""The lab kubeadm double's ``upgrade plan|apply|node`` and ``certs check-expiration|renew``,
run as processes on simulated node roots (see test_lab_doubles), read back with the tool's own
parsers.

A node "gets a newer kubeadm" by having its image version (``/lab/node.json``) raised, as a
reboot on a newer image would; its running kubelet keeps reporting the version it started with.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import ssl
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from k8slk_ops.kubeadm import (
    KubeVersion,
    is_upgrade_apply_success,
    is_upgrade_node_success,
    parse_cert_expiration,
    upgraded_to,
)
from tests.unit.test_lab_doubles import (
    STACK,
    Node,
    join_config,
    nodes,
    pin_of,
    pytestmark,
    ready,
    wait_for,
)
from tests.unit.upgradeplan import parse_upgrade_plan

__all__ = ["nodes", "pytestmark"]  # the fixture and the skip mark, shared

PKI = "/etc/kubernetes/pki"


def init_config(node: Node, version: str) -> str:
    """An init config in the API version the node's kubeadm speaks (v1beta4 from v1.31)."""
    api = "v1beta4" if KubeVersion.parse(version).minor >= 31 else "v1beta3"
    return f"""apiVersion: kubeadm.k8s.io/{api}
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {node.address}
  bindPort: 6443
nodeRegistration:
  name: {node.name}
---
apiVersion: kubeadm.k8s.io/{api}
kind: ClusterConfiguration
kubernetesVersion: {version}
clusterName: lab
controlPlaneEndpoint: {node.address}:6443
"""


def control_plane(nodes: Any, version: str) -> Node:
    cp: Node = nodes("cp-1", "control-plane", version)
    cp.start_kubelet()
    path = cp.write("/run/kubeadm.yaml", init_config(cp, version))
    out = cp.run("kubeadm", "init", "--config", path)
    assert out.returncode == 0, out.stdout + out.stderr
    return cp


def new_image(node: Node, version: str) -> None:
    """The node's kubeadm is now ``version`` (its kubelet goes on with the old one)."""
    data = json.loads(node.file("/lab/node.json").read_text())
    data["kubernetesVersion"] = version
    node.file("/lab/node.json").write_text(json.dumps(data))


def cert(node: Node, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(node.file(f"{PKI}/{name}.crt").read_bytes())


def kubeconfig_cert(node: Node, name: str) -> x509.Certificate:
    import base64

    doc = yaml.safe_load(node.file(f"/etc/kubernetes/{name}").read_text())
    data = doc["users"][0]["user"]["client-certificate-data"]
    return x509.load_pem_x509_certificate(base64.b64decode(data))


def served(node: Node) -> x509.Certificate:
    pem = ssl.get_server_certificate((node.address, 6443))
    return x509.load_pem_x509_certificate(pem.encode())


def cluster_version(node: Node) -> KubeVersion | None:
    plan = node.run("kubeadm", "upgrade", "plan")
    assert plan.returncode == 0, plan.stderr
    return parse_upgrade_plan(plan.stdout).cluster_version


def expiry(c: x509.Certificate) -> dt.datetime:
    return c.not_valid_after_utc


def test_upgrade_from_v1_30_plan_skew_fault_then_apply(nodes: Any) -> None:
    cp = control_plane(nodes, "v1.30.2")
    new_image(cp, "v1.31.3")
    assert wait_for(lambda: "cp-1" in ready(cp))

    out = cp.run("kubeadm", "upgrade", "plan")
    assert out.returncode == 0, out.stderr
    plan = parse_upgrade_plan(out.stdout)
    assert plan.cluster_version == KubeVersion(1, 30, 2)
    assert plan.kubeadm_version == KubeVersion(1, 31, 3)
    assert plan.target_version == KubeVersion(1, 31, 3)
    assert plan.apply_versions == (KubeVersion(1, 31, 3),)
    assert not plan.up_to_date
    rows = {(c.component, c.node): (c.current, c.target) for c in plan.components}
    assert rows[("kubelet", "cp-1")] == ("v1.30.2", "v1.31.3")
    assert rows[("kube-apiserver", "cp-1")] == ("v1.30.2", "v1.31.3")
    assert "\tkubeadm upgrade apply v1.31.3\n" in out.stdout
    as_json = json.loads(cp.run("kubeadm", "upgrade", "plan", "-o", "json").stdout)
    (upgrade,) = as_json["availableUpgrades"]
    assert {"name": "kubelet", "currentVersion": "v1.30.2", "newVersion": "v1.31.3",
            "nodeName": "cp-1"} in upgrade["components"]

    # Two minors at once, and beyond kubeadm's own minor: fatal whatever the flags.
    bad = cp.run("kubeadm", "upgrade", "apply", "v1.32.0", "--yes", "--force")
    assert bad.returncode == 1
    assert bad.stderr.startswith("[upgrade/version] FATAL: the --version argument is invalid "
                                 "due to these fatal errors:\n\n")
    assert ('\t- Specified version to upgrade to "v1.32.0" is too high; kubeadm can upgrade only '
            "1 minor version at a time\n") in bad.stderr
    assert ('\t- Specified version to upgrade to "v1.32.0" is at least one minor release higher '
            "than the kubeadm minor release (32 > 31). Such an upgrade is not supported\n"
            ) in bad.stderr
    assert bad.stderr.rstrip().endswith(STACK)
    # A newer patch than kubeadm: refused unless forced.
    bad = cp.run("kubeadm", "upgrade", "apply", "v1.31.5", "-y")
    assert bad.returncode == 1
    assert ('Specified version to upgrade to "v1.31.5" is higher than the kubeadm version '
            '"v1.31.3". Upgrade kubeadm first') in bad.stderr
    assert "Can be bypassed if you pass the --force flag" in bad.stderr
    # No --yes and nobody to answer the prompt.
    asked = cp.run("kubeadm", "upgrade", "apply", "v1.31.3", input="")
    assert asked.returncode == 1
    assert "[upgrade/confirm] Are you sure you want to proceed? [y/N]: " in asked.stdout
    assert "won't proceed; the user didn't answer (Y|y) in order to continue" in asked.stderr
    # A fault in a phase after the control plane: the cluster version stays.
    cp.write("/lab/faults/kubeadm-fail", "upload-config\n")
    failed = cp.run("kubeadm", "upgrade", "apply", "v1.31.3", "--yes")
    assert failed.returncode == 1
    assert "error execution phase upload-config: " in failed.stderr
    assert upgraded_to(failed.stdout) is None
    assert cluster_version(cp) == KubeVersion(1, 30, 2)
    assert not cp.file("/lab/faults/kubeadm-fail").exists()

    # Run again after the failure, answering the prompt: the upgrade goes through.
    before = cert(cp, "apiserver")
    admin_before = kubeconfig_cert(cp, "admin.conf")
    assert served(cp).serial_number == before.serial_number
    out = cp.run("kubeadm", "upgrade", "apply", "v1.31.3", input="y\n")
    assert out.returncode == 0, out.stdout + out.stderr
    assert is_upgrade_apply_success(out.stdout, "v1.31.3")
    assert ('[upgrade/successful] SUCCESS! Your cluster was upgraded to "v1.31.3". Enjoy!\n'
            in out.stdout)
    assert "[upgrade/staticpods] Renewing apiserver certificate" in out.stdout
    assert cluster_version(cp) == KubeVersion(1, 31, 3)

    after = cert(cp, "apiserver")
    assert after.serial_number != before.serial_number
    assert after.subject == before.subject and after.issuer == before.issuer
    san = x509.SubjectAlternativeName
    assert (after.extensions.get_extension_for_class(san).value
            == before.extensions.get_extension_for_class(san).value)
    assert expiry(after) >= expiry(before)
    assert kubeconfig_cert(cp, "admin.conf").serial_number != admin_before.serial_number
    # The restarted API double serves the renewed certificate and the new version.
    assert served(cp).serial_number == after.serial_number
    manifest = cp.file("/etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
    assert "--kubernetes-version=v1.31.3" in manifest
    assert list(cp.file("/etc/kubernetes/tmp").glob("kubeadm-backup-manifests-*/"
                                                    "kube-apiserver.yaml"))
    again = parse_upgrade_plan(cp.run("kubeadm", "upgrade", "plan").stdout)
    assert again.up_to_date and again.target_version is None
    # The addon phase moved kube-proxy to the new version's image.
    store = json.loads(next(cp.root.parent.joinpath("etcd").glob("*.json")).read_text())
    ds = store["objects"]["apps/daemonsets"]["kube-system/kube-proxy"]
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.k8s.io/kube-proxy:v1.31.3"


LAB_ETCD = "registry.k8s.io/etcd:3.4.23-0"  # the one etcd image a lab node holds


def etcd_rows(node: Node) -> dict[str, tuple[str, str]]:
    plan = parse_upgrade_plan(node.run("kubeadm", "upgrade", "plan").stdout)
    return {c.node: (c.current, c.target) for c in plan.components if c.component == "etcd"}


def test_etcd_stays_the_one_the_node_runs_and_plan_says_which(nodes: Any) -> None:
    """The plan's etcd row reads the node's etcd mirror pod and names kubeadm's table as the
    target; apply keeps the manifest (the lab cannot run the table's 3.5)."""
    cp = control_plane(nodes, "v1.30.2")
    manifest = "/etc/kubernetes/manifests/etcd.yaml"
    text = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "etcd", "namespace": "kube-system",
                     "labels": {"component": "etcd", "tier": "control-plane"}},
        "spec": {"hostNetwork": True,
                 "containers": [{"name": "etcd", "image": LAB_ETCD, "command": ["etcd"]}]},
    }, sort_keys=False)
    cp.write(manifest, text)
    new_image(cp, "v1.31.3")
    assert wait_for(lambda: etcd_rows(cp).get("cp-1", ("", ""))[0] == "3.4.23-0"), etcd_rows(cp)
    assert etcd_rows(cp) == {"cp-1": ("3.4.23-0", "3.5.15-0")}
    out = cp.run("kubeadm", "upgrade", "apply", "v1.31.3", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Current and new manifests of etcd are equal, skipping upgrade" in out.stdout
    assert cp.file(manifest).read_text() == text


def test_v1_32_success_line_node_upgrades_and_no_renewal(nodes: Any) -> None:
    cp = control_plane(nodes, "v1.31.3")
    token = cp.run("kubeadm", "token", "create", "--ttl", "10m").stdout.strip()
    w = nodes("w-1", "worker", "v1.31.3")
    w.start_kubelet()
    path = w.write("/run/kubeadm.yaml", join_config(w, f"{cp.address}:6443", token, pin_of(cp)))
    joined = w.run("kubeadm", "join", "--config", path)
    assert joined.returncode == 0, joined.stdout + joined.stderr
    new_image(cp, "v1.32.1")
    before = cert(cp, "apiserver")

    out = cp.run("kubeadm", "upgrade", "apply", "v1.32.1", "--yes", "--certificate-renewal=false")
    assert out.returncode == 0, out.stdout + out.stderr
    assert ('[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "v1.32.1".\n'
            in out.stdout)
    assert upgraded_to(out.stdout) == KubeVersion(1, 32, 1)
    assert "Renewing" not in out.stdout
    assert cert(cp, "apiserver").serial_number == before.serial_number
    assert cluster_version(cp) == KubeVersion(1, 32, 1)

    # The control plane again (a second control plane would do this): its instance is redone.
    again = cp.run("kubeadm", "upgrade", "node")
    assert again.returncode == 0, again.stdout + again.stderr
    assert is_upgrade_node_success(again.stdout)
    assert "The control plane instance for this node was successfully upgraded!" in again.stdout
    assert cert(cp, "apiserver").serial_number != before.serial_number

    # A worker only gets its kubelet configuration rewritten, read with kubelet.conf.
    config = w.file("/var/lib/kubelet/config.yaml")
    config.write_text(config.read_text() + "# local edit\n")
    node = w.run("kubeadm", "upgrade", "node")
    assert node.returncode == 0, node.stdout + node.stderr
    assert is_upgrade_node_success(node.stdout)
    assert "Skipping phase. Not a control plane node." in node.stdout
    assert "# local edit" not in config.read_text()
    (backup,) = w.file("/etc/kubernetes/tmp").glob("kubeadm-kubelet-config*/config.yaml")
    assert "# local edit" in backup.read_text()
    assert not w.file("/etc/kubernetes/manifests").exists()


def test_check_expiration_and_renew(nodes: Any) -> None:
    cp = control_plane(nodes, "v1.31.3")
    out = cp.run("kubeadm", "certs", "check-expiration")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "[check-expiration] Reading configuration from the cluster..."
    assert lines[1].startswith("[check-expiration] FYI: ")
    rows = {r.name: r for r in parse_cert_expiration(out.stdout)}
    assert [r for r in rows if not rows[r].is_ca] == [
        "admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client",
        "controller-manager.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server",
        "front-proxy-client", "scheduler.conf", "super-admin.conf"]
    assert [r for r in rows if rows[r].is_ca] == ["ca", "etcd-ca", "front-proxy-ca"]
    minute = dt.timedelta(minutes=1)
    api = rows["apiserver"]
    assert api.expires is not None
    assert dt.timedelta(0) <= expiry(cert(cp, "apiserver")) - api.expires < minute
    assert (api.residual, api.authority, api.externally_managed) == ("364d", "ca", False)
    admin = rows["admin.conf"]
    assert admin.expires is not None
    assert expiry(kubeconfig_cert(cp, "admin.conf")) - admin.expires < minute
    assert rows["etcd-peer"].authority == "etcd-ca"
    assert rows["ca"].residual == "9y" and rows["ca"].expires is not None
    assert expiry(cert(cp, "ca")) - rows["ca"].expires < minute
    header = next(line for line in lines if line.startswith("CERTIFICATE "))
    width = len("apiserver-kubelet-client") + 3  # Go's tabwriter: widest cell plus padding
    assert header.startswith("CERTIFICATE".ljust(width) + "EXPIRES ")

    before, admin_cert = cert(cp, "apiserver"), kubeconfig_cert(cp, "admin.conf")
    peer = cert(cp, "etcd/peer")
    one = cp.run("kubeadm", "certs", "renew", "apiserver")
    assert one.returncode == 0, one.stderr
    assert one.stdout.rstrip().endswith("certificate for serving the Kubernetes API renewed")
    assert "Done renewing" not in one.stdout
    middle = cert(cp, "apiserver")
    assert middle.serial_number != before.serial_number
    assert cert(cp, "etcd/peer").serial_number == peer.serial_number

    out = cp.run("kubeadm", "certs", "renew", "all")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert ("certificate embedded in the kubeconfig file for the admin to use and for kubeadm "
            "itself renewed") in lines
    assert "certificate embedded in the kubeconfig file for the super-admin renewed" in lines
    assert sum(line.endswith(" renewed") for line in lines) == 11
    assert lines[-1] == ("Done renewing certificates. You must restart the kube-apiserver, "
                         "kube-controller-manager, kube-scheduler and etcd, so that they can use "
                         "the new certificates.")
    after = cert(cp, "apiserver")
    assert after.serial_number not in (before.serial_number, middle.serial_number)
    assert after.public_key().public_numbers() != before.public_key().public_numbers()
    new_admin = kubeconfig_cert(cp, "admin.conf")
    assert new_admin.serial_number != admin_cert.serial_number
    assert new_admin.subject == admin_cert.subject
    assert expiry(new_admin) >= expiry(admin_cert)
    assert cert(cp, "etcd/peer").serial_number != peer.serial_number
    assert cp.run("kubectl", "get", "nodes").returncode == 0  # the renewed admin.conf gets in

    # The running API double keeps its certificate until it restarts (kubeadm restarts nothing).
    assert served(cp).serial_number == before.serial_number
    pids = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_api(p, cp.address)]
    assert pids
    for p in pids:
        os.kill(int(p.name), signal.SIGTERM)
    assert wait_for(lambda: _serial_or_none(cp) == after.serial_number)

    cp.file(f"{PKI}/front-proxy-client.crt").unlink()
    cp.file(f"{PKI}/etcd/ca.crt").unlink()
    out = cp.run("kubeadm", "certs", "check-expiration")
    assert "!MISSING! front-proxy-client" in out.stdout
    rows = {r.name: r for r in parse_cert_expiration(out.stdout)}
    assert rows["front-proxy-client"].missing and not rows["front-proxy-client"].is_ca
    assert rows["etcd-ca"].missing and rows["etcd-ca"].is_ca
    assert not rows["apiserver"].missing
    assert rows["admin.conf"].expires is not None
    assert expiry(new_admin) - rows["admin.conf"].expires < minute
    info = json.loads(cp.run("kubeadm", "certs", "check-expiration", "-o", "json").stdout)
    assert info["kind"] == "CertificateExpirationInfo"
    by_name = {c["name"]: c for c in info["certificates"]}
    assert by_name["front-proxy-client"]["missing"] is True
    assert by_name["apiserver"]["expirationDate"] == expiry(after).strftime("%Y-%m-%dT%H:%M:%SZ")
    renewed = cp.run("kubeadm", "certs", "renew", "front-proxy-client")
    assert renewed.stdout.rstrip().endswith("MISSING! certificate for the front proxy client")


def _is_api(proc: Path, address: str) -> bool:
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a.endswith(b"kube-apiserver") for a in argv[:2]) and \
        f"--advertise-address={address}".encode() in argv


def _serial_or_none(node: Node) -> int | None:
    try:
        return served(node).serial_number
    except OSError:
        return None


def test_certs_command_per_version(nodes: Any) -> None:
    old = nodes("old-1", "control-plane", "v1.19.4")
    refused = old.run("kubeadm", "certs", "check-expiration")
    assert refused.returncode == 1
    assert refused.stderr.startswith('unknown command "certs" for "kubeadm"')
    out = old.run("kubeadm", "alpha", "certs", "check-expiration")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[check-expiration] Error reading configuration from the Cluster")
    rows = parse_cert_expiration(out.stdout)
    assert rows and all(r.missing for r in rows)
    assert "super-admin.conf" not in {r.name for r in rows}
    new = nodes("new-1", "worker", "v1.31.3")
    gone = new.run("kubeadm", "alpha", "certs", "check-expiration")
    assert gone.returncode == 1
    assert 'unknown command "certs" for "kubeadm alpha"' in gone.stderr


def test_residual_time_is_kubectls_short_duration() -> None:
    import subprocess

    from tests.unit.test_lab_doubles import DOUBLES, PYTHON

    cases = {30: "30s", 3599: "59m", 86399: "23h", 364 * 86400 + 5: "364d", 3649 * 86400: "9y",
             -5: "<invalid>"}
    code = ("from k8sdouble.kubeadmtexts import short_duration\n"
            f"for s in {list(cases)}: print(short_duration(s))")
    got = subprocess.run([PYTHON, "-c", code], cwd=DOUBLES, capture_output=True, text=True)
    assert got.stdout.split() == list(cases.values()), got.stderr
