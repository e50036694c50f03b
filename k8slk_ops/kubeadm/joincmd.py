"""The ``kubeadm join`` commands kubeadm prints (after init, and for --print-join-command).

Only the command lines are read, never the prose around them. A command spans lines joined by
a trailing backslash; continuation lines are indented with a TAB (4 spaces before v1.21); every
value may be followed by a space. Values kubeadm withholds are ``<value withheld>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8slk_ops.kubeadm.capin import is_ca_cert_hash
from k8slk_ops.kubeadm.errors import ParseError
from k8slk_ops.kubeadm.formats import WITHHELD, is_certificate_key, is_token
from k8slk_ops.kubeadm.logs import log_message

_PLACEHOLDER = "\x00withheld\x00"
_FLAGS_WITH_VALUE = frozenset(
    {"--token", "--discovery-token-ca-cert-hash", "--certificate-key", "--discovery-token"}
)


@dataclass(frozen=True)
class JoinCommand:
    """One printed join command. ``None`` token/key with the name in ``withheld`` when hidden."""

    endpoint: str
    token: str | None
    ca_cert_hashes: tuple[str, ...]
    control_plane: bool = False
    certificate_key: str | None = None
    unsafe_skip_ca_verification: bool = False
    withheld: tuple[str, ...] = ()


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined (log prefixes removed first)."""
    out: list[str] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = log_message(raw).rstrip()
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append(" ".join(pending))
        pending = []
    if pending:
        out.append(" ".join(pending))
    return out


def _parse(line: str) -> JoinCommand:
    words = line.replace(WITHHELD, _PLACEHOLDER).split()
    if words[:2] != ["kubeadm", "join"]:
        raise ParseError("not a kubeadm join command")
    if len(words) < 3 or words[2].startswith("-"):
        raise ParseError("a kubeadm join command without an API server endpoint")
    endpoint = words[2]
    values: dict[str, list[str]] = {}
    switches: set[str] = set()
    i = 3
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            raise ParseError(f"unexpected word in kubeadm join command: {word!r}")
        name, eq, value = word.partition("=")
        if name in _FLAGS_WITH_VALUE:
            if not eq:
                i += 1
                if i >= len(words):
                    raise ParseError(f"{name} without a value")
                value = words[i]
            values.setdefault(name, []).append(value)
        else:
            switches.add(name)
        i += 1
    withheld: list[str] = []

    def one(flag: str) -> str | None:
        got = values.get(flag)
        if not got:
            return None
        if got[-1] == _PLACEHOLDER:
            withheld.append(flag.removeprefix("--"))
            return None
        return got[-1]

    token = one("--token") or one("--discovery-token")
    if token is not None and not is_token(token):
        raise ParseError("the token in the kubeadm join command is malformed")
    hashes = tuple(values.get("--discovery-token-ca-cert-hash", []))
    for h in hashes:
        if not is_ca_cert_hash(h):
            raise ParseError(f"malformed CA cert hash in the kubeadm join command: {h!r}")
    key = one("--certificate-key")
    if key is not None and not is_certificate_key(key):
        raise ParseError("the certificate key in the kubeadm join command is malformed")
    return JoinCommand(
        endpoint=endpoint,
        token=token,
        ca_cert_hashes=hashes,
        control_plane="--control-plane" in switches,
        certificate_key=key,
        unsafe_skip_ca_verification="--discovery-token-unsafe-skip-ca-verification" in switches,
        withheld=tuple(withheld),
    )


def parse_join_commands(output: str) -> list[JoinCommand]:
    """Every well-formed ``kubeadm join`` command in ``kubeadm init`` output, in order.

    Control-plane commands have ``control_plane`` set; a command that does not parse (a line of
    prose mentioning kubeadm join) is skipped.
    """
    commands = []
    for line in _logical_lines(output):
        if not line.lstrip().startswith("kubeadm join "):
            continue
        try:
            commands.append(_parse(line.strip()))
        except ParseError:
            continue
    return commands


def parse_print_join_command(output: str) -> JoinCommand:
    """The single command of ``kubeadm token create --print-join-command``."""
    commands = [
        line.strip() for line in _logical_lines(output) if line.lstrip().startswith("kubeadm join")
    ]
    if len(commands) != 1:
        raise ParseError(
            f"expected one kubeadm join command, found {len(commands)}: {output.strip()[:200]!r}"
        )
    cmd = _parse(commands[0])
    if cmd.token is None and not cmd.withheld:
        raise ParseError("the printed join command has no token")
    return cmd
