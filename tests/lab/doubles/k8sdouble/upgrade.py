"""``kubeadm upgrade plan``, ``upgrade apply`` and ``upgrade node``.

Versions come from where kubeadm finds them: its own version is the node image's, the cluster's
is the API double's, and each kubelet's is what its Node reports. Apply enforces kubeadm's skew
policy with kubeadm's own texts, rewrites the control plane's static pod manifests for the new
version, renews the certificates (unless ``--certificate-renewal=false``), and restarts the API
double the way the kubelet restarts a static pod whose manifest changed: the process goes, the
kubelet double starts it again from the new manifest, with the new certificates. The output has
the shape of v1.31 and earlier (``[upgrade/successful] ...``) or of v1.32 on (phases,
``[upgrade] SUCCESS! ...``).

etcd: kubeadm deploys the etcd of its own table (``ETCD``, per minor) and ``upgrade apply`` /
``upgrade node`` rewrite the local etcd manifest to it when it is newer than the running one.
The lab's nodes hold one etcd image, Debian's etcd 3.4.23 tagged ``registry.k8s.io/etcd:3.4.23-0``
(tests/lab/etcdimage.py), and no 3.5 or 3.6 the table names can run there. So the double keeps
the node's etcd manifest as it is, as a real kubeadm does when the ClusterConfiguration pins
etcd's image (``etcd.local.imageTag``): the manifest it renders for etcd equals the running
one, and it says ``Current and new manifests of etcd are equal, skipping upgrade``. ``upgrade
plan`` prints etcd's row as kubeadm does: each control plane's current tag from its etcd mirror
pod (the lab's one image), the target from the table (kubeadm's plan does not read the pin).
Manifest, mirror pod, ``crictl ps`` and etcd's own ``endpoint status`` therefore all say 3.4.23,
before and after an upgrade, and the tool's upgrade gate holds 3.4 to kubeadm's rule
(k8slk_ops/kubeadm/etcdversions.py): one minor below the table's 3.5 is upgradable.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from k8sdouble import (
    addons,
    certs,
    cluster,
    env,
    faults,
    kubeadmconfig,
    kubeadmtexts,
    kubeversions,
    objects,
)
from k8sdouble.client import Client
from k8sdouble.cluster import out
from k8sdouble.errors import ApiError, CommandError
from k8sdouble.kubeadm import Parser
from k8sdouble.nodes import stored_taints

Version = tuple[int, int, int]
MAX_UPGRADE_SKEW = 1
MAX_DOWNGRADE_SKEW = 1
MAX_KUBELET_SKEW = 3
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# What each minor release's kubeadm deploys (registry.k8s.io tags).
ETCD = {25: "3.5.4-0", 26: "3.5.6-0", 27: "3.5.7-0", 28: "3.5.9-0", 29: "3.5.10-0",
        30: "3.5.12-0", 31: "3.5.15-0", 32: "3.5.16-0", 33: "3.5.21-0", 34: "3.6.4-0"}
COREDNS = {25: "v1.9.3", 26: "v1.9.3", 27: "v1.10.1", 28: "v1.10.1", 29: "v1.11.1",
           30: "v1.11.1", 31: "v1.11.3", 32: "v1.11.3", 33: "v1.12.0", 34: "v1.12.1"}
VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
STAMP = "%Y-%m-%d-%H-%M-%S"


def parse(text: str) -> Version:
    return cluster.version_tuple(text)


def vstr(v: Version) -> str:
    return f"v{v[0]}.{v[1]}.{v[2]}"


def _etcd(minor: int) -> str:
    return ETCD.get(minor, ETCD[min(max(minor, 25), 34)])


def etcd_tags(client: Client) -> dict[str, str]:
    """node -> the image tag of its etcd mirror pod (``3.4.23-0``), where kubeadm's plan reads
    each control plane's current etcd."""
    pods = cluster.call(client, "GET", "/api/v1/namespaces/kube-system/pods").get("items") or []
    tags = {}
    for pod in pods:
        if (pod.get("metadata", {}).get("labels") or {}).get("component") != "etcd":
            continue
        containers = pod.get("spec", {}).get("containers") or [{}]
        tags[str(pod["spec"].get("nodeName", ""))] = str(containers[0].get("image", "")) \
            .rpartition(":")[2]
    return tags


def _coredns(minor: int) -> str:
    return COREDNS.get(minor, COREDNS[min(max(minor, 25), 34)])


# --- what the cluster says ----------------------------------------------------------------------

