"""One LinuxKit-like node: boot it, stop it, start and stop its sshd.

A node is a private mount namespace held open by one small process, in which ``/run`` and
``/var/log`` are fresh tmpfs at every boot, ``/var/node`` is the node's persistent disk (a
directory of the lab) and ``/root`` is ``/var/node/root``. Into it the lab starts a real
OpenSSH ``sshd`` on the node's own loopback address and a real ``containerd`` (whose socket is
the default one in the private ``/run``, so plain ``ctr`` finds it), then the ``kubelet`` and
``kubeadm`` tasks in namespace ``services.linuxkit`` with the image's mounts.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.lab import etcdimage, procs
from tests.lab.errors import LabError
from tests.lab.image import DOUBLES, DOUBLES_MOUNT, build_rootfs, link_kubectl
from tests.lab.keys import new_ed25519
from tests.lab.state import NodeSpec

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAMESPACE = "services.linuxkit"
HOST_KEY = "/run/ssh/ssh_host_ed25519_key"  # inside the node: made at every boot
BOOT_TIMEOUT = 20.0
ETCD_STOP_GRACE = 5.0  # a reboot's shutdown: how long etcd has to stop after SIGTERM

# Run by the holder, inside the new mount namespace: make the node's mounts, say so, then
# hold the namespace open doing nothing.
_HOLDER = """set -e
mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m tmpfs /run
mkdir -p /run/node /run/sshd /run/containerd /run/ssh
mount -t tmpfs -o mode=0755,nosuid,nodev,size=256m tmpfs /var/log
mount --bind "$1" /var/node
mkdir -p /var/node/root
mount --bind /var/node/root /root
mount --bind "$2" /usr/local/sbin
# The kernel's boot ID, new at every boot as on a machine (the node shares the host's kernel).
cat /proc/sys/kernel/random/uuid > /run/.boot_id
mount --bind -o ro /run/.boot_id /proc/sys/kernel/random/boot_id
echo ready
exec /usr/bin/busybox sleep 2147483647 </dev/null >/dev/null 2>&1
"""

_SSHD_CONFIG = """# The LinuxKit image's sshd, on this node's own address.
ListenAddress {address}
Port 22
HostKey {host_key}
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
UseDNS no
MaxStartups 10:30:100
MaxSessions 10
PrintMotd no
X11Forwarding no
# No Subsystem line: the image has no SFTP.
"""

_CONTAINERD_CONFIG = """version = 2
root = "{root}"
state = "/run/containerd"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "/run/containerd/containerd.sock"
"""


@dataclass(frozen=True)
class NodeFiles:
    """Where a node's files are on the host, under ``DIR/nodes/NAME``."""

    root: Path

    @property
    def var_node(self) -> Path:  # /var/node: the node's persistent disk
        return self.root / "var-node"

    @property
    def lab(self) -> Path:  # /lab in the containers: node facts and fault switches
        return self.root / "lab"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def sbin(self) -> Path:  # /usr/local/sbin in the node's shell: the lab's reboot(8)
        return self.root / "sbin"

    @property
    def host_key_pub(self) -> Path:  # the node's current host key, as the lab knows it
        return self.root / "host_key.pub"


