"""One simulated LinuxKit node: its files, its containerd tasks, and its kubeadm.sh.

The node holds, in memory, what a real one holds on disk: ``/run/node`` (tmpfs), ``/var/node``
(persistent), ``/run`` and ``/var/log/kubeadm.out.log`` with memlogd's line prefix. Its kubeadm
task runs the trigger script of the image (docs/node.md): wait for
``/run/node/kubeadm-run``, settle, print the flag, run kubeadm, and stop for good. Instead of
polling the trigger file each second, a write to it wakes the script at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from tests.fleet.cluster import Cluster
from tests.fleet.layout import FleetConfig, NodeSpec

NAMESPACE = "services.linuxkit"
KUBEADM_YAML = "/run/node/kubeadm.yaml"
KUBEADM_RUN = "/run/node/kubeadm-run"
KUBEADM_LOG = "/var/log/kubeadm.out.log"
MARKER = "/var/node/var/lib/kubelet/config.yaml"
ADMIN_CONF = "/var/node/etc/kubernetes/admin.conf"
CA_CERT = "/var/node/etc/kubernetes/pki/ca.crt"
# Inside the kubelet container the same files have other names.
CONTAINER_PATHS = {
    "/run/kubeadm.yaml": KUBEADM_YAML,
    "/run/kubeadm-run": KUBEADM_RUN,
    "/etc/kubernetes/admin.conf": ADMIN_CONF,
    "/etc/kubernetes/pki/ca.crt": CA_CERT,
    "/var/lib/kubelet/config.yaml": MARKER,
    "/hostroot/var/log/kubeadm.out.log": KUBEADM_LOG,
}
BOOT_ID = "/proc/sys/kernel/random/boot_id"
VOLATILE_PREFIXES = ("/run/", "/var/log/", "/tmp/")

CONFIGURED_LINE = "Kubernetes Node already has kubelet configuration"
WAITING_LINE = "Waiting for /run/kubeadm-run to exist before running kubeadm commands"
SETTLING_LINE = "sleeping a bit more to make sure file is written"
COMPLETED_LINE = "kubeadm has completed... removing configuration"
LINE_LIMIT = 1024

_pids = itertools.count(1000)

# kubeadm itself (tests/fleet/kubeadm.py): runs init or join for a node, True on success.
KubeadmRun = Callable[["SimNode", str], Awaitable[bool]]


def log_prefix(now: datetime | None = None) -> str:
    t = now or datetime.now(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") + " kubeadm.out "


class SimNode:
    """A node's state, and the kubeadm.sh that runs on it once per boot."""

    def __init__(
        self, spec: NodeSpec, cluster: Cluster, config: FleetConfig, kubeadm_run: KubeadmRun
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.cluster = cluster
        self.config = config
        self.version = config.kubernetes_version
        self._kubeadm_run = kubeadm_run
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, int] = {}
        self.log: list[str] = []
        self._log_waiters: list[asyncio.Future[None]] = []
        self.changes = 0  # counts changes of the log and the tasks, for ``changed``
        self.tasks: dict[str, tuple[int, str]] = {}
        self.exec_ids: set[str] = set()
        self.boots = 0
        self.consumed_configs: list[bytes] = []  # every kubeadm.yaml its kubeadm read
        # Knobs of a node's bad day: the next N `ctr tasks exec` exit 0 with their output lost
        # (containerd does that now and then), the next N `ctr tasks ls` print nothing, the
        # next N sessions close without an exit status (the connection gone mid-command).
        self.lost_exec_outputs = 0
        self.lost_task_lists = 0
        self.unfinished_sessions = 0
        # Called with (node, path) after every file write: tests act at a precise moment.
        self.write_hooks: list[Callable[[SimNode, str], None]] = []
        self._script: asyncio.Task[None] | None = None
        self.persistent_disk = True  # /var/node is a mounted disk
        self.no_boot = False  # the next reboot does not come back (until the test powers it on)
        # What ``reboot`` in the node's shell does (the fleet powers it off and on again).
        self.on_reboot: Callable[[SimNode], None] | None = None
        self.boot()

    # -- boot -------------------------------------------------------------------------------

    def boot(self) -> None:
        """Start (or restart) the node: tmpfs emptied, /var/node kept, tasks started."""
        if self._script is not None:
            self._script.cancel()
            self._script = None
        for path in [p for p in self.files if p.startswith(VOLATILE_PREFIXES)]:
            self.remove(path)
        self.log.clear()
        self.exec_ids.clear()
        self.boots += 1
        # The kernel's boot ID: a new random UUID at every boot (rebootrecord.BOOT_ID_PATH).
        self.files[BOOT_ID] = f"{uuid.uuid4()}\n".encode()
        self.tasks = {"kubelet": (next(_pids), "RUNNING")}
        if MARKER in self.files:
            self.say(CONFIGURED_LINE)
            self.tasks["kubeadm"] = (next(_pids), "STOPPED")
        else:
            self.say(WAITING_LINE)
            self.tasks["kubeadm"] = (next(_pids), "RUNNING")
        self._wake()

    def listed_state(self, task: str) -> str | None:
        """The task's state as one ``ctr tasks ls`` shows it: ``MISSING`` when absent from the
        listing, None when the listing was lost (``lost_task_lists``)."""
        if self.lost_task_lists > 0:
            self.lost_task_lists -= 1
            return None
        return self.tasks[task][1] if task in self.tasks else "MISSING"

    def restart_kubelet(self) -> None:
        """A new kubelet task of the same container (the image does not supervise it)."""
        self.tasks["kubelet"] = (next(_pids), "RUNNING")

    @property
    def kubeadm_waiting(self) -> bool:
        return self.tasks["kubeadm"][1] == "RUNNING" and self._script is None

    # -- files ------------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        return path in self.files or path == KUBEADM_LOG

    def read(self, path: str) -> bytes | None:
        if path == KUBEADM_LOG:
            return "".join(line + "\n" for line in self.log).encode()
        return self.files.get(path)

    def write(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.files[path] = data
        self.modes[path] = mode
        if path == KUBEADM_RUN and self.kubeadm_waiting:
            self._script = asyncio.get_running_loop().create_task(self._kubeadm_sh())
        for hook in list(self.write_hooks):
            hook(self, path)

    def remove(self, path: str) -> None:
        self.files.pop(path, None)
        self.modes.pop(path, None)

    # -- the log ----------------------------------------------------------------------------

    def say(self, message: str) -> None:
        """One line of kubeadm.sh's stdout as memlogd stores it (prefixed, cut at 1024 bytes)."""
        for text in message.split("\n"):
            line = (log_prefix() + text).encode()[:LINE_LIMIT].decode(errors="ignore")
            self.log.append(line)
        self._wake()

    def _wake(self) -> None:
        """Wake whoever waits for the log to grow or the kubeadm task to change."""
        self.changes += 1
        waiters, self._log_waiters = self._log_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def changed(self, since: int) -> None:
        """Return once the log or the tasks changed after ``changes`` was ``since`` (at once
        if they already have: a waiter that starts late misses nothing)."""
        while self.changes == since:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._log_waiters.append(fut)
            await fut

    # -- kubeadm.sh -------------------------------------------------------------------------

    async def _kubeadm_sh(self) -> None:
        ok = False
        try:
            self.say(SETTLING_LINE)
            await asyncio.sleep(self.config.settle)
            raw = self.files.get(KUBEADM_RUN, b"")
            flag = raw.decode(errors="replace").rstrip("\n")  # $(cat ...) drops newlines
            self.say(f"Found kubeadm flag {flag}")
            if flag in ("init", "join"):
                self.consumed_configs.append(self.files.get(KUBEADM_YAML, b""))
                ok = await self._kubeadm_run(self, flag)
            else:
                self.say(f"Unknown kubeadm flag {flag}")
            if ok:
                self.say(COMPLETED_LINE)
                self.remove(KUBEADM_YAML)
        finally:
            pid, _ = self.tasks["kubeadm"]
            self.tasks["kubeadm"] = (pid, "STOPPED")
            self._wake()

    async def close(self) -> None:
        if self._script is not None:
            self._script.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._script
