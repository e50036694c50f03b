"""Secret patterns: what must never be printed is found; public pins are not."""

from __future__ import annotations

from k8slk_ops.kubeadm import find_secrets, redact, secret_patterns
from tests.unit.pem import pem_private_key

TOKEN = "z28v5d.4vm6rzekoibear23"
KEY = "c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f"
PIN = "sha256:" + "7c" * 32


def test_patterns_have_a_secret_group() -> None:
    assert secret_patterns()
    for pattern in secret_patterns():
        assert "secret" in pattern.groupindex


def test_join_command_token_and_key_but_not_pin() -> None:
    text = (
        f"  kubeadm join 10.10.0.100:6443 --token {TOKEN} \\\n"
        f"\t--discovery-token-ca-cert-hash {PIN} \\\n"
        f"\t--control-plane --certificate-key {KEY}\n"
    )
    assert find_secrets(text) == [TOKEN, KEY]
    cleaned = redact(text)
    assert TOKEN not in cleaned and KEY not in cleaned
    assert PIN in cleaned


def test_upload_certs_key_on_the_next_line() -> None:
    text = "[upload-certs] Using certificate key:\n" + KEY + "\n"
    assert find_secrets(text) == [KEY]
    logged = (
        "2024-01-01T00:00:00Z kubeadm.out [upload-certs] Using certificate key:\n"
        f"2024-01-01T00:00:00Z kubeadm.out {KEY}\n"
    )
    assert find_secrets(logged) == [KEY]


def test_config_fields() -> None:
    text = (
        f"certificateKey: {KEY}\n"
        f'certificateKey: "{KEY}"\n'
        f"  token: {TOKEN}\n"
        f'{{"certificateKey": "{KEY}"}}\n'
    )
    assert find_secrets(text) == [KEY, TOKEN]


def test_pem_private_keys_even_when_cut() -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC\n"
    full = pem_private_key("RSA", body)
    (found,) = find_secrets("before\n" + full + "after\n")
    assert found == full.rstrip("\n")
    assert redact("before\n" + full + "after\n") == "before\n<redacted>\nafter\n"
    cut = pem_private_key("EC", body, end=False)
    assert find_secrets(cut) == [cut]
    cert = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
    assert find_secrets(cert) == []


def test_kubeconfig_values() -> None:
    kubeconfig = (
        "users:\n"
        "- name: kubernetes-admin\n"
        "  user:\n"
        "    client-certificate-data: LS0tLS1CRUdJTiBDRVJU\n"
        "    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVk=\n"
        "- name: sa\n"
        "  user:\n"
        "    token: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n"
    )
    assert find_secrets(kubeconfig) == [
        "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVk=",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
    ]


def test_public_things_are_not_secrets() -> None:
    text = (
        f"caCertHashes:\n- {PIN}\n"
        "kubeadm join 1.2.3.4:6443 --token <value withheld> \\\n"
        "\t--control-plane --certificate-key <value withheld>\n"
        "token ID z28v5d deleted\n"
        "[bootstrap-token] Configuring bootstrap tokens\n"
        "image: registry.k8s.io/kube-apiserver:v1.31.3\n"
        "lb.example.com:6443 10.0.0.10\n"
    )
    assert find_secrets(text) == []
    assert redact(text) == text
