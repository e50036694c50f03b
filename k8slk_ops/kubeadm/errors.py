"""The errors of the pure kubeadm layer.

One base class so a caller can catch "kubeadm said something we cannot use" in one place, and
subclasses (all ``ValueError``) so tests and callers can tell a bad input from bad output.
"""

from __future__ import annotations


class KubeadmError(ValueError):
    """Base of every error this package raises on purpose."""


class VersionError(KubeadmError):
    """A Kubernetes version that cannot be parsed, or that this tool does not support."""


class RenderError(KubeadmError):
    """A configuration that must not be rendered (missing CA pin, conflicting override...)."""


class ParseError(KubeadmError):
    """Output of kubeadm or kubectl that does not carry what the caller asked for."""
