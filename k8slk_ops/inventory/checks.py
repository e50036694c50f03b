"""Pure checks of the values an inventory holds: names, addresses, endpoints, CIDRs, fingerprints.

They live apart from the model so that both loaders and the model share one definition of
"a valid address" and so that each rule can be tested on its own. Every check raises
ValueError with a message written for the person who will fix the file.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass

DEFAULT_API_PORT = 6443

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?")
_VERSION = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_FINGERPRINT = re.compile(r"SHA256:([A-Za-z0-9+/]{43})=?")
_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,31}")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def dns_label(value: str) -> str:
    """A DNS-1123 label: what Kubernetes accepts as a cluster name."""
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"must be a DNS-1123 label (lower-case letters, digits and '-', "
            f"starting and ending with a letter or digit, at most 63 characters), got {value!r}"
        )
    return value


def dns_subdomain(value: str) -> str:
    """A DNS-1123 subdomain: what Kubernetes accepts as a node name or a DNS domain."""
    if len(value) > 253 or not all(_DNS_LABEL.fullmatch(p) for p in value.split(".")):
        raise ValueError(
            f"must be a DNS-1123 name (lower-case labels of letters, digits and '-' "
            f"separated by '.'), got {value!r}"
        )
    return value


def is_hostname(value: str) -> bool:
    """An RFC 1123 host name (letters may be upper case; a trailing dot is allowed)."""
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():  # 10.0.0.256 is a bad address, not a host name
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in labels)


def ip(value: str) -> str:
    """An IP address (normalised): what kubeadm advertises and the kubelet registers."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"must be an IP address, got {value!r}") from None


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def host(value: str) -> str:
    """An IP address (normalised) or a host name (lower-cased): where a node is reached."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if is_hostname(value):
        return value.lower().rstrip(".")
    raise ValueError(f"must be an IP address or a host name, got {value!r}")


def format_hostport(hostname: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address as URLs and ssh want them."""
    if ":" in hostname:
        return f"[{hostname}]:{port}"
    return f"{hostname}:{port}"


def port(value: int) -> int:
    """A TCP port number."""
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port number between 1 and 65535, got {value}")
    return value


@dataclass(frozen=True)
class HostPort:
    """A parsed ``host[:port]``; ``port`` is None when the text had none."""

    host: str
    port: int | None

    def with_default(self, default: int) -> str:
        return format_hostport(self.host, self.port if self.port is not None else default)


def hostport(value: str) -> HostPort:
    """Parse ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address."""
    text = value.strip()
    port_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"missing ']' in {value!r}")
        hostname, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected ':port' after ']' in {value!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        hostname, port_text = text.split(":")
    else:
        hostname = text  # a name, an IPv4 address, or a bare IPv6 address
    number: int | None = None
    if port_text is not None:
        if not port_text.isdigit():
            raise ValueError(f"the port must be a number, got {port_text!r} in {value!r}")
        number = port(int(port_text))
    return HostPort(host(hostname), number)


def user_at_hostport(value: str) -> str:
    """``[user@]host[:port]`` for a jump host, normalised."""
    user, sep, rest = value.rpartition("@")
    if sep and not _USER.fullmatch(user):
        raise ValueError(f"bad user name {user!r} in {value!r}")
    hp = hostport(rest)
    text = format_hostport(hp.host, hp.port) if hp.port is not None else hp.host
    if hp.port is None and ":" in hp.host:
        text = f"[{hp.host}]"
    return f"{user}@{text}" if sep else text


def user_name(value: str) -> str:
    """A login name, as ssh and useradd accept it."""
    if not _USER.fullmatch(value):
        raise ValueError(f"must be a user name (letters, digits, '.', '_', '-'), got {value!r}")
    return value


def version(value: str) -> str:
    """A Kubernetes release as kubeadm names it: ``vX.Y.Z``."""
    if not _VERSION.fullmatch(value):
        raise ValueError(f"must be a version like v1.31.3, got {value!r}")
    return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def cidrs(value: str) -> tuple[Network, ...]:
    """One CIDR, or two of different families separated by ',' (dual stack), as kubeadm takes."""
    parts = [p.strip() for p in value.split(",")]
    if not 1 <= len(parts) <= 2:
        raise ValueError(f"must be one CIDR, or an IPv4 and an IPv6 CIDR, got {value!r}")
    nets: list[Network] = []
    for part in parts:
        if "/" not in part:
            raise ValueError(f"must be a CIDR like 10.244.0.0/16, got {part!r}")
        try:
            nets.append(ipaddress.ip_network(part, strict=True))
        except ValueError as exc:
            raise ValueError(f"not a valid CIDR: {exc}") from None
    if len(nets) == 2 and nets[0].version == nets[1].version:
        raise ValueError(f"a dual-stack value needs one IPv4 and one IPv6 CIDR, got {value!r}")
    return tuple(nets)


def cidr_text(value: str) -> str:
    """A validated CIDR value, normalised (``10.244.0.0/16``)."""
    return ",".join(str(n) for n in cidrs(value))


def overlapping(a: str, b: str) -> tuple[Network, Network] | None:
    """The first pair of networks shared by two CIDR values, or None."""
    for x in cidrs(a):
        for y in cidrs(b):
            if x.version == y.version and x.overlaps(y):
                return x, y
    return None


def fingerprint(value: str) -> str:
    """An SSH host key fingerprint as ``ssh-keygen -lf`` prints it: ``SHA256:`` + base64."""
    m = _FINGERPRINT.fullmatch(value.strip())
    if m is None:
        raise ValueError(
            "must be a host key fingerprint as `ssh-keygen -lf` prints it, "
            f"'SHA256:' then 43 base64 characters, got {value!r}"
        )
    try:
        raw = base64.b64decode(m.group(1) + "=", validate=True)
    except binascii.Error:
        raise ValueError(f"the fingerprint is not valid base64: {value!r}") from None
    if len(raw) != 32:
        raise ValueError(f"a SHA256 fingerprint holds 32 bytes, got {len(raw)}")
    return f"SHA256:{m.group(1)}"


def san(value: str) -> str:
    """An extra API server certificate name: an IP address or a DNS name (``*.`` allowed)."""
    name = value[2:] if value.startswith("*.") else value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if is_hostname(name):
        return value.lower()
    raise ValueError(f"must be an IP address or a DNS name, got {value!r}")


def label_key(value: str) -> str:
    """A Kubernetes label key: ``[prefix/]name``."""
    prefix, sep, name = value.rpartition("/")
    if sep:
        try:
            dns_subdomain(prefix)
        except ValueError:
            raise ValueError(f"bad label prefix {prefix!r} in {value!r}") from None
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            f"a label name is at most 63 letters, digits, '-', '_' or '.', got {value!r}"
        )
    return value


def label_value(value: str) -> str:
    """A Kubernetes label value (may be empty)."""
    if not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"a label value is at most 63 letters, digits, '-', '_' or '.', got {value!r}"
        )
    return value
