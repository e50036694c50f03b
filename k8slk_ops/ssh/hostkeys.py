"""Host keys: known_hosts lookup, the three policies, and recording trusted-on-first-use keys.

The check runs inside the SSH handshake (asyncssh calls ``HostKeyCheck.verify`` before user
authentication), so no command can ever run on a node whose key was refused.

known_hosts is parsed here rather than by asyncssh so that lookups never decode keys: a node is
matched by name (plain, wildcard or hashed patterns; ``[addr]:port`` for ports other than 22) and
the presented key is compared by its type and base64 blob. Parsed files are cached by inode, size
and mtime, so a fleet of nodes costs one parse per change of the file.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import functools
import hashlib
import hmac
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from k8slk_ops.base import localfile
from k8slk_ops.ssh.errors import (
    HostKeyError,
    HostKeyMismatch,
    HostKeyUnknown,
    SSHError,
    host_entry_name,
)
from k8slk_ops.ssh.target import HostKeyPolicy

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")

# OpenSSH's preference order for plain host keys; asyncssh's own default puts RSA first.
PREFERRED_HOST_KEY_ALGS: tuple[str, ...] = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)


def fingerprint(blob: bytes) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key blob."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def normalise_fingerprint(text: str) -> str:
    """``SHA256:abc=`` / ``abc`` -> ``SHA256:abc`` (the hash part is case-sensitive base64)."""
    value = text.strip()
    if value.upper().startswith("SHA256:"):
        value = value[len("SHA256:") :]
    return "SHA256:" + value.rstrip("=")


def _sig_algs(kind: str) -> list[str]:
    """Signature algorithms that make a server present a key of type ``kind``."""
    if kind == "ssh-rsa":
        return ["rsa-sha2-512", "rsa-sha2-256"]
    return [kind]


# -- known_hosts parsing -------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownEntry:
    """One key line of a known_hosts file."""

    patterns: tuple[str, ...]
    kind: str
    blob: str  # base64, as written
    line: int
    marker: str = ""  # "", "@revoked" or "@cert-authority"

    def matches(self, name: str) -> bool:
        return _match_patterns(self.patterns, name)

    @property
    def fingerprint(self) -> str:
        try:
            return fingerprint(base64.b64decode(self.blob, validate=True))
        except (binascii.Error, ValueError):
            return f"(unreadable key on line {self.line})"


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower()
    )
    return re.compile(regex)


def _glob(pattern: str, name: str) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == name.lower()
    return _compiled(pattern).fullmatch(name.lower()) is not None


def _is_plain(pattern: str) -> bool:
    """A pattern that matches exactly one name (no wildcard, hash or negation)."""
    return not (pattern[:1] in ("|", "!") or "*" in pattern or "?" in pattern)


def _hashed(pattern: str, name: str) -> bool:
    try:
        _, magic, salt, digest = pattern.split("|")
        if magic != "1":
            return False
        want = base64.b64decode(digest)
        mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(mac, want)


def _match_patterns(patterns: tuple[str, ...], name: str) -> bool:
    """OpenSSH semantics: any positive match, and no negated (``!``) match."""
    matched = False
    for pattern in patterns:
        if pattern.startswith("|"):
            if _hashed(pattern, name):
                matched = True
        elif pattern.startswith("!"):
            if _glob(pattern[1:], name):
                return False
        elif _glob(pattern, name):
            matched = True
    return matched


def parse_known_hosts(text: str) -> list[KnownEntry]:
    """Key lines of a known_hosts file; malformed lines are skipped as OpenSSH does."""
    entries: list[KnownEntry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = ""
        if fields[0].startswith("@"):
            marker, fields = fields[0], fields[1:]
        if len(fields) < 3:
            continue
        entries.append(
            KnownEntry(
                patterns=tuple(fields[0].split(",")),
                kind=fields[1],
                blob=fields[2],
                line=number,
                marker=marker,
            )
        )
    return entries


class KnownHostsIndex:
    """known_hosts entries indexed by name, so a lookup costs O(entries that could match).

    Entries whose patterns are all plain names (what OpenSSH and ``accept-new`` write) are found
    by dictionary; only wildcard, hashed or negated entries are matched one by one. A fleet of a
    thousand nodes in one known_hosts file thus costs a thousand lookups, not a million matches.
    """

    def __init__(self, entries: list[KnownEntry]) -> None:
        self.entries = entries
        self._by_name: dict[str, list[KnownEntry]] = {}
        self._others: list[KnownEntry] = []
        for entry in entries:
            if all(_is_plain(p) for p in entry.patterns):
                for name in {p.lower() for p in entry.patterns}:
                    self._by_name.setdefault(name, []).append(entry)
            else:
                self._others.append(entry)

    def matching(self, name: str) -> list[KnownEntry]:
        """Entries that name ``name``, in file order."""
        found = list(self._by_name.get(name.lower(), ()))
        extra = [e for e in self._others if e.matches(name)]
        if extra:
            found = sorted(found + extra, key=lambda e: e.line)
        return found


@dataclass
class _Cached:
    signature: tuple[int, int, int]
    index: KnownHostsIndex


_cache: dict[Path, _Cached] = {}


def _load_index(path: Path) -> KnownHostsIndex:
    try:
        st = path.stat()
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = _cache.get(path)
        if cached is not None and cached.signature == signature:
            return cached.index
        text = _read_regular(path)[0].decode(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        _cache.pop(path, None)
        return KnownHostsIndex([])
    except OSError as exc:
        raise KnownHostsError(f"cannot read {path}: {exc.strerror or exc}") from None
    index = KnownHostsIndex(parse_known_hosts(text))
    _cache[path] = _Cached(signature, index)
    return index


def load_known_hosts(path: Path) -> list[KnownEntry]:
    """Entries of ``path`` (empty when it does not exist), parsed once per change of the file."""
    return _load_index(path).entries


def lookup(path: Path, address: str, port: int) -> list[KnownEntry]:
    """Entries that name this node (certificate authorities are not used)."""
    name = host_entry_name(address, port)
    return [e for e in _load_index(path).matching(name) if e.marker != "@cert-authority"]


# -- recording (accept-new) ----------------------------------------------------------------------


class KnownHostsError(SSHError):
    """known_hosts could not be read or written: a local problem, said at once, never retried
    as if the network had failed."""


def record_host_key(
    path: Path,
    address: str,
    port: int,
    kind: str,
    blob: str,
    *,
    node: str = "",
    label: str | None = None,
) -> bool:
    """Add ``name kind blob`` to known_hosts unless already there; True when written.

    Safe against concurrent writers in this and other processes: an exclusive flock on the
    file's directory (whose inode never changes, unlike the file's, which is replaced) guards a
    re-read, the check and an atomic replace (temp file, fsync, rename). The re-read decides:
    a key another run recorded for this name meanwhile, or this key marked ``@revoked``, makes
    this one a mismatch, never a second trusted key. A link is written through to its target.
    """
    name = host_entry_name(address, port)
    path = Path(os.path.realpath(path.expanduser()))
    try:
        who = (node or address, label or f"node {node or address}")
        return _record_locked(path, name, kind, blob, who)
    except OSError as exc:
        raise KnownHostsError(
            f"cannot record the host key of {name} in {path}: {exc.strerror or exc}. "
            "Fix the file or its directory, or set ssh.knownHosts to a writable file"
        ) from None


def replace_host_key(path: Path, address: str, port: int, kind: str, blob: str) -> list[str]:
    """Make ``kind blob`` the one trusted key of the node in known_hosts: the lines trusting
    other keys for its name go, the new one is added; returns the fingerprints removed.

    For a LinuxKit node that made new host keys at a reboot the operator's run caused (the
    ``hostKeyAfterReboot: accept`` trade-off). Same locking and atomic replace as
    ``record_host_key``; ``@revoked`` lines stay, and a revoked key is still refused.

    Only the node's own lines change: a line with a wildcard or negated pattern (``10.0.0.*``)
    speaks for other hosts too and is kept whole (it may still name the old key, which then
    stays trusted for the node as for the others: the operator wrote it so); a line naming the
    node among other plain names loses only the node's name.
    """
    name = host_entry_name(address, port)
    path = Path(os.path.realpath(path.expanduser()))
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        old, mode = _read_regular(path)
        text = old.decode(errors="replace")
        entries = [e for e in parse_known_hosts(text) if e.matches(name)]
        if any(e.marker == "@revoked" and e.kind == kind and e.blob == blob for e in entries):
            raise KnownHostsError(f"the new host key of {name} is marked @revoked in {path}")
        own = [e for e in entries if not e.marker and _names_only(e.patterns)]
        gone = {e.line: e.fingerprint for e in own if not (e.kind == kind and e.blob == blob)}
        rewritten = {e.line: _without_name(text, e, name) for e in own if e.line in gone}
        kept = []
        for number, line in enumerate(text.splitlines(), start=1):
            if number not in rewritten:
                kept.append(line)
            elif rewritten[number]:
                kept.append(rewritten[number])
        if not any(e.kind == kind and e.blob == blob and e.line not in gone for e in own):
            kept.append(f"{name} {kind} {blob}")
        _replace(path, ("\n".join(kept) + "\n").encode(), mode)
        return list(gone.values())
    except OSError as exc:
        raise KnownHostsError(
            f"cannot replace the host key of {name} in {path}: {exc.strerror or exc}"
        ) from None
    finally:
        os.close(dir_fd)


def _names_only(patterns: tuple[str, ...]) -> bool:
    """Every pattern names one host (plain or hashed): the line says nothing of other hosts
    beyond the names it lists."""
    return all(p.startswith("|") or _is_plain(p) for p in patterns)


def _without_name(text: str, entry: KnownEntry, name: str) -> str:
    """``entry``'s line without the patterns naming ``name``; '' when none would be left."""
    rest = [
        p for p in entry.patterns
        if not (_hashed(p, name) if p.startswith("|") else p.lower() == name.lower())
    ]
    if not rest:
        return ""
    line = text.splitlines()[entry.line - 1]
    fields = line.split()
    at = 1 if fields[0].startswith("@") else 0
    fields[at] = ",".join(rest)
    return " ".join(fields)


