"""The kubelet double: static pods and the node's heartbeat.

kubelet.sh execs it once ``/var/lib/kubelet/config.yaml`` exists. It runs the API double as a
static pod while ``/etc/kubernetes/manifests/kube-apiserver.yaml`` is there (restarting it if it
dies, as the kubelet restarts a crashed static pod), and with ``kubelet.conf`` it registers its
Node (NotReady), turns Ready after the node's ``readyDelay`` and posts a heartbeat every
``HEARTBEAT`` seconds. With the lab's ``strictNetwork`` it stays NotReady, with the real
kubelet's reason and message, until a CNI config is in /etc/cni/net.d. Its pods (DaemonSet
pods, Pending pods it takes) are the ``podworker``'s. When ``kubeadm reset`` takes its
configuration away it stops its pods and heartbeats; the process stays, as a kubelet LinuxKit
does not supervise does, so the node needs a reboot (a new kubelet) before it can join again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from k8sdouble import crictl, env, nodes, podworker
from k8sdouble.client import Client
from k8sdouble.errors import ApiError

HEARTBEAT = 10.0
TICK = 0.25
APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
ETCD_MANIFEST = "/etc/kubernetes/manifests/etcd.yaml"
BIN = Path(__file__).resolve().parent.parent / "bin"


def log(message: str) -> None:
    print(f"kubelet: {message}", flush=True)


class StaticPod:
    """One static pod: a child process run from its manifest's command."""

    def __init__(self, manifest: str, held: str = "") -> None:
        self.manifest = manifest
        self.name = Path(manifest).stem
        self.held = held  # a lab fault file that keeps this pod stopped while it exists
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.missing = False  # its command's executable is not on this node (said once)
        self.image = ""  # the manifest's image, read with its command: what crictl reports

    def command(self) -> list[str] | None:
        try:
            doc = yaml.safe_load(env.path(self.manifest).read_text()) or {}
        except (OSError, yaml.YAMLError):
            return None
        containers = (doc.get("spec") or {}).get("containers") or []
        if not containers:
            return None
        cmd = [str(c) for c in containers[0].get("command") or []]
        if not cmd:
            return None
        self.image = str(containers[0].get("image") or "")
        if (BIN / cmd[0]).exists():
            return [sys.executable, str(BIN / cmd[0]), *cmd[1:]]
        real = shutil.which(cmd[0])  # a real component (Debian's etcd)
        if real is None and not self.missing:  # as a real kubelet: the pod cannot start
            self.missing = True
            log(f"static pod {self.name}: {cmd[0]!r}: executable file not found in $PATH "
                "(the lab needs Debian's etcd-server: bash tests/lab/install-deps.sh)")
        return [real, *cmd[1:]] if real else None

    def sync(self) -> None:
        wanted = env.path(self.manifest).exists()
        if self.held and env.path(self.held).exists():
            wanted = False
        if self.proc is not None and self.proc.poll() is not None:
            log(f"static pod {Path(self.manifest).stem} exited ({self.proc.returncode})")
            self.proc = None
            crictl.forget(self.name)
        if wanted and self.proc is None and time.monotonic() - self.started > 1.0:
            cmd = self.command()
            if cmd:
                self.started = time.monotonic()
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
                crictl.record(self.name, self.proc.pid, self.image)
                log(f"started static pod {Path(self.manifest).stem}")
        elif not wanted and self.proc is not None:
            self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
        crictl.forget(self.name)


class Heart:
    """Registers the Node and keeps its Ready condition fresh."""

    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig
        self.node = env.node()
        self.started = time.monotonic()
        self.client: Client | None = None
        self.registered = False
        self.ready = False
        self.running_pods: set[str] = set()  # DaemonSet pods (uids) this kubelet has started
        self.next_beat = 0.0
        self.next_sync = 0.0

    def beat(self) -> None:
        now = time.monotonic()
        if now < self.next_beat:
            return
        if self.client is None:
            path = env.path(self.kubeconfig)
            if not path.exists():
                return
            self.client = Client.from_kubeconfig(path.read_text(), timeout=5)
        network = podworker.network_ready() or not self.node.strict_network
        ready = now - self.started >= self.node.ready_delay and network
        try:
            if not self.registered:
                self._register()
            body: dict[str, Any] = {"heartbeat": True, "kubeletVersion": self.node.version,
                                    "ready": ready, "address": self.node.address,
                                    "notReady": {} if ready else {
                                        "reason": "KubeletNotReady",
                                        "message": nodes.NETWORK_NOT_READY}}
            self.client.request("PATCH", f"/api/v1/nodes/{self.node.name}", body)
        except ApiError as exc:
            if exc.status == 404:
                self.registered = False  # deleted while this kubelet runs: register again
            self.next_beat = now + 1.0
            return
        if ready and not self.ready:
            log(f"node {self.node.name} is Ready")
        self.ready = ready
        if ready:
            self.next_beat = now + HEARTBEAT
        elif not network:
            self.next_beat = now + 1.0  # until a CNI config turns up
        else:
            self.next_beat = self.started + self.node.ready_delay

    def sync_pods(self) -> None:
        now = time.monotonic()
        if not self.registered or self.client is None or now < self.next_sync:
            return
        self.next_sync = now + podworker.SYNC
        try:
            podworker.PodWorker(self.client, self.node, self.running_pods).sync(self.ready)
        except ApiError as exc:
            log(f"syncing pods: {exc.message}")
            self.next_sync = time.monotonic() + 5 * podworker.SYNC  # the API is away: back off

    def _register(self) -> None:
        assert self.client is not None
        body = {"metadata": {"name": self.node.name, "labels": {}},
                "kubeletVersion": self.node.version, "address": self.node.address}
        try:
            self.client.request("POST", "/api/v1/nodes", body)
            log(f"registered node {self.node.name}")
        except ApiError as exc:
            if exc.status != 409:
                raise
        self.registered = True


def main(argv: list[str]) -> int:
    kubeconfig = env.KUBELET_CONF
    config = env.KUBELET_CONFIG
    for arg in argv:
        if arg.startswith("--kubeconfig="):
            kubeconfig = arg.split("=", 1)[1]
        elif arg.startswith("--config="):
            config = arg.split("=", 1)[1]
    static = [StaticPod(APISERVER_MANIFEST)]
    if env.node().real_etcd:
        static.insert(0, StaticPod(ETCD_MANIFEST, held=env.FAULT_ETCD_STOP))
    heart = Heart(kubeconfig)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"starting kubelet {heart.node.version} on {heart.node.name}")
    try:
        while not stopping:
            if not env.path(config).exists():
                log(f"{config} is gone (kubeadm reset): static pods stopped, no more "
                    "heartbeats until the node reboots")
                break
            for pod in static:
                pod.sync()
            try:
                heart.beat()
                heart.sync_pods()
            except Exception as exc:  # as a real kubelet: an error is logged, never fatal
                log(f"error talking to the API server: {exc!r}")
            time.sleep(TICK)
    finally:
        for pod in reversed(static):  # the API server before the etcd it uses
            pod.stop()
    # The process stays, as a real kubelet that LinuxKit does not supervise does when kubeadm
    # reset cannot stop its service: the kubelet task keeps running, so the kubeadm reset
    # exec'd into it is not killed with it, and the node does nothing more until it reboots.
    while not stopping:
        time.sleep(TICK)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1:]))
