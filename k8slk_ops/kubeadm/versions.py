"""Kubernetes versions and the kubeadm configuration API each one speaks.

The node's own ``kubeadm version -o short`` decides the API version of the file we render:
nothing is assumed about a node. Ordering follows semantic versioning (a pre-release sorts
before its release), which is also how Kubernetes tags are ordered.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

from k8slk_ops.kubeadm.errors import ParseError, VersionError

_VERSION_RE = re.compile(
    r"v?(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
# ``kubeadm version`` without ``-o short`` prints a Go struct with the same tag inside.
_GIT_VERSION_RE = re.compile(r'GitVersion:"(?P<v>[^"]+)"')


def _pre_key(pre: str | None) -> tuple[int, tuple[tuple[int, int, str], ...]]:
    """Sort key of a pre-release: none sorts last; numeric identifiers below alphanumeric."""
    if pre is None:
        return (1, ())
    parts = []
    for ident in pre.split("."):
        if ident.isdigit():
            parts.append((0, int(ident), ""))
        else:
            parts.append((1, 0, ident))
    return (0, tuple(parts))


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class KubeVersion:
    """A Kubernetes release version such as ``v1.31.3`` or ``v1.32.0-rc.1``."""

    major: int
    minor: int
    patch: int
    pre: str | None = None
    build: str | None = None

    @classmethod
    def parse(cls, text: str | KubeVersion) -> KubeVersion:
        """Parse ``v1.31.3``, ``1.31.3``, ``v1.31.3-rc.1`` (surrounding whitespace allowed)."""
        if isinstance(text, KubeVersion):
            return text
        m = _VERSION_RE.fullmatch(text.strip())
        if m is None:
            raise VersionError(f"not a Kubernetes version: {text!r} (expected like v1.31.3)")
        return cls(int(m["major"]), int(m["minor"]), int(m["patch"]), m["pre"], m["build"])

    def _key(self) -> tuple[object, ...]:
        return (self.major, self.minor, self.patch, _pre_key(self.pre))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KubeVersion):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: KubeVersion) -> bool:
        if not isinstance(other, KubeVersion):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        out = f"v{self.major}.{self.minor}.{self.patch}"
        if self.pre is not None:
            out += f"-{self.pre}"
        if self.build is not None:
            out += f"+{self.build}"
        return out

    def minor_skew(self, other: KubeVersion) -> int:
        """How many minors ``self`` is ahead of ``other`` (negative when behind)."""
        if self.major != other.major:
            raise VersionError(f"cannot compare minors across majors: {self} and {other}")
        return self.minor - other.minor


def parse_kubeadm_version(stdout: str) -> KubeVersion:
    """The version in ``kubeadm version -o short`` output (also the long ``version.Info`` form).

    Lines that are not a version (a warning printed before it) are skipped; the last version
    line wins.
    """
    m = _GIT_VERSION_RE.search(stdout)
    if m is not None:
        return KubeVersion.parse(m["v"])
    found: KubeVersion | None = None
    for line in stdout.splitlines():
        stripped = line.strip()
        if _VERSION_RE.fullmatch(stripped):
            found = KubeVersion.parse(stripped)
    if found is None:
        raise ParseError(f"no version in kubeadm version output: {stdout.strip()[:200]!r}")
    return found


class ConfigApi(enum.StrEnum):
    """A ``kubeadm.k8s.io`` configuration API version."""

    V1BETA2 = "v1beta2"
    V1BETA3 = "v1beta3"
    V1BETA4 = "v1beta4"

    @property
    def group_version(self) -> str:
        """The ``apiVersion`` value of the documents, e.g. ``kubeadm.k8s.io/v1beta4``."""
        return f"kubeadm.k8s.io/{self.value}"

    @classmethod
    def of(cls, value: str | ConfigApi) -> ConfigApi:
        """Accept ``v1beta3`` or ``kubeadm.k8s.io/v1beta3``."""
        if isinstance(value, ConfigApi):
            return value
        short = value.strip().removeprefix("kubeadm.k8s.io/")
        try:
            return cls(short)
        except ValueError:
            known = ", ".join(a.value for a in cls)
            raise VersionError(f"unknown kubeadm config API {value!r} (known: {known})") from None


OLDEST_SUPPORTED = KubeVersion(1, 15, 0)


def config_api_version(version: str | KubeVersion) -> ConfigApi:
    """The config API to render for a node whose kubeadm is ``version``.

    The newest API that version understands, because each new one fixes what the previous
    got wrong and the old ones are removed later (v1beta2 in 1.27, v1beta3 around 1.36):
    v1beta2 for 1.15 to 1.21, v1beta3 (which arrived in 1.22) for 1.22 to 1.30, v1beta4 (1.31)
    from 1.31 on. Rendering v1beta3 for 1.31+ would draw a deprecation warning today and a
    rejection tomorrow. Before 1.15 only v1beta1 exists, which this tool does not render.
    """
    v = KubeVersion.parse(version)
    if v.major != 1 or v.minor < OLDEST_SUPPORTED.minor:
        raise VersionError(
            f"kubeadm {v} is not supported: the oldest supported is v1.15 "
            "(the first to speak kubeadm.k8s.io/v1beta2)"
        )
    if v.minor <= 21:
        return ConfigApi.V1BETA2
    if v.minor <= 30:
        return ConfigApi.V1BETA3
    return ConfigApi.V1BETA4


def upgrade_step_allowed(current: KubeVersion, target: KubeVersion) -> bool:
    """kubeadm upgrades one minor at a time (1.y to 1.y+1) or patches within a minor."""
    if current.major != target.major or target < current:
        return False
    return target.minor - current.minor <= 1