def client_for_node() -> Client:
    """admin.conf on a control plane, kubelet.conf on a worker, as ``upgrade node`` loads them."""
    if env.path(env.ADMIN_CONF).exists() or os.environ.get("KUBECONFIG", "") not in (
            "", env.ADMIN_CONF):
        return cluster.admin_client()
    try:
        text = env.path(env.KUBELET_CONF).read_text()
    except OSError:
        raise CommandError(f"failed to load admin kubeconfig: open {env.KUBELET_CONF}: no such "
                           "file or directory") from None
    return Client.from_kubeconfig(text, timeout=10)


def about(client: Client) -> dict[str, Any]:
    answer: dict[str, Any] = cluster.call(client, "GET", "/lab/v1/cluster")
    return answer


def kubelets(client: Client) -> list[tuple[str, str, bool]]:
    """(node, kubelet version, is a control plane) for every Node."""
    items = cluster.call(client, "GET", "/api/v1/nodes").get("items") or []
    return [(i["metadata"]["name"], i["status"]["nodeInfo"]["kubeletVersion"],
             kubeversions.is_control_plane(i["metadata"].get("labels", {})))
            for i in items]


def migrate_control_plane_marks(client: Client, minor: int) -> None:
    """What ``upgrade apply`` does to every control-plane Node's kubeadm labels and taints
    on the way to ``minor`` (KEP-2067's stages, kubeversions.upgraded_marks), silently as the
    real one: a v1.21 cluster upgraded to v1.24 has the control-plane taint beside master."""
    for item in cluster.call(client, "GET", "/api/v1/nodes").get("items") or []:
        labels = dict(item["metadata"].get("labels") or {})
        if not kubeversions.is_control_plane(labels):
            continue
        taints = stored_taints(item.get("spec") or {})
        new_labels, new_taints = kubeversions.upgraded_marks(minor, labels, taints)
        if (new_labels, new_taints) == (labels, taints):
            continue
        gone: dict[str, str | None] = {key: None for key in labels if key not in new_labels}
        cluster.call(client, "PATCH", f"/api/v1/nodes/{item['metadata']['name']}",
                     {"metadata": {"labels": {**new_labels, **gone}},
                      "spec": {"taints": new_taints}}, objects.MERGE_PATCH)


def config_lines(modern: bool, say: Callable[[str], None] = out) -> None:
    """How kubeadm says where it read the ClusterConfiguration (it changed in v1.32)."""
    if modern:
        say('[upgrade] Reading configuration from the "kubeadm-config" ConfigMap in namespace '
            '"kube-system"...')
        say("[upgrade] Use 'kubeadm init phase upload-config --config your-config-file' to "
            "re-upload it.")
    else:
        say("[upgrade/config] Reading configuration from the cluster...")
        say("[upgrade/config] FYI: You can look at this config file with "
            "'kubectl -n kube-system get cm kubeadm-config -o yaml'")


# --- the skew policy ----------------------------------------------------------------------------

def policy(new: Version, new_str: str, current: Version, kubeadm: Version, kubeadm_str: str,
           kubelet_versions: list[str]) -> tuple[list[str], list[str]]:
    """kubeadm's EnforceVersionPolicies: (mandatory, skippable) errors."""
    mandatory: list[str] = []
    skippable: list[str] = []
    if new[1] > current[1] + MAX_UPGRADE_SKEW:
        mandatory.append(f'Specified version to upgrade to "{new_str}" is too high; kubeadm can '
                         f"upgrade only {MAX_UPGRADE_SKEW} minor version at a time")
    if new[1] < current[1] - MAX_DOWNGRADE_SKEW:
        mandatory.append(f'Specified version to downgrade to "{new_str}" is too low; kubeadm can '
                         f"downgrade only {MAX_DOWNGRADE_SKEW} minor version at a time")
    if kubeadm < new:
        if new[1] > kubeadm[1]:
            mandatory.append(f'Specified version to upgrade to "{new_str}" is at least one minor '
                             f"release higher than the kubeadm minor release ({new[1]} > "
                             f"{kubeadm[1]}). Such an upgrade is not supported")
        else:
            skippable.append(f'Specified version to upgrade to "{new_str}" is higher than the '
                             f'kubeadm version "{kubeadm_str}". Upgrade kubeadm first using the '
                             "tool you used to install kubeadm")
    if kubeadm[:2] > new[:2]:
        skippable.append(f'Kubeadm version "{kubeadm_str}" can only be used to upgrade to '
                         f'Kubernetes version "v{kubeadm[0]}.{kubeadm[1]}"')
    too_old = sorted({v for v in kubelet_versions
                      if v and parse(v)[1] < new[1] - MAX_KUBELET_SKEW})
    if too_old:
        skippable.append("There are kubelets in this cluster that are too old that have these "
                         f"versions [{' '.join(too_old)}]")
    return mandatory, skippable


