"""The lab: LinuxKit-like Kubernetes nodes on one machine, and the handles tests use on them.

``Lab.up`` boots the nodes and writes the inventory; ``Lab.open`` finds a running lab again
(``down`` and ``fault`` usually run in another process than ``up``); ``ssh``, ``kubelet_exec``
and ``read`` look at a node the way an operator (or the tool) would.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.lab import etcdimage, image, inventory, network, preflight, procs, slots
from tests.lab import state as st
from tests.lab.errors import LabError
from tests.lab.keys import new_ed25519, write_pair
from tests.lab.node import NAMESPACE, PATH, Node, NodeFiles
from tests.lab.state import CONTROL_PLANE, WORKER, LabState, NodeSpec, NodeState

DEFAULT_VERSION = "v1.31.3"
VERSION = re.compile(r"v\d+\.\d+\.\d+")
KUBEADM_LOG = "/var/log/kubeadm.out.log"
BALANCER_HOST = 250  # the load balancer's address: 127.0.SLOT.250
REPO = Path(__file__).resolve().parents[2]
FAULTS = (
    "ssh-stop", "ssh-start", "partition", "heal", "kubeadm-fail", "kubeadm-hang", "reboot",
    "drain-block", "drain-unblock", "certs-expire", "no-boot", "etcd-stop", "etcd-start",
    "replace",
)
# Run in a control plane's kubelet container: re-issue certificates to expire soon.
_EXPIRE_CERTS = (
    "import sys; sys.path.insert(0, '/opt/lab/doubles'); from k8sdouble import certs; "
    "print('\\n'.join(certs.expire_soon(sys.argv[2:], int(sys.argv[1]))))"
)
REBOOT_PAUSE = 1.0  # from ``reboot`` in a node's shell to the node going down
POWER_OFF = 1.0  # how long a rebooting node stays down before it boots
_exec_ids = itertools.count(1)


def _hang_switch(args: tuple[str, ...]) -> str:
    """The hang switch's content: ``hang``, or ``PHASE LINES`` (see k8sdouble/faults.py)."""
    if not args:
        return "hang\n"
    if len(args) == 1:
        return f"{args[0]} 0\n"
    if len(args) == 3 and args[1] == "--lines" and args[2].isdigit():
        return f"{args[0]} {args[2]}\n"
    raise LabError("usage: kubeadm-hang [PHASE [--lines N]]")


