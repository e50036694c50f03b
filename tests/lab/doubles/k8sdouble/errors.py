"""Failures the doubles report the way kubeadm and kubectl do."""

from __future__ import annotations

from k8sdouble.kubeadmtexts import STACK_HINT, phase_error

__all__ = ["STACK_HINT", "ApiError", "CommandError", "PhaseError"]


class CommandError(Exception):
    """A failure that ends the command: ``text`` goes to stderr, then exit ``code``.

    ``hint`` adds kubeadm's stack-trace line, as every kubeadm error does.
    """

    def __init__(self, text: str, code: int = 1, hint: bool = True) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.hint = hint


class PhaseError(CommandError):
    """``error execution phase <phase>: <text>``: how kubeadm reports a failed workflow phase."""

    def __init__(self, phase: str, text: str) -> None:
        super().__init__(phase_error(phase, text))
        self.phase = phase


class ApiError(Exception):
    """An answer of the API double other than 2xx, or no answer at all."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
