"""The fleet served from a thread of the test process: no root, no second process, ~0.1 s to start.

``python -m tests.fleet up`` runs the fleet as its own process (for benchmarks and for the tool
run as a subprocess). Tests of the engine want it closer: the tool runs in the test's main thread
(Typer's ``CliRunner``, ``asyncio.run``), and the fleet runs beside it on an event loop of its
own in a daemon thread, the way asyncssh's tests run their own in-process server. Each node still
listens on its own loopback address with its own host key, so the tool talks real SSH to it.

Every change to a node's state goes through ``call``/``run``, which execute on the fleet's loop
and wait for the result, so the test thread never races the sessions being served. The knobs
are what tests need to put a node in a given state: make its kubeadm fail preflight, make it
unreachable, give it a new host key, hold its kubeadm until released, act at the moment a file is
written or a command arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from tests.fleet import certs as fleet_certs
from tests.fleet import keys, kubeadm, layout
from tests.fleet.cluster import Member
from tests.fleet.node import KUBEADM_RUN, SimNode
from tests.fleet.process import free_port
from tests.fleet.result import Pending, Result
from tests.fleet.server import Fleet, command_kind

T = TypeVar("T")


class FleetStartError(Exception):
    pass


def follows_log(line: str) -> bool:
    """The command follows the node's kubeadm log (``tail -F``), as the tool does after a
    trigger: for ``on_command``."""
    return command_kind(line) == "follow-log"


class AnswerHold:
    """One answer held back by ``InProcessFleet.hold_answer``."""

    def __init__(self, fleet: InProcessFleet) -> None:
        self._fleet = fleet
        self.arrived = asyncio.Event()  # replaced on the fleet's loop
        self.gate = asyncio.Event()

    def wait_arrived(self, timeout: float = 60.0) -> None:
        """Return once the command arrived and its answer was made."""
        self._fleet.run(self.arrived.wait, timeout)

    def release(self) -> None:
        self._fleet.call(self.gate.set)


class InProcessFleet:
    """A fleet of ``nodes`` simulated nodes (``cp-1..``, ``w-1..``) on a loop in a thread.

    Timings default to near zero: kubeadm.sh's settle pause, a kubeadm run and the delay from
    registered to Ready are what the real nodes take minutes for, and the tool waits on events
    (the log, the node list), not on those durations.
    """

    def __init__(
        self,
        directory: Path,
        nodes: int = 3,
        control_planes: int = 1,
        *,
        settle: float = 0.0,
        kubeadm_seconds: float = 0.05,
        ready_delay: float = 0.0,
        kubernetes_version: str = layout.DEFAULT_VERSION,
        fail_nodes: tuple[str, ...] = (),
        cpus: int = 2,
        memory_kb: int = 4_000_000,
        strict_network: bool = True,
        pod_network_addon: bool = True,
    ) -> None:
        self.directory = directory
        self.config = layout.FleetConfig(
            nodes=layout.node_specs(nodes, control_planes),
            port=free_port(),
            kubernetes_version=kubernetes_version,
            settle=settle,
            kubeadm_seconds=kubeadm_seconds,
            ready_delay=ready_delay,
            fail_nodes=list(fail_nodes),
            cpus=cpus,
            memory_kb=memory_kb,
            strict_network=strict_network,
            pod_network_addon=pod_network_addon,
        )
        self.inventory = directory / layout.INVENTORY
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._fleet: Fleet | None = None
        self._gates: dict[str, asyncio.Event] = {}
        self._arrived: dict[str, asyncio.Event] = {}
        self._holds: list[AnswerHold] = []

    # -- life -------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> InProcessFleet:
        """Write the client key and the inventory, start serving; return once every node listens."""
        self.directory.mkdir(parents=True, exist_ok=True)
        keys.write_client_key(self.directory / layout.CLIENT_KEY)
        layout.save(self.directory, self.config)
        layout.write_inventory(self.directory, self.config, self.inventory)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(started,), name="fleet", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Close every listener and connection, end the kubeadm runs, end the thread."""
        loop, thread = self._loop, self._thread
        if loop is not None and self._stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own
                loop.call_soon_threadsafe(self._stopping.set)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise FleetStartError(f"the fleet thread did not end within {timeout:.0f} s")
        self._thread = None

    def __enter__(self) -> InProcessFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self, started: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(started))
        except BaseException as exc:  # reported to start() if it still waits
            if not started.done():
                started.set_exception(exc)
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, started: concurrent.futures.Future[None]) -> None:
        self._stopping = asyncio.Event()
        fleet = Fleet(self.config, self.directory, kubeadm_run=self._kubeadm)
        self._fleet = fleet
        try:
            await fleet.start()
            started.set_result(None)
            await self._stopping.wait()
        finally:
            for gate in self._gates.values():
                gate.set()
            for hold in self._holds:
                hold.gate.set()
            await fleet.stop()

    async def _kubeadm(self, node: SimNode, flag: str) -> bool:
        """kubeadm init/join, after the node's gate opens when the test holds it."""
        gate = self._gates.get(node.name)
        if gate is not None:
            self._arrived[node.name].set()
            await gate.wait()
        return await kubeadm.run(node, flag)

    # -- on the fleet's loop ----------------------------------------------------------------

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """``fn()`` on the fleet's loop, between two sessions; its result here."""

        async def wrapped() -> T:
            return fn()

        return self.run(wrapped, timeout)

    def run(self, fn: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Await ``fn()`` on the fleet's loop; its result here."""
        if self._loop is None or self._fleet is None:
            raise FleetStartError("the fleet is not running")

        async def wrapped() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout)

    @property
    def fleet(self) -> Fleet:
        if self._fleet is None:
            raise FleetStartError("the fleet is not running")
        return self._fleet

    def _node(self, name: str) -> SimNode:
        for node in self.fleet.nodes.values():
            if node.name == name:
                return node
        raise KeyError(f"no node {name} in this fleet")

    # -- reading a node and the cluster ----------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.config.nodes]

    def address(self, name: str) -> str:
        return next(n.address for n in self.config.nodes if n.name == name)

    def members(self) -> dict[str, Member]:
        """The Node objects of the cluster, by name (copies)."""
        return self.call(lambda: {n: Member(**vars(m)) for n, m in
                                  self.fleet.cluster.members.items()})

    def objects(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """The API objects besides Nodes, by (kind, namespace, name) (copies)."""
        return self.call(lambda: copy.deepcopy(self.fleet.cluster.objects))

    def etcd_members(self) -> set[str]:
        return self.call(lambda: set(self.fleet.cluster.etcd_members))

    def tokens(self) -> list[str]:
        """Descriptions of the bootstrap tokens the cluster holds."""
        return self.call(lambda: [t.description for t in self.fleet.cluster.tokens.values()])

    def file(self, name: str, path: str) -> bytes | None:
        """A file of the node as its SSH shell sees it (``/run/node/...``, ``/var/node/...``)."""
        return self.call(lambda: self._node(name).read(path))

    def mode(self, name: str, path: str) -> int | None:
        return self.call(lambda: self._node(name).modes.get(path))

    def log(self, name: str) -> list[str]:
        return self.call(lambda: list(self._node(name).log))

    def configs(self, name: str) -> list[bytes]:
        """Every kubeadm.yaml the node's kubeadm read."""
        return self.call(lambda: list(self._node(name).consumed_configs))

    def stats(self) -> dict[str, Any]:
        return self.call(lambda: self.fleet.stats.to_json(self.fleet.cluster))

    def commands(self) -> dict[str, int]:
        """How many sessions of each kind (``facts``, ``write-file``, ``kubeadm token``...)."""
        return dict(self.stats()["commands"])

    def node_commands(self, name: str) -> dict[str, int]:
        """The sessions of each kind one node served."""
        return self.call(lambda: dict(self.fleet.stats.node_commands.get(name, {})))

    def count(self, kind: str) -> int:
        """Sessions whose kind starts with ``kind`` (``kubectl drain`` counts every node's)."""
        return sum(n for k, n in self.commands().items() if k.startswith(kind))

    # -- changing a node --------------------------------------------------------------------

    def write_file(self, name: str, path: str, data: bytes, mode: int = 0o644) -> None:
        self.call(lambda: self._node(name).write(path, data, mode))

    def expire_certs(self, name: str, certs: tuple[str, ...], days: int = 5) -> None:
        """Re-issue these certificates of a control plane to expire within ``days``."""
        node = self._node(name)
        self.call(lambda: fleet_certs.expire_soon(node, certs, days))

    def renew_certs(self, name: str, *certs: str) -> None:
        """``kubeadm certs renew NAME`` on a control plane by hand (nothing restarted)."""
        node = self._node(name)
        self.call(lambda: [fleet_certs.renew(node, [c]) for c in certs])

    def expire_kubelet_cert(self, name: str) -> None:
        """The node's kubelet client certificate lapsed while it was off: NotReady for good."""
        self.call(lambda: setattr(self._node(name).cluster.members[name],
                                  "kubelet_cert_expired", True))

    def expire_certs_now(self, name: str, certs: tuple[str, ...]) -> None:
        """These certificates of a control plane expired while it was off; it runs again."""
        node = self._node(name)
        self.call(lambda: fleet_certs.expire_now(node, certs))

    def certificates(self, name: str) -> fleet_certs.Certificates:
        """A control plane's certificates (a live object: read it between runs)."""
        state = fleet_certs.of(self._node(name))
        assert state is not None, f"{name} has no certificates"
        return state

    def fail_kubeadm(self, name: str, failing: bool = True) -> None:
        """The node's kubeadm fails its preflight (too little memory), as ``--fail-nodes``."""

        def change() -> None:
            fail = self.config.fail_nodes
            if failing and name not in fail:
                fail.append(name)
            if not failing and name in fail:
                fail.remove(name)

        self.call(change)

    def lose_exec_output(self, name: str, times: int = 1) -> None:
        """The node's next ``times`` ``ctr tasks exec`` run and exit 0 with their output lost
        (containerd does that now and then)."""
        self.call(lambda: setattr(self._node(name), "lost_exec_outputs", times))

    def lose_task_lists(self, name: str, times: int = 1) -> None:
        """The node's next ``times`` ``ctr tasks ls`` print nothing (and exit 0)."""
        self.call(lambda: setattr(self._node(name), "lost_task_lists", times))

    def unfinish_sessions(self, name: str, times: int = 1) -> None:
        """The node's next ``times`` sessions close without an exit status, as when the
        connection goes away mid-command (the command may or may not have run)."""
        self.call(lambda: setattr(self._node(name), "unfinished_sessions", times))

    def guard_pod(self, name: str, pod: str = "default/web-0", *, slow: bool = False) -> None:
        """A pod on the node whose PodDisruptionBudget refuses eviction: drains of it fail,
        at once or (``slow``) once kubectl's ``--timeout`` has passed, as kubectl retries."""

        def guard() -> None:
            cluster = self.fleet.cluster
            cluster.guarded_pods[name] = pod
            if slow:
                cluster.slow_drains.add(name)

        self.call(guard)

    def hold_drain(self, name: str) -> None:
        """``kubectl drain NAME`` waits, its node cordoned, until ``release_drain``."""
        self.call(lambda: self.fleet.cluster.drain_gates.setdefault(name, asyncio.Event()))

    def release_drain(self, name: str) -> None:
        def release() -> None:
            gate = self.fleet.cluster.drain_gates.pop(name, None)
            if gate is not None:
                gate.set()

        self.call(release)

    def leases(self) -> dict[str, dict[str, Any]]:
        """The cluster's Leases, "namespace/name" -> object."""
        return self.call(lambda: json.loads(json.dumps(
            {"/".join(k): v for k, v in self.fleet.cluster.leases.items()})))
    def files_under(self, name: str, prefix: str) -> list[str]:
        """Paths of the node's files that start with ``prefix``."""
        return self.call(lambda: sorted(p for p in self._node(name).files if p.startswith(prefix)))

    def stop_etcd(self, *names: str) -> None:
        """Stop these control planes' etcd members (their containers are gone)."""
        self.call(lambda: self.fleet.cluster.etcd_stopped.update(names))

    def cut_snapshots(self, cut: bool = True) -> None:
        """Every later read of a snapshot file on a node ends early."""

        def change() -> None:
            self.fleet.cluster.snapshot_cut = cut

        self.call(change)

    def replace(self, name: str) -> None:
        """A new blank machine at the node's address: empty disk, new host key, booted from
        the served image. The old machine's etcd member (if any) stays listed and silent."""

        async def swap() -> None:
            await self.fleet.unlisten(name)
            node = self._node(name)
            for path in list(node.files):
                node.remove(path)
            self.fleet.host_keys[name] = asyncssh.generate_private_key("ssh-ed25519")
            if name in self.fleet.cluster.etcd_members:
                self.fleet.cluster.etcd_stopped.add(name)
            self.fleet.cluster.silent_kubelets.add(name)
            await self.fleet.power_on(node)

        self.run(swap)

    def power_off(self, name: str) -> None:
        """The machine is off for good: no SSH, its etcd member silent, its Node NotReady."""

        async def off() -> None:
            await self.fleet.unlisten(name)
            cluster = self.fleet.cluster
            if name in cluster.etcd_members:
                cluster.etcd_stopped.add(name)
            cluster.silent_kubelets.add(name)

        self.run(off)

    def unreachable(self, name: str) -> None:
        """Connections to the node are refused from now on; open ones are dropped."""
        self.run(lambda: self.fleet.unlisten(name))

    def reachable(self, name: str) -> None:
        """The node listens again (with the host key it has now)."""
        self.run(lambda: self.fleet.listen(self._node(name)))

    def change_host_key(self, name: str) -> None:
        """The node comes back with a new host key (known_hosts keeps the old one)."""

        async def rekey() -> None:
            await self.fleet.unlisten(name)
            self.fleet.host_keys[name] = asyncssh.generate_private_key("ssh-ed25519")
            await self.fleet.listen(self._node(name))

        self.run(rekey)

    def serve_image(self, version: str) -> None:
        """The image a node boots at its next reboot from its own shell."""

        def serve() -> None:
            self.fleet.image_version = version

        self.call(serve)

    def no_boot(self, name: str) -> None:
        """The node's next reboot does not come back (until ``power_on``)."""

        def set_it() -> None:
            self._node(name).no_boot = True

        self.call(set_it)

    def power_on(self, name: str) -> None:
        self.run(lambda: self.fleet.power_on(self._node(name)))

    def without_disk(self, name: str) -> None:
        """/var/node is not a mounted disk on the node."""

        def set_it() -> None:
            self._node(name).persistent_disk = False

        self.call(set_it)

    def boots(self, name: str) -> int:
        return self.call(lambda: self._node(name).boots)

    def rewrite_known_hosts(self) -> None:
        """known_hosts from the nodes' current host keys (an operator who checked them)."""

        def lines() -> str:
            out = []
            for node in self.fleet.nodes.values():
                public = self.fleet.host_keys[node.name].export_public_key().decode().split()[:2]
                out.append(f"[{node.spec.address}]:{self.fleet.config.port} {' '.join(public)}\n")
            return "".join(out)

        text = self.call(lines)
        (self.directory / layout.KNOWN_HOSTS).write_text(text)

    def reboot(self, name: str) -> None:
        """tmpfs emptied, /var/node kept, kubeadm.sh waiting again (if not configured)."""
        self.call(lambda: self._node(name).boot())

    def hold_kubeadm(self, name: str) -> None:
        """The node's kubeadm, once triggered, waits (after ``Found kubeadm flag``) until
        released: a kubeadm run that takes as long as the test wants."""

        def hold() -> None:
            self._gates[name] = asyncio.Event()
            self._arrived[name] = asyncio.Event()

        self.call(hold)

    def release_kubeadm(self, name: str) -> None:
        """Let the node's held kubeadm go on. Callable from the fleet's own thread (a hook)."""

        def release() -> None:
            gate = self._gates.pop(name, None)
            if gate is not None:
                gate.set()

        if threading.current_thread() is self._thread:
            release()
        else:
            self.call(release)

    def wait_kubeadm_held(self, name: str, timeout: float = 30.0) -> None:
        """Return once the node's kubeadm was triggered and waits at the hold."""
        self.run(lambda: self._arrived[name].wait(), timeout)

    @contextlib.contextmanager
    def holding_kubeadm(self, name: str) -> Iterator[None]:
        """Inside: the node's kubeadm, once triggered, waits before doing anything."""
        self.hold_kubeadm(name)
        try:
            yield
        finally:
            self.release_kubeadm(name)

    def say(self, name: str, lines: list[str]) -> None:
        """Lines of the node's kubeadm.sh output, as memlogd stores them (a kubeadm that talks)."""
        self.call(lambda: self._node(name).say("\n".join(lines)))

    def on_write(self, name: str, path: str, action: Callable[[], None], times: int = 1) -> None:
        """Run ``action`` (on the fleet's thread) right after the node's ``path`` is written,
        the first ``times`` times."""
        left = [times]

        def hook(node: SimNode, written: str) -> None:
            if written == path and left[0] > 0:
                left[0] -= 1
                action()

        self.call(lambda: self._node(name).write_hooks.append(hook))

    def on_trigger(self, name: str, action: Callable[[], None]) -> None:
        """Run ``action`` right after the node's kubeadm trigger is written."""
        self.on_write(name, KUBEADM_RUN, action)

    def on_command(
        self, name: str, matches: Callable[[str], bool], action: Callable[[], None], times: int = 1
    ) -> None:
        """Run ``action`` (on the fleet's thread) as a command line that ``matches`` arrives at
        the node, before it is answered, the first ``times`` times."""
        left = [times]

        def hook(node: SimNode, line: str) -> None:
            if node.name == name and left[0] > 0 and matches(line):
                left[0] -= 1
                action()

        self.call(lambda: self.fleet.session_hooks.append(hook))

    def hold_answer(self, name: str, matches: Callable[[str], bool]) -> AnswerHold:
        """The node's next command line that ``matches`` is answered from the cluster as it is
        when the command arrives, and that answer is delivered only once released: a read that
        was made, still on its way back while other runs change the cluster."""
        hold = AnswerHold(self)

        def hook(node: SimNode, line: str, answer: Result) -> Result | Pending:
            if node.name != name or hold.arrived.is_set() or not matches(line):
                return answer

            async def later() -> Result:
                await hold.gate.wait()
                return answer

            hold.arrived.set()
            return Pending(later)

        def install() -> None:
            hold.arrived, hold.gate = asyncio.Event(), asyncio.Event()
            self._holds.append(hold)
            self.fleet.answer_hooks.append(hook)

        self.call(install)
        return hold

    # -- inventories ------------------------------------------------------------------------

    def inventory_of(self, names: list[str], path: Path | None = None) -> Path:
        """An inventory of some of the nodes (same cluster, endpoint, keys and known_hosts)."""
        wanted = set(names)
        lines = [
            line for line in layout.render_inventory(self.config).splitlines()
            if not line.startswith("  - {name: ")
            or line.removeprefix("  - {name: ").split(",")[0] in wanted
        ]
        path = path or self.directory / f"inventory-{'-'.join(names)}.yml"
        layout.write_atomic(path, "\n".join(lines) + "\n")
        return path