def _record_locked(path: Path, name: str, kind: str, blob: str, who: tuple[str, str]) -> bool:
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        old, mode = _read_regular(path)
        entries = KnownHostsIndex(parse_known_hosts(old.decode(errors="replace"))).matching(name)
        _refuse_other_keys(path, name, kind, blob, who, entries)
        if any(not e.marker and e.kind == kind and e.blob == blob for e in entries):
            return False
        if old and not old.endswith(b"\n"):
            old += b"\n"
        _replace(path, old + f"{name} {kind} {blob}\n".encode(), mode)
        return True
    finally:
        os.close(dir_fd)  # releases the lock


def _read_regular(path: Path) -> tuple[bytes, int]:
    """known_hosts' bytes and mode; (b"", 0600) when absent; a non-regular file is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return b"", 0o600
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KnownHostsError(f"{path} is not a regular file; refusing to write to it")
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks), stat.S_IMODE(st.st_mode)
    finally:
        os.close(fd)


def _refuse_other_keys(
    path: Path, name: str, kind: str, blob: str, who: tuple[str, str], entries: list[KnownEntry]
) -> None:
    revoked = any(e.marker == "@revoked" and e.kind == kind and e.blob == blob for e in entries)
    trusted = [e for e in entries if not e.marker]
    if not revoked and (not trusted or any(e.kind == kind and e.blob == blob for e in trusted)):
        return
    address, _, port = name.removeprefix("[").partition("]:")
    try:
        presented = fingerprint(base64.b64decode(blob, validate=True))
    except (binascii.Error, ValueError):
        presented = f"{kind} key"
    raise HostKeyMismatch.build(
        node=who[0],
        label=who[1],
        address=address,
        port=int(port or 22),
        presented=presented,
        expected=tuple(f"{e.fingerprint} ({e.kind}, line {e.line})" for e in trusted),
        known_hosts=path,
        source=(
            f"{path} (this key is marked @revoked)"
            if revoked
            else f"{path}, where another run recorded a key for it meanwhile"
        ),
    )


def _replace(path: Path, data: bytes, mode: int) -> None:
    """known_hosts replaced the one way this tool replaces files (:mod:`k8slk_ops.base.localfile`);
    ``path`` is already the link's final target."""
    try:
        localfile.replace(path, data, mode)
    except localfile.UnsafeTarget as exc:
        raise KnownHostsError(str(exc)) from None