@dataclass(frozen=True)
class Node:
    """Everything needed to (re)boot one node."""

    spec: NodeSpec
    slot: int
    files: NodeFiles
    image: Path  # DIR/image
    authorized_key: str

    @property
    def cgroup(self) -> str:
        return f"k8slk-lab-{self.slot}/{self.spec.name}"

    def prepare(self, facts: dict[str, object], reboot: str = "") -> None:
        """The node's disk and lab files; what is on the disk already is kept. ``reboot`` is
        the script its shell runs as ``reboot``."""
        f = self.files
        f.sbin.mkdir(parents=True, exist_ok=True)
        (f.sbin / "reboot").write_text(reboot or "#!/bin/sh\necho reboot: not in this lab >&2\nexit 1\n")
        os.chmod(f.sbin / "reboot", 0o755)
        for d in (f.var_node / "etc/kubernetes", f.var_node / "etc/cni/net.d",
                  f.var_node / "var/lib", f.lab / "faults",
                  f.lab / "etcd", self.image.parent / "etcd"):
            d.mkdir(parents=True, exist_ok=True)
        ssh_dir = f.var_node / "root/.ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(f.var_node / "root", 0o700)
        os.chmod(ssh_dir, 0o700)
        keys = ssh_dir / "authorized_keys"
        keys.write_text(self.authorized_key + "\n")
        os.chmod(keys, 0o600)
        (f.lab / "node.json").write_text(json.dumps(facts) + "\n")
        link_kubectl(f.lab, str(facts["kubernetesVersion"]))
        build_rootfs(f.rootfs)
        (f.root / "sshd_config").write_text(
            _SSHD_CONFIG.format(address=self.spec.address, host_key=HOST_KEY)
        )
        (f.root / "containerd.toml").write_text(
            _CONTAINERD_CONFIG.format(root=f.containerd_root)
        )

    def boot(self) -> dict[str, list[int]]:
        """Start the node as a LinuxKit boot does: fresh /run and /var/log, a new host key,
        sshd, containerd, then the kubelet and kubeadm tasks. Returns the daemons' PIDs."""
        procs.remove_cgroup(self.cgroup)  # left by an earlier boot
        # The containers' records do not survive a reboot: LinuxKit recreates them at boot.
        shutil.rmtree(self.files.containerd_root, ignore_errors=True)
        os.makedirs("/var/node", exist_ok=True)  # the mount point, empty on the host
        holder = self._start_holder()
        pids = {"holder": holder}
        self._new_host_key(holder[0])
        pids["containerd"] = self._start_containerd(holder[0])
        self._import_images(holder[0])
        pids["sshd"] = self.start_sshd(holder[0])
        self._run_task(holder[0], "kubelet", "/usr/local/bin/kubelet.sh")
        self._run_task(holder[0], "kubeadm", "/usr/local/bin/kubeadm.sh")
        return pids

    def halt(self, graceful: bool = False) -> None:
        """Power off: every process of the node killed; its mounts go with its namespace.
        ``graceful`` is a reboot's shutdown: etcd gets SIGTERM first and a moment to stop, as
        the image's shutdown gives its services, so that a leader hands its leadership over
        (etcd does on SIGTERM) rather than leaving its peers to elect one after a timeout."""
        if graceful:  # the API server first (clients go elsewhere), then etcd hands over
            pids = procs.pids_in(self.cgroup)
            procs.terminate_and_wait([p for p in pids if procs.is_apiserver(p)], ETCD_STOP_GRACE)
            members = [p for p in pids if procs.command_name(p) == "etcd"]
            procs.terminate_and_wait(members, ETCD_STOP_GRACE)
        procs.stop_cgroup(self.cgroup)
        procs.remove_cgroup(self.cgroup)

    def _start_holder(self) -> list[int]:
        log = open(self.files.root / "holder.log", "ab")  # noqa: SIM115 - handed to the child
        with log:
            proc = procs.spawn(
                ["unshare", "-m", "--propagation", "private", "--",
                 procs.BUSYBOX, "sh", "-c", _HOLDER, "holder", str(self.files.var_node),
                 str(self.files.sbin)],
                f"{self.cgroup}/holder", {"PATH": PATH},
                stdout=subprocess.PIPE, stderr=log.fileno(),
            )
        assert proc.stdout is not None
        with proc.stdout:
            line = proc.stdout.readline()  # the holder's one line: its mounts are made
        if line.strip() != b"ready":
            proc.wait()
            raise LabError(
                f"{self.spec.name}: could not make its mount namespace: "
                f"{self._tail(self.files.root / 'holder.log')}"
            )
        return [proc.pid, procs.start_time(proc.pid) or 0]

    def inside(self, holder: int, path: str) -> Path:
        """A path of the node's mount namespace, reachable from the host."""
        return Path(f"/proc/{holder}/root{path}")

    def _new_host_key(self, holder: int) -> None:
        pair = new_ed25519(f"root@{self.spec.name}")
        key = self.inside(holder, HOST_KEY)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pair.private)
        Path(f"{key}.pub").write_text(pair.public + "\n")
        self.files.host_key_pub.write_text(pair.public + "\n")

    def _daemon(self, holder: int, name: str, argv: list[str], cgroup: str) -> list[int]:
        """Start a daemon inside the node and wait for its readiness notification (both
        containerd and Debian's sshd speak sd_notify), or for its death."""
        note = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        addr = f"k8slk-lab-{self.slot}-{self.spec.name}-{name}-{secrets.token_hex(4)}"
        note.bind("\0" + addr)
        log_path = self.inside(holder, f"/var/log/{name}.log")
        with note, open(log_path, "ab") as log:
            proc = procs.spawn(
                ["nsenter", "-t", str(holder), "-m", "--", *argv],
                f"{self.cgroup}/{cgroup}",
                {"PATH": PATH, "HOME": "/root", "NOTIFY_SOCKET": "@" + addr},
                stdout=log.fileno(), stderr=log.fileno(),
            )
            pidfd = os.pidfd_open(proc.pid)
            try:
                ready, _, _ = select.select([note.fileno(), pidfd], [], [], BOOT_TIMEOUT)
            finally:
                os.close(pidfd)
            if note.fileno() in ready and b"READY=1" in note.recv(4096):
                return [proc.pid, procs.start_time(proc.pid) or 0]
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()
        why = "exited" if ready else f"was not ready after {BOOT_TIMEOUT:.0f} s"
        raise LabError(f"{self.spec.name}: {name} {why}: {self._tail(log_path)}")

    def _start_containerd(self, holder: int) -> list[int]:
        conf = self.files.root / "containerd.toml"
        return self._daemon(
            holder, "containerd", ["containerd", "--config", str(conf)], "podruntime/containerd"
        )

    def _import_images(self, holder: int) -> None:
        """The etcd image into containerd's k8s.io namespace (built at ``up`` with a real
        etcd): kubeadm pulls it onto a real node before it runs etcd, and ``etcd restore``
        runs its binaries in a one-off container."""
        archive = self.image / etcdimage.ARCHIVE
        if not archive.exists():
            return
        done = subprocess.run(["nsenter", "-t", str(holder), "-m", "--",
                               *etcdimage.import_argv(archive)],
                              env={"PATH": PATH}, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LabError(f"{self.spec.name}: importing {archive} failed: {done.stderr.strip()}")

    def start_sshd(self, holder: int) -> list[int]:
        conf = self.files.root / "sshd_config"
        return self._daemon(
            holder, "sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)], "systemreserved/sshd"
        )

    def stop_sshd(self) -> None:
        """Kill sshd and every session it carries, as stopping the image's sshd service does."""
        procs.stop_cgroup(f"{self.cgroup}/systemreserved/sshd")

    def _run_task(self, holder: int, task: str, command: str) -> None:
        """``ctr run -d`` one of the image's two tasks, mounted as the node contract says."""
        binds = [
            ("/usr", "/usr", "ro"),
            (str(self.image / "etc"), "/etc", "ro"),
            ("/var/node/etc/kubernetes", "/etc/kubernetes", "rw"),
            ("/var/node/etc/cni/net.d", "/etc/cni/net.d", "rw"),
            (str(self.image / "bin"), "/usr/local/bin", "ro"),
            ("/run/node", "/run", "rw"),
            ("/var/log", "/hostroot/var/log", "rw"),
            ("/var/node/var", "/var", "rw"),
            ("/root", "/root", "rw"),
            (str(self.files.lab), "/lab", "rw"),
            # What etcd replicates between control planes: one store the API doubles share.
            (str(self.image.parent / "etcd"), "/lab/etcd", "rw"),
            (str(DOUBLES), DOUBLES_MOUNT, "ro"),
        ]
        argv = [
            "nsenter", "-t", str(holder), "-m", "--",
            "ctr", "--namespace", NAMESPACE, "run", "-d", "--net-host", "--rootfs",
            "--cgroup", f"/{self.cgroup}/podruntime/{task}",
            "--log-uri", f"binary://{self.image / 'logger.sh'}",
            "--env", f"PATH={PATH}", "--env", "KUBECONFIG=/etc/kubernetes/admin.conf",
        ]
        for src, dst, mode in binds:
            argv += ["--mount", f"type=bind,src={src},dst={dst},options=rbind:{mode}"]
        argv += ["--mount", "type=tmpfs,src=tmpfs,dst=/tmp,options=nosuid:nodev:mode=1777"]
        argv += [str(self.files.rootfs), task, command]
        done = subprocess.run(argv, env={"PATH": PATH}, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LabError(f"{self.spec.name}: ctr run {task} failed: {done.stderr.strip()}")

    @staticmethod
    def _tail(path: Path, lines: int = 5) -> str:
        try:
            text = path.read_text(errors="replace").strip().splitlines()
        except OSError as e:
            return f"(no log: {e})"
        return " | ".join(text[-lines:]) or "(empty log)"
