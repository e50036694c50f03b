"""The one-pass check that lets text without a secret through agrees with the patterns."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8slk_ops.kubeadm import secrets

SAMPLES = [
    "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef",
    "--certificate-key " + "a" * 64,
    'certificateKey: "' + "b" * 64 + '"',
    "[upload-certs] Using certificate key:\n" + "c" * 64,
    "-----BEGIN EC PRIVATE" " KEY-----\nMHcCAQEE\n-----END EC PRIVATE" " KEY-----",
    "client-key-data: LS0tLS1CRUdJTg==",
    '{"token": "s3cr3t"}',
    "w-1 connect ok: kubeadm v1.31.3",
    "2026-11-29T21:13:50Z kubeadm.out [preflight] Running pre-flight checks",
    "sha256:" + "d" * 64,
]


def matches_any(text: str) -> bool:
    return any(p.search(text) for p in secrets.secret_patterns())


def test_the_samples_agree() -> None:
    for text in SAMPLES:
        assert (secrets._ANY.search(text) is not None) == matches_any(text), text
    assert secrets.redact(SAMPLES[0]).endswith("<redacted>")
    assert secrets.redact(SAMPLES[-1]) == SAMPLES[-1]


@given(st.lists(st.sampled_from([*SAMPLES, " ", "\n", "x", "token", ":", "."]), max_size=6)
       .map("".join))
def test_generated_text_agrees(text: str) -> None:
    assert (secrets._ANY.search(text) is not None) == matches_any(text)


def test_the_redactor_tries_the_patterns_only_on_text_that_may_hold_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from k8slk_ops import kubeadm
    from k8slk_ops.output.redact import Redactor

    redactor = Redactor()
    redactor.add("registered-secret-value")
    assert redactor.redact(SAMPLES[0]).endswith("<redacted>")

    def no_patterns() -> tuple[re.Pattern[str], ...]:
        raise AssertionError("patterns tried on text that holds no secret")

    monkeypatch.setattr(kubeadm, "secret_patterns", no_patterns)
    line = "w-1 join ok: registered-secret-value\x1b[2J"
    assert redactor.redact(line) == "w-1 join ok: <redacted>\\x1b[2J"
    assert redactor.redact(SAMPLES[7]) == SAMPLES[7]