# -- the policy check ----------------------------------------------------------------------------


@dataclass
class HostKeyCheck:
    """One connection attempt's host-key decision, made during the handshake.

    ``prepare()`` reads known_hosts before connecting; ``verify()`` is called by the SSH client
    with the presented key and either accepts it, or stores the operator-facing error in
    ``error`` and refuses; ``record()`` writes a key accepted under ``accept-new``.
    """

    node: str
    address: str
    port: int
    policy: HostKeyPolicy
    known_hosts: Path | None = None
    pinned: str | None = None
    known: list[KnownEntry] = field(default_factory=list)
    error: HostKeyError | None = None
    to_record: tuple[str, str] | None = None
    presented: str | None = None
    label: str | None = None  # "node NAME" unless said otherwise (e.g. "jump host HOST")

    @property
    def known_hosts_path(self) -> Path:
        return (self.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()

    def prepare(self) -> None:
        if self.policy != "pinned":
            self.known = lookup(self.known_hosts_path, self.address, self.port)

    def host_key_algs(self) -> list[str]:
        """Algorithms to offer: those of keys we already trust for this node come first."""
        first: list[str] = []
        for entry in self.known:
            if not entry.marker:
                first += [a for a in _sig_algs(entry.kind) if a not in first]
        return first + [a for a in PREFERRED_HOST_KEY_ALGS if a not in first]

    def verify(self, kind: str, blob: bytes) -> bool:
        presented = fingerprint(blob)
        self.presented = presented
        encoded = base64.b64encode(blob).decode()
        if self.policy == "pinned":
            want = normalise_fingerprint(self.pinned or "")
            if presented == want:
                return True
            self.error = HostKeyMismatch.build(
                node=self.node,
                address=self.address,
                port=self.port,
                presented=presented,
                expected=(want,),
                known_hosts=self.known_hosts_path,
                source="the fingerprint pinned in the inventory",
                label=self.label,
            )
            return False

        revoked = [e for e in self.known if e.marker == "@revoked"]
        trusted = [e for e in self.known if not e.marker]
        if any(e.kind == kind and e.blob == encoded for e in revoked):
            self.error = self._mismatch(presented, trusted, "known_hosts (it is marked @revoked)")
            return False
        if any(e.kind == kind and e.blob == encoded for e in trusted):
            return True
        if trusted:
            self.error = self._mismatch(presented, trusted, str(self.known_hosts_path))
            return False
        if self.policy == "accept-new":
            self.to_record = (kind, encoded)
            return True
        self.error = HostKeyUnknown.build(
            node=self.node,
            address=self.address,
            port=self.port,
            presented=presented,
            known_hosts=self.known_hosts_path,
            label=self.label,
        )
        return False

    def _mismatch(self, presented: str, trusted: list[KnownEntry], source: str) -> HostKeyMismatch:
        return HostKeyMismatch.build(
            node=self.node,
            address=self.address,
            port=self.port,
            presented=presented,
            expected=tuple(f"{e.fingerprint} ({e.kind}, line {e.line})" for e in trusted),
            known_hosts=self.known_hosts_path,
            source=source,
            label=self.label,
        )

    def record(self) -> bool:
        """Write the key accepted on first use; blocking file I/O, run it off the event loop."""
        if self.to_record is None:
            return False
        kind, blob = self.to_record
        return record_host_key(
            self.known_hosts_path,
            self.address,
            self.port,
            kind,
            blob,
            node=self.node,
            label=self.label,
        )