def _listed(errors: list[str]) -> str:
    return "".join(f"\t- {e}\n" for e in errors)


def enforce(new: Version, new_str: str, current: Version, kubelet_versions: list[str],
            force: bool) -> None:
    node = env.node()
    mandatory, skippable = policy(new, new_str, current, parse(node.version), node.version,
                                  kubelet_versions)
    if mandatory:
        raise CommandError("[upgrade/version] FATAL: the --version argument is invalid due to "
                           f"these fatal errors:\n\n{_listed(mandatory)}\nPlease fix the "
                           "misalignments highlighted above and try upgrading again")
    if skippable and not force:
        raise CommandError("[upgrade/version] FATAL: the --version argument is invalid due to "
                           f"these errors:\n\n{_listed(skippable)}\nCan be bypassed if you pass "
                           "the --force flag")
    if skippable:
        out(f"[upgrade/version] Found {len(skippable)} potential version compatibility errors but "
            f"skipping since the --force flag is set: \n\n{_listed(skippable)}")


# --- plan ---------------------------------------------------------------------------------------

def plan(output: str) -> int:
    node = env.node()
    modern = parse(node.version)[1] >= 32
    client = cluster.admin_client()
    if output not in ("", "text", "json", "yaml"):
        raise CommandError(f'unable to match a printer suitable for the output format "{output}", '
                           "allowed formats are: json,text,yaml", hint=False)
    lines: list[str] = []
    say = lines.append
    if modern:
        config_lines(True, say)
        say("[upgrade/preflight] Running preflight checks")
    else:
        say("[preflight] Running pre-flight checks.")
        config_lines(False, say)
    info = about(client)
    current_str = str(info.get("version") or node.version)
    current, kubeadm = parse(current_str), parse(node.version)
    nodes = kubelets(client)
    say("[upgrade] Running cluster health checks")
    say("[upgrade] Fetching available versions to upgrade to")
    say(f"[upgrade/versions] Cluster version: {vstr(current)[1:]}")
    say(f"[upgrade/versions] kubeadm version: {node.version}")
    target: Version | None = None
    if kubeadm > current:
        mandatory, _ = policy(kubeadm, node.version, current, kubeadm, node.version, [])
        if mandatory:
            for e in mandatory:
                say(f"[upgrade/versions] WARNING: {e}")
        else:
            target = kubeadm
            say(f"[upgrade/versions] Target version: {node.version}")
    say(f"[upgrade/versions] Latest version in the v{current[0]}.{current[1]} series: "
        f"{vstr(max(current, kubeadm) if kubeadm[:2] == current[:2] else current)}")
    components = _components(nodes, current, target, etcd_tags(client))
    if output in ("json", "yaml"):
        for line in lines:
            print(line, file=sys.stderr, flush=True)
        doc = _plan_doc(components, target, current)
        print(json.dumps(doc, indent=4) if output == "json"
              else yaml.safe_dump(doc, sort_keys=False), end="\n" if output == "json" else "")
        return 0
    for line in lines:
        out(line)
    if target is None:
        if kubeadm <= current:
            out()
            out("Awesome, you're up-to-date! Enjoy!")
        return 0
    per_node = kubeadm[1] >= 29
    out()
    out("Components that must be upgraded manually after you have upgraded the control plane "
        "with 'kubeadm upgrade apply':")
    kubelet_rows = [c for c in components if c[0] == "kubelet"]
    others = [c for c in components if c[0] != "kubelet"]
    if per_node:
        rows = ["COMPONENT\tNODE\tCURRENT\tTARGET"] + [
            f"{name}\t{n}\t{cur}\t{new}" for name, n, cur, new in kubelet_rows]
    else:
        counts: dict[str, int] = {}
        for _, _, cur, _ in kubelet_rows:
            counts[cur] = counts.get(cur, 0) + 1
        head = "AVAILABLE" if kubeadm[1] < 20 else "TARGET"
        rows = [f"COMPONENT\tCURRENT\t{head}"] + [
            f"kubelet\t{n} x {cur}\t{vstr(target)}" for cur, n in sorted(counts.items())]
    for line in kubeadmtexts.tabwrite(rows):
        out(line)
    out()
    out("Upgrade to the latest stable version:" if target[:2] != current[:2]
        else f"Upgrade to the latest version in the v{current[0]}.{current[1]} series:")
    out()
    if per_node:
        rows = ["COMPONENT\tNODE\tCURRENT\tTARGET"] + [
            f"{name}\t{n}\t{cur}\t{new}" for name, n, cur, new in others]
    else:
        seen: list[tuple[str, str, str]] = []
        for name, _, cur, new in others:
            if (name, cur, new) not in seen:
                seen.append((name, cur, new))
        rows = ["COMPONENT\tCURRENT\tTARGET"] + [f"{n}\t{c}\t{t}" for n, c, t in seen]
    for line in kubeadmtexts.tabwrite(rows):
        out(line)
    out()
    out("You can now apply the upgrade by executing the following command:")
    out()
    out(f"\tkubeadm upgrade apply {vstr(target)}")
    out()
    out("_____________________________________________________________________")
    out()
    out()
    out("The table below shows the current state of component configs as understood by this "
        "version of kubeadm.")
    out('Configs that have a "yes" mark in the "MANUAL UPGRADE REQUIRED" column require manual '
        "config upgrade or")
    out("resetting to kubeadm defaults before a successful upgrade can be performed. The version "
        "to manually")
    out('upgrade to is denoted in the "PREFERRED VERSION" column.')
    out()
    for line in kubeadmtexts.tabwrite([
            "API GROUP\tCURRENT VERSION\tPREFERRED VERSION\tMANUAL UPGRADE REQUIRED",
            "kubeproxy.config.k8s.io\tv1alpha1\tv1alpha1\tno",
            "kubelet.config.k8s.io\tv1beta1\tv1beta1\tno"]):
        out(line)
    out("_____________________________________________________________________")
    out()
    return 0


