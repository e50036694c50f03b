"""A plain throwaway OpenSSH sshd for the SSH layer's end-to-end tests.

It behaves like a LinuxKit node's sshd where it matters to the client: root only, key only,
no SFTP subsystem, and a host key that can be replaced by "rebooting" (``restart(new_host_key=
True)``). Each server listens on its own loopback address in 127.0.240.0/24 so it never collides
with the lab's nodes. Keys are generated at run time in a temporary directory, never stored.

Readiness is an event, not a guess: ``sshd -D -e`` prints ``Server listening on ...`` once its
socket is bound, and ``start()`` waits for that line.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
ADDRESS_PREFIX = "127.0.240."


def skip_reason() -> str | None:
    """Why these tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root: sshd must run as root to log in as root"
    for tool in (SSHD, SSH_KEYGEN):
        if not os.access(tool, os.X_OK):
            return f"needs OpenSSH: {tool} is missing"
    return None


def require_sshd() -> None:
    """Skip the calling test when sshd cannot run here; under CI (env CI set) fail instead."""
    import pytest

    reason = skip_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"SSH end-to-end tests cannot run: {reason}")
    pytest.skip(reason)


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """Generate an unencrypted key pair at ``path`` (and ``path.pub``); returns ``path``."""
    path.unlink(missing_ok=True)
    Path(f"{path}.pub").unlink(missing_ok=True)
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def public_key_fields(path: Path) -> tuple[str, str]:
    """(key type, base64 blob) of the public key beside private key ``path``."""
    kind, blob = Path(f"{path}.pub").read_text().split()[:2]
    return kind, blob


def fingerprint(path: Path) -> str:
    """The ``SHA256:...`` fingerprint of the public key beside ``path``."""
    _, blob = public_key_fields(path)
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class SSHDServer:
    """One sshd process on ``address:port`` with its own host key and authorized key."""

    def __init__(
        self,
        workdir: Path,
        address: str,
        port: int = 22,
        *,
        client_public_keys: list[Path] | None = None,
        log_level: str = "VERBOSE",
    ) -> None:
        self.workdir = workdir
        self.address = address
        self.port = port
        self.log_level = log_level
        self.host_key = workdir / "ssh_host_ed25519_key"
        self.authorized_keys = workdir / "authorized_keys"
        self.config = workdir / "sshd_config"
        self._extra_public_keys = list(client_public_keys or [])
        self._proc: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        keygen(self.host_key)
        self._write_authorized_keys()

    # -- files ------------------------------------------------------------------------------

    def _write_authorized_keys(self) -> None:
        lines = [Path(f"{p}.pub").read_text().strip() for p in self._extra_public_keys]
        self.authorized_keys.write_text("".join(f"{line}\n" for line in lines))

    def authorize(self, private_key: Path) -> None:
        """Allow the key pair at ``private_key`` to log in as root."""
        self._extra_public_keys.append(private_key)
        self._write_authorized_keys()

    def _write_config(self) -> None:
        # No "Subsystem sftp" line: the node has no SFTP, and neither does this server.
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.address}:{self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "MaxSessions 10",
                    "AllowTcpForwarding yes",
                    "PrintMotd no",
                    "UseDNS no",
                    f"LogLevel {self.log_level}",
                    "",
                ]
            )
        )

    # -- facts for tests --------------------------------------------------------------------

    @property
    def host_pattern(self) -> str:
        """How known_hosts names this server: ``addr`` on port 22, ``[addr]:port`` elsewhere."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    def known_hosts_line(self) -> str:
        kind, blob = public_key_fields(self.host_key)
        return f"{self.host_pattern} {kind} {blob}\n"

    def fingerprint(self) -> str:
        return fingerprint(self.host_key)

    def log_lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        """Block until ``count`` log lines match ``pattern``; returns them all."""
        regex = re.compile(pattern)

        def matches() -> list[str]:
            return [line for line in self._lines if regex.search(line)]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matches()) >= count, timeout):
                raise AssertionError(f"sshd never logged {count} x {pattern!r}: {self._lines}")
            return matches()

    # -- life -------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start sshd and return once it listens."""
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self._write_config()
        with self._cond:
            self._lines = []
        # A private mount namespace with an empty /root, as on a node (/root lives on /var/node):
        # the host's own dotfiles (a ~/.bashrc that prints or runs tools) never reach a session.
        self._proc = subprocess.Popen(
            [
                "unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs -o mode=0700 root-home /root && exec "$@"', "sh",
                SSHD, "-D", "-e", "-f", str(self.config),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._pump, args=(self._proc,), daemon=True)
        self._reader.start()
        with self._cond:
            ready = self._cond.wait_for(
                lambda: (
                    any("Server listening" in line for line in self._lines)
                    or (self._proc is not None and self._proc.poll() is not None)
                ),
                timeout,
            )
        if not ready or self._proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"sshd on {self.address}:{self.port} did not start: {self._lines}")

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop the listener and every session it spawned (a node going down)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        sessions = _descendants(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Sessions outlive the listener; end them (and their commands) as a reboot would.
        for pid in sessions:
            with suppress(ProcessLookupError):
                os.kill(pid, 9)
        if self._reader is not None:
            self._reader.join(timeout=10)

    def restart(self, *, new_host_key: bool = False) -> None:
        """Stop and start again; with ``new_host_key`` it comes back like a rebooted node."""
        self.stop()
        if new_host_key:
            keygen(self.host_key)
        self.start()


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (per-connection sshd monitors and the commands they run)."""
    children: dict[int, list[int]] = {}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            stat = (pid_dir / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(pid_dir.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextmanager
def sshd_servers(
    count: int, *, first_octet: int, port: int = 22, log_level: str = "VERBOSE"
) -> Iterator[tuple[Path, Path, list[SSHDServer]]]:
    """``count`` servers on 127.0.240.<first_octet + i>, one shared client key; always stopped.

    Yields (workdir, client private key, servers).
    """
    workdir = Path(tempfile.mkdtemp(prefix="k8slk-sshd-"))
    servers: list[SSHDServer] = []
    try:
        client_key = keygen(workdir / "id_ed25519")
        for i in range(count):
            server = SSHDServer(
                workdir / f"sshd-{i}",
                f"{ADDRESS_PREFIX}{first_octet + i}",
                port,
                client_public_keys=[client_key],
                log_level=log_level,
            )
            servers.append(server)
            server.start()
        yield workdir, client_key, servers
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