class Lab:
    """A running (or stopped) lab in directory ``dir``."""

    def __init__(self, lab_dir: Path, lab_state: LabState) -> None:
        self.dir = lab_dir
        self.state = lab_state

    # -- life cycle -----------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        lab_dir: Path | str,
        nodes: int = 3,
        control_planes: int = 1,
        kubernetes_version: str = DEFAULT_VERSION,
        settle: float = 5.0,
        ready_delay: float = 1.0,
        slot: int | None = None,
        load_balancer: bool = False,
        strict_network: bool = True,
        pod_network_addon: bool = True,
        real_etcd: bool = True,
    ) -> Lab:
        """Boot ``nodes`` fresh nodes concurrently (``cp-1..cp-M`` then ``w-1..``), wait until
        each accepts SSH, write ``inventory.yml``, ``known_hosts`` and ``lab.json``. With
        ``load_balancer``, the inventory's controlPlaneEndpoint is a TCP load balancer on
        ``127.0.SLOT.250:6443`` in front of every control plane (see ``balancer.py``). With
        ``strict_network`` (the default), each kubelet keeps its Node NotReady
        (NetworkPluginNotReady) until a CNI config is in its /etc/cni/net.d, as a real kubelet
        does. With ``pod_network_addon`` (the default), the inventory lists the lab's CNI
        manifest (copied to ``cni/lab-cni.yaml`` beside it) as ``cluster.addons``."""
        lab_dir = Path(lab_dir).resolve()
        _validate(nodes, control_planes, kubernetes_version, settle, ready_delay)
        preflight.check(real_etcd)
        lab_dir.mkdir(parents=True, exist_ok=True)
        if (lab_dir / "lab.json").exists() and st.load(lab_dir).running:
            raise LabError(f"a lab is already running in {lab_dir}: down it first")
        for old in ("nodes", "image", "etcd"):
            shutil.rmtree(lab_dir / old, ignore_errors=True)
        count = nodes

        def busy(s: int) -> str | None:
            for i in range(count):
                why = preflight.address_in_use(f"127.0.{s}.{11 + i}")
                if why:
                    return why
            if load_balancer:
                return preflight.address_in_use(f"127.0.{s}.{BALANCER_HOST}")
            return None

        chosen = slots.claim(lab_dir, slot, busy)
        # A lab that died before its ``down`` may have left this slot's firewall table, with
        # its partitioned addresses: the new nodes would time out as if cut off.
        network.remove(chosen)
        specs = [
            NodeSpec(
                f"cp-{i + 1}" if i < control_planes else f"w-{i + 1 - control_planes}",
                f"127.0.{chosen}.{11 + i}",
                CONTROL_PLANE if i < control_planes else WORKER,
            )
            for i in range(nodes)
        ]
        lab = cls(
            lab_dir,
            LabState(chosen, True, settle, ready_delay,
                     [NodeState(s, kubernetes_version) for s in specs],
                     f"127.0.{chosen}.{BALANCER_HOST}" if load_balancer else "",
                     strict_network, real_etcd=real_etcd),
        )
        st.save(lab_dir, lab.state)
        try:
            write_pair(new_ed25519("k8slk-lab"), lab_dir / "id_ed25519")
            image.DOUBLES.mkdir(exist_ok=True)
            image.build_image(lab_dir / "image")
            if real_etcd:  # the etcd image the control planes' containerd holds
                etcdimage.build(lab_dir / "image")
            with ThreadPoolExecutor(max_workers=min(nodes, 8)) as pool:
                list(pool.map(lab._first_boot, lab.state.nodes))
            lab.rewrite_known_hosts()
            if lab.state.balancer:
                lab._start_balancer()
            addons = inventory.copy_cni(lab_dir) if pod_network_addon else ()
            inventory.write(lab.inventory_path,
                            inventory.render(specs, kubernetes_version, lab.state.balancer,
                                             addons))
        except BaseException:
            lab.down()
            raise
        st.save(lab_dir, lab.state)
        return lab

    @classmethod
    def open(cls, lab_dir: Path | str) -> Lab:
        lab_dir = Path(lab_dir).resolve()
        try:
            return cls(lab_dir, st.load(lab_dir))
        except FileNotFoundError:
            raise LabError(f"no lab in {lab_dir} (no lab.json)") from None

    def down(self) -> None:
        """Stop every process of every node, drop the lab's firewall table and cgroups,
        release the slot. Mounts live only in the nodes' namespaces and vanish with them.
        Safe to run twice."""
        errors: list[str] = []
        # A lab whose slot was taken over (it was stale) must not touch the new owner's nodes:
        # it only kills the processes it recorded itself.
        ours = slots.owner(self.slot) in (None, self.dir)
        for n in self.state.nodes:
            if ours:
                try:
                    self._node(n).halt()
                except OSError as e:
                    errors.append(f"{n.spec.name}: {e}")
            leftovers = [p for p, t in n.pids.values() if procs.alive(p, t)]
            procs.kill_and_wait(leftovers)
            n.pids = {}
        if ours:
            try:
                procs.stop_cgroup(f"k8slk-lab-{self.slot}/balancer")
            except OSError as e:
                errors.append(f"balancer: {e}")
            procs.remove_cgroup(f"k8slk-lab-{self.slot}")
            network.remove(self.slot)
            slots.release(self.dir, self.slot)
        self.state.running = False
        st.save(self.dir, self.state)
        if errors:
            raise LabError("down left processes behind: " + "; ".join(errors))

    # -- what tests read ------------------------------------------------------------------

    @property
    def slot(self) -> int:
        return self.state.slot

    @property
    def nodes(self) -> list[NodeSpec]:
        return [n.spec for n in self.state.nodes]

    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.yml"

    @property
    def identity_file(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.dir / "known_hosts"

    def node(self, name: str) -> NodeSpec:
        return self.state.node(name).spec

    def host_key(self, name: str) -> str:
        """The node's current host public key (``ssh-ed25519 AAAA...``)."""
        return self._files(name).host_key_pub.read_text().strip()

    def ssh_argv(self, name: str, connect_timeout: float = 5) -> list[str]:
        """Plain OpenSSH with the lab's key and known_hosts, strict host key checking."""
        return [
            "ssh", "-F", "/dev/null", "-i", str(self.identity_file),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts_path}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={connect_timeout:g}", "-o", "LogLevel=ERROR",
            "-p", "22", f"root@{self.node(name).address}",
        ]

    def ssh(
        self,
        name: str,
        command: str,
        input: str | None = None,
        timeout: float = 120,
        connect_timeout: float = 5,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in the node's SSH shell."""
        return subprocess.run(
            [*self.ssh_argv(name, connect_timeout), "--", command],
            input=input if input is not None else "",
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def kubelet_exec(
        self, name: str, argv: Sequence[str], input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the node's kubelet container over SSH, with a unique exec ID."""
        exec_id = f"lab-{os.getpid()}-{next(_exec_ids)}-{secrets.token_hex(3)}"
        command = (
            f"ctr --namespace {NAMESPACE} tasks exec --exec-id {exec_id} kubelet "
            + shlex.join(argv)
        )
        return self.ssh(name, command, input=input, timeout=timeout)

    def follow(
        self, name: str, pattern: str, path: str = KUBEADM_LOG, timeout: float = 120
    ) -> list[str]:
        """Stream ``path`` from the node over SSH (``tail -F``, as an operator does) until a
        line matches ``pattern``; return the lines seen so far. Reacts to the line itself:
        no polling interval."""
        rx = re.compile(pattern)
        proc = subprocess.Popen(
            [*self.ssh_argv(name), "--", f"exec tail -n +1 -F {shlex.quote(path)} 2>/dev/null"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:  # bytes: a "\r" in a line stays in the line
                lines.append(raw.decode(errors="replace").removesuffix("\n"))
                if rx.search(lines[-1]):
                    return lines
        finally:
            timer.cancel()
            proc.kill()
            proc.wait()
        raise LabError(
            f"{name}: no line matching {pattern!r} in {path} within {timeout:g} s; "
            f"last lines: {lines[-5:]}"
        )

    def tasks(self, name: str) -> dict[str, tuple[int, str]]:
        """The node's containerd tasks: name -> (host PID, status), read directly (no SSH)."""
        done = subprocess.run(
            ["nsenter", "-t", str(self._holder(name)), "-m", "--",
             "ctr", "--namespace", NAMESPACE, "tasks", "ls"],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            raise LabError(f"{name}: ctr tasks ls failed: {done.stderr.strip()}")
        rows = (line.split() for line in done.stdout.splitlines()[1:])
        return {r[0]: (int(r[1]), r[2]) for r in rows if len(r) >= 3}

    def wait_task_stopped(self, name: str, task: str = "kubeadm", timeout: float = 120) -> None:
        """Wait until ``task`` has exited (on its process, then on containerd noticing)."""
        pid, status = self.tasks(name)[task]
        if status != "STOPPED" and procs.wait_exit([pid], timeout):
            raise LabError(f"{name}: task {task} still running after {timeout:g} s")
        pause = 0.01
        deadline = time.monotonic() + 10
        # The process is gone; containerd records the exit a moment later.
        while self.tasks(name)[task][1] != "STOPPED":
            if time.monotonic() > deadline:
                raise LabError(f"{name}: containerd never saw task {task} stop")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def read(self, name: str, path: str) -> bytes:
        """A file as the node's SSH shell sees it (read through the node's namespace, so it
        works while sshd is stopped or the node partitioned)."""
        return self._inside(name, path).read_bytes()

    def exists(self, name: str, path: str) -> bool:
        return self._inside(name, path).exists()

    def kubeadm_configs(self, name: str) -> list[str]:
        """Every kubeadm configuration the node's kubeadm.sh handed to kubeadm, oldest first."""
        d = self._files(name).lab / "kubeadm-configs"
        return [p.read_text() for p in sorted(d.glob("*.yaml"))] if d.is_dir() else []

    def command_lines(self, name: str) -> list[str]:
        """The command lines of the node's processes now (its containers' included)."""
        lines = []
        for pid in procs.pids_in(self._node(self.state.node(name)).cgroup):
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue  # gone meanwhile
            lines.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
        return lines

    def rss(self) -> dict[str, int]:
        """Per node, the sum of the resident set sizes of all its processes (bytes)."""
        return {
            n.spec.name: procs.rss_bytes(procs.pids_in(self._node(n).cgroup))
            for n in self.state.nodes
        }

    # -- faults ---------------------------------------------------------------------------

    def fault(self, name: str, kind: str, *args: str) -> None:
        """Inject a fault: ``ssh-stop``, ``ssh-start``, ``partition``, ``heal``,
        ``kubeadm-fail PHASE``, ``kubeadm-hang [PHASE [--lines N]]`` (hang at PHASE, or the
        first phase, after N lines of output), ``reboot [--kubernetes-version V]``,
        ``drain-block`` / ``drain-unblock`` (a pod on the node that a PodDisruptionBudget
        keeps from being evicted: ``kubectl drain`` retries until its timeout),
        ``certs-expire [--days N] NAME...`` (a control plane's certificates re-issued by the same
        CA to expire in N days, default 9: within kubeadm's and the tool's 10-day warnings),
        ``etcd-stop`` / ``etcd-start`` (the node's etcd static pod stopped, and kept stopped),
        ``replace`` (a new blank machine at the node's address: see ``replace``)."""
        self._require_running()
        self.state = st.load(self.dir)  # a reboot from a node's shell may have changed it
        n = self.state.node(name)
        node = self._node(n)
        if kind == "ssh-stop":
            node.stop_sshd()
            n.pids.pop("sshd", None)
        elif kind == "ssh-start":
            sshd = n.pids.get("sshd")
            if not sshd or not procs.alive(*sshd):
                n.pids["sshd"] = node.start_sshd(self._holder(name))
        elif kind == "partition":
            network.partition(self.slot, n.spec.address)
        elif kind == "heal":
            network.heal(self.slot, n.spec.address)
            n.no_boot = False
            if n.down:  # a reboot that did not come back: it boots now
                n.down = False
                self._boot(n)
                _wait_ssh(n.spec)
        elif kind == "no-boot":
            n.no_boot = True
        elif kind == "kubeadm-fail":
            if len(args) != 1:
                raise LabError("kubeadm-fail needs a phase, e.g. kubeadm-fail preflight")
            (node.files.lab / "faults" / "kubeadm-fail").write_text(args[0] + "\n")
        elif kind == "kubeadm-hang":
            (node.files.lab / "faults" / "kubeadm-hang").write_text(_hang_switch(args))
        elif kind == "etcd-stop":  # the kubelet stops the etcd static pod and keeps it stopped
            (node.files.lab / "faults" / "etcd-stop").write_text("stop\n")
            # etcd closes its client port as its shutdown begins and goes on answering its
            # peers (quorum reads, a leadership transfer) until raft has stopped; it closes the
            # peer port last: the member is down once both are closed.
            for port in ETCD_PORTS:
                _wait_closed(n.spec, port)
        elif kind == "etcd-start":
            (node.files.lab / "faults" / "etcd-stop").unlink(missing_ok=True)
        elif kind in ("drain-block", "drain-unblock"):
            # kubectl may run on any node, so every node's kubectl learns of the pod.
            for other in self.state.nodes:
                marker = self._node(other).files.lab / "faults" / f"drain-block-{name}"
                if kind == "drain-block":
                    marker.write_text("default/web-5d8f7c9b6-q2x7k\n")
                else:
                    marker.unlink(missing_ok=True)
        elif kind == "certs-expire":
            self._expire_certs(name, list(args))
            return
        elif kind == "replace":
            self.replace(name)
            return
        elif kind == "reboot":
            version = None
            if args:
                if len(args) != 2 or args[0] != "--kubernetes-version":
                    raise LabError("usage: reboot [--kubernetes-version V]")
                version = args[1]
            self.reboot(name, version)
            return
        else:
            raise LabError(f"unknown fault {kind!r}: one of {', '.join(FAULTS)}")
        st.save(self.dir, self.state)

    def _expire_certs(self, name: str, args: list[str]) -> None:
        days = "9"
        if args[:1] == ["--days"] and len(args) >= 2:
            days, args = args[1], args[2:]
        if not args or not days.isdigit():
            raise LabError("usage: certs-expire [--days N] NAME...")
        out = self.kubelet_exec(name, ["python3", "-c", _EXPIRE_CERTS, days, *args])
        if out.returncode != 0:
            raise LabError(f"certs-expire on {name}: {out.stderr.strip() or out.stdout.strip()}")

    def set_image(self, kubernetes_version: str) -> None:
        """The image the lab serves from now on: what a node runs after its next reboot from
        its own shell (``reboot``), as an iPXE server serving a new image."""
        if not VERSION.fullmatch(kubernetes_version):
            raise LabError(f"bad Kubernetes version {kubernetes_version!r}: want vX.Y.Z")
        self.state = st.load(self.dir)
        self.state.image_version = kubernetes_version
        st.save(self.dir, self.state)

    def power_cycle(self, name: str) -> None:
        """What ``reboot`` in a node's shell does: a process outside the node (so that the
        node's halt does not take it along) reboots it into the served image after a pause,
        and ``reboot`` returns at once, as reboot(8) does."""
        self.state.node(name)
        procs.spawn(
            [sys.executable, "-m", "tests.lab", "reboot-now", "--dir", str(self.dir), name],
            f"k8slk-lab-{self.slot}/reboots/{name}",
            {"PATH": PATH, "PYTHONPATH": str(REPO)},
        )

    def reboot_now(self, name: str) -> None:
        """The second half of ``power_cycle``: the pause, the halt, the boot into the served
        image, unless the node has the ``no-boot`` fault (then it stays down until ``heal``)."""
        time.sleep(REBOOT_PAUSE)
        self.state = st.load(self.dir)
        n = self.state.node(name)
        if n.no_boot:
            self._node(n).halt(graceful=True)
            n.pids = {}
            n.down = True
            st.save(self.dir, self.state)
            return
        self._node(n).halt(graceful=True)
        time.sleep(POWER_OFF)
        self.reboot(name, self.state.image_version or None)

    def reboot(self, name: str, kubernetes_version: str | None = None) -> None:
        """Every process of the node killed; it boots again with a new host key, empty /run
        and /var/log, /var/node kept (and a new image version if given). DIR/known_hosts is
        left alone, as a real reboot leaves an operator's: see ``rewrite_known_hosts``."""
        self._require_running()
        n = self.state.node(name)
        if kubernetes_version is not None:
            if not VERSION.fullmatch(kubernetes_version):
                raise LabError(f"bad Kubernetes version {kubernetes_version!r}: want vX.Y.Z")
            n.kubernetes_version = kubernetes_version
        node = self._node(n)
        node.halt(graceful=True)
        n.pids = {}
        self._boot(n, save_first=True)
        if not network.partitioned(self.slot, n.spec.address):
            _wait_ssh(n.spec)
        st.save(self.dir, self.state)

    def replace(self, name: str) -> None:
        """The machine at the node's address is swapped for a new one: the old one is powered
        off (whatever it was doing), the new one has an empty persistent disk (no kubeadm
        state, no etcd data), no fault switches, new host keys, and boots the served image.
        Its name and address are the old one's, as DHCP gives them. The cluster is not told:
        the old machine's Node and etcd member stay until someone removes them."""
        self._require_running()
        self.state = st.load(self.dir)
        n = self.state.node(name)
        node = self._node(n)
        node.halt()
        shutil.rmtree(node.files.var_node, ignore_errors=True)
        shutil.rmtree(node.files.lab / "faults", ignore_errors=True)
        n.no_boot = False
        n.down = False
        n.pids = {}
        n.kubernetes_version = self.state.image_version or n.kubernetes_version
        self._boot(n, save_first=True)
        if not network.partitioned(self.slot, n.spec.address):
            _wait_ssh(n.spec)
        st.save(self.dir, self.state)

    def rewrite_known_hosts(self) -> None:
        """Write DIR/known_hosts from the nodes' current host keys."""
        keys = {n.spec.address: self.host_key(n.spec.name) for n in self.state.nodes}
        inventory.write(self.known_hosts_path, inventory.known_hosts(keys))

    # -- inside -----------------------------------------------------------------------------

    def _files(self, name: str) -> NodeFiles:
        return NodeFiles(self.dir / "nodes" / name)

    def _node(self, n: NodeState) -> Node:
        pub = (self.dir / "id_ed25519.pub")
        return Node(
            n.spec, self.slot, self._files(n.spec.name), self.dir / "image",
            pub.read_text().strip() if pub.exists() else "",
        )

    def _facts(self, n: NodeState) -> dict[str, object]:
        return {
            "name": n.spec.name,
            "address": n.spec.address,
            "role": n.spec.role,
            "kubernetesVersion": n.kubernetes_version,
            "settleSeconds": self.state.settle,
            "readyDelay": self.state.ready_delay,
            "strictNetwork": self.state.strict_network,
            "realEtcd": self.state.real_etcd,
            "etcdImage": etcdimage.image_name() if self.state.real_etcd else "",
        }

    def _reboot_command(self, n: NodeState) -> str:
        """The node's ``reboot`` (its shell finds it first on PATH, in /usr/local/sbin): asks
        the lab to power-cycle the node. It runs in a copy of the node's mount namespace with
        the node's own mounts taken off (the host's namespace is out of reach), so that the
        node booted from it looks like one booted by ``up``."""
        power_cycle = (
            f"{shlex.quote(sys.executable)} -m tests.lab power-cycle "
            f"--dir {shlex.quote(str(self.dir))} {shlex.quote(n.spec.name)}"
        )
        inner = (
            "for m in /usr/local/sbin /root /var/node /var/log /run; do "
            "umount -l $m 2>/dev/null || true; done; "
            f"exec /usr/bin/env -i PATH={PATH} PYTHONPATH={shlex.quote(str(REPO))} {power_cycle}"
        )
        return (
            "#!/bin/sh\n"
            "# The lab's reboot(8): the node goes down after a moment, boots the served image.\n"
            f"exec unshare -m --propagation private -- {procs.BUSYBOX} sh -c {shlex.quote(inner)}\n"
        )

    def _boot(self, n: NodeState, *, save_first: bool = False) -> None:
        """Start the node's processes. With ``save_first`` the boot is counted in the saved
        state before they start: a client may reach the new sshd, and a test read the count,
        while this process is still starting the rest (a reboot runs in its own process)."""
        node = self._node(n)
        node.prepare(self._facts(n), self._reboot_command(n))
        n.boots += 1
        if save_first:
            st.save(self.dir, self.state)
        n.pids = node.boot()

    def _start_balancer(self) -> None:
        """The TCP load balancer in front of every control plane's :6443; returns once it
        listens (it prints one line then)."""
        backends = [f"{n.spec.address}:6443" for n in self.state.nodes
                    if n.spec.role == CONTROL_PLANE]
        proc = procs.spawn(
            [sys.executable, "-m", "tests.lab.balancer", f"{self.state.balancer}:6443", *backends],
            f"k8slk-lab-{self.slot}/balancer",
            {"PATH": PATH, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        proc.stdout.close()
        if not line.startswith(b"balancing"):
            raise LabError(f"the load balancer did not start (exit {proc.poll()})")

    def _first_boot(self, n: NodeState) -> None:
        self._boot(n)
        _wait_ssh(n.spec)

    def _holder(self, name: str) -> int:
        holder = self.state.node(name).pids.get("holder")
        if not holder or not procs.alive(*holder):
            # Rebooted by another process (the node's own reboot(8)): ask lab.json again.
            self.state = st.load(self.dir)
            holder = self.state.node(name).pids.get("holder")
        if not holder or not procs.alive(*holder):
            raise LabError(f"node {name} is not running")
        return holder[0]

    def _inside(self, name: str, path: str) -> Path:
        if not path.startswith("/"):
            raise LabError(f"node paths are absolute: {path!r}")
        return Path(f"/proc/{self._holder(name)}/root{path}")

    def _require_running(self) -> None:
        if not self.state.running:
            raise LabError(f"the lab in {self.dir} is down")


def _validate(
    nodes: int, control_planes: int, version: str, settle: float, ready_delay: float
) -> None:
    if not 1 <= nodes <= 200:
        raise LabError(f"--nodes {nodes}: want 1..200")
    if not 1 <= control_planes <= nodes:
        raise LabError(f"--control-planes {control_planes}: want 1..{nodes}")
    if not VERSION.fullmatch(version):
        raise LabError(f"bad Kubernetes version {version!r}: want vX.Y.Z")
    if settle < 0 or ready_delay < 0:
        raise LabError("--settle and --ready-delay must not be negative")


ETCD_PORTS = (2379, 2380)  # client, peer (in the order etcd closes them)


def _wait_closed(spec: NodeSpec, port: int, timeout: float = 20.0) -> None:
    """Return once nothing listens on the node's ``port`` any more (a connection is refused):
    the kubelet notices a fault file on its next sync, and its pod takes a moment to stop."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((spec.address, port), timeout=1.0):
                pass
        except ConnectionRefusedError:
            return
        except OSError:
            pass  # partitioned or slow: keep asking until the deadline
        if time.monotonic() > deadline:
            raise LabError(f"{spec.name}: something still listens on {spec.address}:{port} "
                           f"{timeout:.0f} s after the fault")
        time.sleep(0.1)


def _wait_ssh(spec: NodeSpec, timeout: float = 10.0) -> None:
    """The node accepts SSH: a connection gets the server's identification line."""
    try:
        with socket.create_connection((spec.address, 22), timeout=timeout) as s:
            banner = s.makefile("rb").readline(256)
    except OSError as e:
        raise LabError(f"{spec.name}: sshd on {spec.address}:22 does not answer: {e}") from e
    if not banner.startswith(b"SSH-2.0-"):
        raise LabError(f"{spec.name}: {spec.address}:22 is not sshd: {banner!r}")