def _components(nodes: list[tuple[str, str, bool]], current: Version,
                target: Version | None, etcd_now: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(component, node, current, target) rows, kubelets first, as kubeadm orders them.
    ``etcd_now``: each control plane's running etcd tag (without a real etcd, a lab run with
    none: the table's for the cluster's minor)."""
    new = target or current
    rows = [("kubelet", name, kv, vstr(new)) for name, kv, _ in nodes]
    planes = [name for name, _, cp in nodes if cp] or [env.node().name]
    for component in COMPONENTS:
        rows += [(component, n, vstr(current), vstr(new)) for n in planes]
    rows.append(("kube-proxy", "", vstr(current)[1:], vstr(new)))
    rows.append(("CoreDNS", "", _coredns(current[1]), _coredns(new[1])))
    rows += [("etcd", n, etcd_now.get(n) or _etcd(current[1]), _etcd(new[1])) for n in planes]
    return rows


def _plan_doc(components: list[tuple[str, str, str, str]], target: Version | None,
              current: Version) -> dict[str, Any]:
    upgrades = []
    if target is not None:
        upgrades.append({
            "description": f"version in the v{current[0]}.{current[1]} series"
            if target[:2] == current[:2] else "stable version",
            "components": [dict({"name": c, "currentVersion": cur, "newVersion": new},
                                **({"nodeName": n} if n else {}))
                           for c, n, cur, new in components],
        })
    return {
        "kind": "UpgradePlan", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
        "availableUpgrades": upgrades,
        "configVersions": [
            {"name": "kubeproxy.config.k8s.io", "currentVersion": "v1alpha1",
             "preferredVersion": "v1alpha1", "manualUpgradeRequired": False},
            {"name": "kubelet.config.k8s.io", "currentVersion": "v1beta1",
             "preferredVersion": "v1beta1", "manualUpgradeRequired": False},
        ],
    }


# --- the control plane instance ------------------------------------------------------------------

def _manifest(name: str) -> Path:
    return env.path(f"{env.MANIFESTS}/{name}.yaml")


def _args(command: list[str], flag: str) -> str | None:
    return next((a.split("=", 1)[1] for a in command if a.startswith(flag + "=")), None)


def _apiserver_command() -> list[str]:
    try:
        doc = yaml.safe_load(_manifest("kube-apiserver").read_text()) or {}
        return [str(c) for c in doc["spec"]["containers"][0]["command"]]
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return []


def apiserver_pids() -> list[int]:
    """The running API double of this node, found by the address and port of its manifest."""
    command = _apiserver_command()
    if not command:
        return []
    wanted = {a for a in command if a.startswith(("--advertise-address=", "--secure-port="))}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = [a.decode() for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if any(Path(a).name == "kube-apiserver" for a in argv[:2]) and wanted <= set(argv):
            pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def restart_apiserver(version: Version, timeout: float = 60) -> None:
    """Stop the API double so that the kubelet starts it again from its new manifest, then wait
    until it answers with the new version (kubeadm waits for the new pod's hash)."""
    pids = apiserver_pids()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not pids:
        return
    command = _apiserver_command()
    local = f"https://{_args(command, '--advertise-address')}:{_args(command, '--secure-port')}"
    ca_pem = env.path(f"{env.PKI}/ca.crt").read_bytes()
    probe = Client(local, ca_pem, timeout=2)  # this node's instance, not the endpoint's
    while time.monotonic() < deadline:
        try:
            if probe.request("GET", "/version").get("gitVersion") == vstr(version):
                out("[apiclient] Found 1 Pods for label selector component=kube-apiserver")
                return
        except (ApiError, AttributeError):
            pass
        time.sleep(0.1)
    raise CommandError("[upgrade/apply] FATAL: couldn't upgrade control plane. kubeadm has tried "
                       "to recover everything into the earlier state. Errors faced: timed out "
                       "waiting for the condition")


def upgrade_static_pods(version: Version, renew: bool, prefix: str,
                        kept: dict[str, Any] | None = None) -> None:
    """New manifests for ``version`` (old ones backed up), certificates renewed, pods restarted.

    As kubeadm: each manifest is written again from the cluster's ClusterConfiguration
    (``kept``, the kubeadm-config ConfigMap), so a flag edited by hand does not survive it; a
    component whose new manifest equals the old one is left running, unless its certificates
    were just renewed."""
    current = _apiserver_command()
    address = _args(current, "--advertise-address") or env.node().address
    port = int(_args(current, "--secure-port") or env.API_PORT)
    commands = cluster.component_commands(address, port, vstr(version), kept)
    now = dt.datetime.now()
    backup = f"{env.K8S}/tmp/kubeadm-backup-manifests-{now.strftime(STAMP)}"
    upgraded = f"{env.K8S}/tmp/kubeadm-upgraded-manifests{now.strftime('%H%M%S%f')}"
    out(f'[{prefix}] Writing new Static Pod manifests to "{upgraded}"')
    renewals = {
        "etcd": ["etcd-server", "etcd-peer", "etcd-healthcheck-client"],
        "kube-apiserver": ["apiserver", "apiserver-kubelet-client", "front-proxy-client",
                           "apiserver-etcd-client"],
        "kube-controller-manager": ["controller-manager.conf"],
        "kube-scheduler": ["scheduler.conf"],
    }
    for component in ("etcd", *COMPONENTS):
        target = _manifest(component)
        if not target.exists():
            continue
        out(f'[{prefix}] Preparing for "{component}" upgrade')
        if component == "etcd":
            out(f"[{prefix}] Current and new manifests of etcd are equal, skipping upgrade")
            out("[upgrade/etcd] Waiting for etcd to become available")
        if renew:
            for name in renewals[component]:
                leaf = next(x for x in certs.leaves() if x.name == name)
                if certs.read_leaf(leaf) is not None:
                    out(f"[{prefix}] Renewing {name} certificate")
                    certs.renew_one(leaf)
        if component == "etcd":
            continue
        text = target.read_text()
        doc = yaml.safe_load(text)
        container = doc["spec"]["containers"][0]
        image = f"registry.k8s.io/{component}:{vstr(version)}"
        same = (container.get("image"), container.get("command")) == (image, commands[component])
        if same and not renew:  # renewed certificates restart the component all the same
            out(f"[{prefix}] Current and new manifests of {component} are equal, skipping "
                "upgrade")
            continue
        env.write_atomic(f"{backup}/{component}.yaml", text, 0o600)
        container["image"] = image
        container["command"] = commands[component]
        env.write_atomic(f"{env.MANIFESTS}/{component}.yaml",
                         yaml.safe_dump(doc, sort_keys=False), 0o600)
        out(f'[{prefix}] Moved new manifest to "{env.MANIFESTS}/{component}.yaml" and backed up '
            f'old manifest to "{backup}/{component}.yaml"')
        out(f"[{prefix}] Waiting for the kubelet to restart the component")
        out(f"[{prefix}] This can take up to 5m0s")
        if component == "kube-apiserver":
            restart_apiserver(version)
        else:
            out(f"[apiclient] Found 1 Pods for label selector component={component}")
        out(f'[{prefix}] Component "{component}" upgraded successfully!')
    if renew:  # the admins' kubeconfig files go with the control plane
        certs.renew(["admin.conf", "super-admin.conf"])


def write_kubelet_config(modern: bool, client: Client, version: str) -> None:
    """Back up and rewrite /var/lib/kubelet/config.yaml from the cluster's kubelet config (the
    kubelet-config ConfigMap of the cluster's ``version``)."""
    kubelet = kubeadmconfig.download(client, kubeadmconfig.kubelet_config_name(version), "kubelet")
    stamp = dt.datetime.now().strftime("%H%M%S%f")
    backup = f"{env.K8S}/tmp/kubeadm-kubelet-config{stamp}/config.yaml"
    prefix = "upgrade/kubelet-config" if modern else "upgrade"
    current = env.path(env.KUBELET_CONFIG)
    if current.exists():
        env.write_atomic(backup, current.read_bytes(), 0o644)
        out(f"[{prefix}] Backing up kubelet config file to {backup}")
    out(f'[{prefix if modern else "kubelet-start"}] Writing kubelet configuration to file '
        f'"{env.KUBELET_CONFIG}"')
    env.write_atomic(env.KUBELET_CONFIG, yaml.safe_dump(kubelet, sort_keys=False), 0o644)
    if modern:
        out("[upgrade/kubelet-config] The kubelet configuration for this node was successfully "
            "upgraded!")


# --- apply --------------------------------------------------------------------------------------

def confirm(modern: bool) -> None:
    prefix = "upgrade" if modern else "upgrade/confirm"
    print(f"[{prefix}] Are you sure you want to proceed? [y/N]: ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CommandError("won't proceed; the user didn't answer (Y|y) in order to continue")


def apply(version_arg: str | None, yes: bool, force: bool, renew: bool) -> int:
    node = env.node()
    modern = parse(node.version)[1] >= 32
    if not version_arg:
        raise CommandError("missing one or more required arguments. Required arguments: "
                           "[version]")
    m = VERSION_RE.match(version_arg)
    if m is None:
        raise CommandError(f'[upgrade/version] FATAL: version "{version_arg}" doesn\'t match '
                           "patterns for neither semantic version nor labels (stable, latest, "
                           "...)")
    new = (int(m[1]), int(m[2]), int(m[3]))
    new_str = vstr(new)
    client = cluster.admin_client()
    config_lines(modern)
    faults.check("preflight")
    out("[preflight] Running pre-flight checks." if not modern
        else "[upgrade/preflight] Running preflight checks")
    info = about(client)
    current = parse(str(info.get("version") or node.version))
    out("[upgrade] Running cluster health checks")
    if modern:
        out(f'[upgrade/preflight] You have chosen to upgrade the cluster version to "{new_str}"')
    else:
        out(f'[upgrade/version] You have chosen to change the cluster version to "{new_str}"')
    out(f"[upgrade/versions] Cluster version: {vstr(current)}")
    out(f"[upgrade/versions] kubeadm version: {node.version}")
    enforce(new, new_str, current, [kv for _, kv, _ in kubelets(client)], force)
    if not (yes or force):
        confirm(modern)
        out()
    pull = "upgrade/preflight" if modern else "upgrade/prepull"
    out(f"[{pull}] Pulling images required for setting up a Kubernetes cluster")
    out(f"[{pull}] This might take a minute or two, depending on the speed of your internet "
        "connection")
    out(f"[{pull}] You can also perform this action beforehand using 'kubeadm config images "
        "pull'")
    faults.check("control-plane")
    prefix = "upgrade/control-plane" if modern else "upgrade/apply"
    out(f'[{prefix}] Upgrading your Static Pod-hosted control plane to version "{new_str}" '
        "(timeout: 5m0s)...")
    kept = kubeadmconfig.download(client, kubeadmconfig.KUBEADM_CONFIG, "ClusterConfiguration")
    upgrade_static_pods(new, renew, "upgrade/staticpods", kept)
    if modern:
        out("[upgrade/control-plane] The control plane instance for this node was successfully "
            "upgraded!")
    faults.check("upload-config")
    config = info.get("config")
    if isinstance(config, dict):
        config = dict(config, kubernetesVersion=new_str)
    cluster.call(client, "PATCH", "/lab/v1/cluster", {"version": new_str, "config": config})
    kubelet = kubeadmconfig.download(
        client, kubeadmconfig.kubelet_config_name(vstr(current)), "kubelet")
    kubeadmconfig.upload(client, kubeadmconfig.kept_cluster_configuration(
        kept, node.version, new_str), kubelet, new_str)
    out('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the '
        '"kube-system" Namespace')
    out(f'[kubelet] Creating a ConfigMap "{kubeadmconfig.kubelet_config_name(new_str)}" in '
        "namespace kube-system with the configuration for the kubelets in the cluster")
    faults.check("kubelet-config")
    write_kubelet_config(modern, client, new_str)
    faults.check("bootstrap-token")
    if modern:
        out("[upgrade/bootstrap-token] Configuring bootstrap token and cluster-info RBAC rules")
    for line in ("get nodes", "post CSRs in order for nodes to get long term certificate "
                 "credentials"):
        out(f"[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to {line}")
    out("[bootstrap-token] Configured RBAC rules to allow the csrapprover controller "
        "automatically approve CSRs from a Node Bootstrap Token")
    out("[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node "
        "client certificates in the cluster")
    migrate_control_plane_marks(client, new[1])
    faults.check("addon")
    out("[addons] Applied essential addon: CoreDNS")
    addons.upgrade_kube_proxy(client, new_str)
    out("[addons] Applied essential addon: kube-proxy")
    out()
    if modern:
        out(f'[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "{new_str}".')
        out()
        out("[upgrade] Now please proceed with upgrading the rest of the nodes by following the "
            "right order.")
    else:
        out(f'[upgrade/successful] SUCCESS! Your cluster was upgraded to "{new_str}". Enjoy!')
        out()
        out("[upgrade/kubelet] Now that your control plane is upgraded, please proceed with "
            "upgrading your kubelets if you haven't already done so.")
    return 0


# --- node ---------------------------------------------------------------------------------------

def upgrade_node(renew: bool) -> int:
    node = env.node()
    modern = parse(node.version)[1] >= 32
    control_plane = _manifest("kube-apiserver").exists()
    client = client_for_node()
    if modern:
        config_lines(True)
    else:
        out("[upgrade] Reading configuration from the cluster...")
        out("[upgrade] FYI: You can look at this config file with "
            "'kubectl -n kube-system get cm kubeadm-config -o yaml'")
    faults.check("preflight")
    info = about(client)
    version_str = str(info.get("version") or node.version)
    version = parse(version_str)
    pre = "upgrade/preflight" if modern else "preflight"
    out(f"[{pre}] Running pre-flight checks")
    if control_plane:
        kubeadm = parse(node.version)
        if version[1] > kubeadm[1]:
            raise CommandError("[upgrade/version] FATAL: the --version argument is invalid due "
                               "to these fatal errors:\n\n\t- Specified version to upgrade to "
                               f'"{vstr(version)}" is at least one minor release higher than the '
                               f"kubeadm minor release ({version[1]} > {kubeadm[1]}). Such an "
                               "upgrade is not supported\n\nPlease fix the misalignments "
                               "highlighted above and try upgrading again")
        out(f"[{pre}] Pulling images required for setting up a Kubernetes cluster")
        out(f"[{pre}] This might take a minute or two, depending on the speed of your internet "
            "connection")
        out(f"[{pre}] You can also perform this action beforehand using 'kubeadm config images "
            "pull'")
        faults.check("control-plane")
        prefix = "upgrade/control-plane" if modern else "upgrade"
        out(f'[{prefix}] Upgrading your Static Pod-hosted control plane instance to version '
            f'"{vstr(version)}"...')
        kept = kubeadmconfig.download(client, kubeadmconfig.KUBEADM_CONFIG,
                                      "ClusterConfiguration")
        upgrade_static_pods(version, renew, "upgrade/staticpods", kept)
        out(f"[{prefix}] The control plane instance for this node was successfully "
            + ("upgraded!" if modern else "updated!"))
    else:
        out(f"[{pre}] Skipping prepull. Not a control plane node.")
        out(f"[{'upgrade/control-plane' if modern else 'upgrade'}] Skipping phase. Not a control "
            "plane node.")
        if modern:
            out("[upgrade/kubeconfig] Skipping phase. Not a control plane node.")
    faults.check("kubelet-config")
    write_kubelet_config(modern, client, version_str)
    if modern:
        faults.check("addon")
        if control_plane:
            out("[upgrade/addon] Applied essential addon: CoreDNS")
            out("[upgrade/addon] Applied essential addon: kube-proxy")
        else:
            out("[upgrade/addon] Skipping the addon/coredns phase. Not a control plane node.")
            out("[upgrade/addon] Skipping the addon/kube-proxy phase. Not a control plane node.")
    out()
    out("[upgrade] The configuration for this node was successfully updated!")
    out("[upgrade] Now you should go ahead and upgrade the kubelet package using your package "
        "manager.")
    return 0


# --- the command line ---------------------------------------------------------------------------

def _renewal(value: str) -> bool:
    if value.lower() in ("true", "1", "t"):
        return True
    if value.lower() in ("false", "0", "f"):
        return False
    raise CommandError(f'Error: invalid argument "{value}" for "--certificate-renewal" flag: '
                       f'strconv.ParseBool: parsing "{value}": invalid syntax', hint=False)


def control_plane_phase(renew: bool) -> int:
    """``kubeadm upgrade node phase control-plane``: this control plane's static pod manifests
    written again from the kubeadm-config ConfigMap (at the cluster's version), each component
    whose manifest changed restarted; a node that is no control plane is skipped."""
    node = env.node()
    modern = parse(node.version)[1] >= 32
    prefix = "upgrade/control-plane" if modern else "upgrade"
    if not _manifest("kube-apiserver").exists():
        out(f"[{prefix}] Skipping phase. Not a control plane node.")
        return 0
    client = client_for_node()
    kept = kubeadmconfig.download(client, kubeadmconfig.KUBEADM_CONFIG, "ClusterConfiguration")
    version = parse(str(kept.get("kubernetesVersion") or node.version))
    out(f'[{prefix}] Upgrading your Static Pod-hosted control plane instance to version '
        f'"{vstr(version)}"...')
    upgrade_static_pods(version, renew, "upgrade/staticpods", kept)
    out(f"[{prefix}] The control plane instance for this node was successfully "
        + ("upgraded!" if modern else "updated!"))
    return 0


def main(args: list[str]) -> int:
    if not args:
        raise CommandError('Error: missing subcommand; "upgrade" is not meant to be run on its '
                           "own", hint=False)
    sub, rest = args[0], args[1:]
    if sub == "plan":
        p = Parser(prog="kubeadm upgrade plan")
        p.add_argument("version", nargs="?")
        p.add_argument("-o", "--output", default="")
        p.add_argument("--config")
        p.add_argument("--v", "-v")
        ns = p.parse_args(rest)
        return plan(ns.output)
    if sub == "apply":
        p = Parser(prog="kubeadm upgrade apply")
        p.add_argument("version", nargs="?")
        p.add_argument("-y", "--yes", action="store_true")
        p.add_argument("-f", "--force", action="store_true")
        p.add_argument("--certificate-renewal", nargs="?", const="true", default="true")
        p.add_argument("--etcd-upgrade", nargs="?", const="true", default="true")
        p.add_argument("--config")
        p.add_argument("--ignore-preflight-errors")
        p.add_argument("--v", "-v")
        ns = p.parse_args(rest)
        return apply(ns.version, ns.yes, ns.force, _renewal(ns.certificate_renewal))
    if sub == "node" and rest[:2] == ["phase", "control-plane"]:
        p = Parser(prog="kubeadm upgrade node phase control-plane")
        p.add_argument("--certificate-renewal", nargs="?", const="true", default="true")
        p.add_argument("--etcd-upgrade", nargs="?", const="true", default="true")
        p.add_argument("--dry-run", action="store_true")
        p.add_argument("--kubeconfig")
        p.add_argument("--patches")
        p.add_argument("--v", "-v")
        ns = p.parse_args(rest[2:])
        return control_plane_phase(_renewal(ns.certificate_renewal))
    if sub == "node":
        p = Parser(prog="kubeadm upgrade node")
        p.add_argument("--certificate-renewal", nargs="?", const="true", default="true")
        p.add_argument("--etcd-upgrade", nargs="?", const="true", default="true")
        p.add_argument("--config")
        p.add_argument("--ignore-preflight-errors")
        p.add_argument("--v", "-v")
        ns = p.parse_args(rest)
        return upgrade_node(_renewal(ns.certificate_renewal))
    raise CommandError(f'Error: unknown command "{sub}" for "kubeadm upgrade"\nRun \'kubeadm '
                       "upgrade --help' for usage.", hint=False)
