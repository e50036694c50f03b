"""Join commands printed by kubeadm init and --print-join-command, in every form."""

from __future__ import annotations

import pytest

from k8slk_ops.kubeadm import ParseError, parse_join_commands, parse_print_join_command

H = "sha256:" + "7c" * 32
K = "c309edc3ccf996d37cc5abeb84df33a80899f0e9a698ad270b52cbc5c8876b5f"
TOKEN = "z28v5d.4vm6rzekoibear23"

INIT_OK = (
    "Your Kubernetes control-plane has initialized successfully!\n"
    "\n"
    "To start using your cluster, you need to run the following as a regular user:\n"
    "\n"
    "  mkdir -p $HOME/.kube\n"
    "  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n"
    "  sudo chown $(id -u):$(id -g) $HOME/.kube/config\n"
    "\n"
    "Alternatively, if you are the root user, you can run:\n"
    "\n"
    "  export KUBECONFIG=/etc/kubernetes/admin.conf\n"
    "\n"
    "You should now deploy a pod network to the cluster.\n"
    'Run "kubectl apply -f [podnetwork].yaml" with one of the options listed at:\n'
    "  https://kubernetes.io/docs/concepts/cluster-administration/addons/\n"
    "\n"
    "You can now join any number of control-plane nodes running the following command on "
    "each as root:\n"
    "\n"
    f"  kubeadm join 10.10.0.100:6443 --token {TOKEN} \\\n"
    f"\t--discovery-token-ca-cert-hash {H} \\\n"
    f"\t--control-plane --certificate-key {K}\n"
    "\n"
    "Please note that the certificate-key gives access to cluster sensitive data, keep it "
    "secret!\n"
    "As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use\n"
    '"kubeadm init phase upload-certs --upload-certs" to reload certs afterward.\n'
    "\n"
    "Then you can join any number of worker nodes by running the following on each as root:\n"
    "\n"
    f"kubeadm join 10.10.0.100:6443 --token {TOKEN} \\\n"
    f"\t--discovery-token-ca-cert-hash {H} \n"
)


def test_init_output_with_both_blocks() -> None:
    cp, worker = parse_join_commands(INIT_OK)
    assert cp.endpoint == worker.endpoint == "10.10.0.100:6443"
    assert cp.token == worker.token == TOKEN
    assert cp.ca_cert_hashes == worker.ca_cert_hashes == (H,)
    assert cp.control_plane and cp.certificate_key == K
    assert not worker.control_plane and worker.certificate_key is None
    assert cp.withheld == worker.withheld == ()


def test_four_space_continuations_before_v1_21() -> None:
    text = INIT_OK.replace("\t--", "    --")
    assert "\t" not in text
    assert parse_join_commands(text) == parse_join_commands(INIT_OK)


def test_worker_block_only_without_endpoint() -> None:
    text = (
        "Then you can join any number of worker nodes by running the following on each as root:\n"
        "\n"
        f"kubeadm join 192.168.56.100:6443 --token {TOKEN} \\\n"
        f"    --discovery-token-ca-cert-hash {H} \n"
    )
    (cmd,) = parse_join_commands(text)
    assert (cmd.endpoint, cmd.control_plane) == ("192.168.56.100:6443", False)


def test_endpoint_without_upload_certs() -> None:
    text = (
        "You can now join any number of control-plane nodes by copying certificate authorities\n"
        "and service account keys on each node and then running the following as root:\n"
        "\n"
        f"  kubeadm join lb.example:6443 --token {TOKEN} \\\n"
        f"\t--discovery-token-ca-cert-hash {H} \\\n"
        "\t--control-plane \n"
        "\n"
        f"kubeadm join lb.example:6443 --token {TOKEN} \\\n"
        f"\t--discovery-token-ca-cert-hash {H} \n"
    )
    cp, worker = parse_join_commands(text)
    assert cp.control_plane and cp.certificate_key is None
    assert not worker.control_plane


def test_withheld_values() -> None:
    text = INIT_OK.replace(TOKEN, "<value withheld>").replace(K, "<value withheld>")
    cp, worker = parse_join_commands(text)
    assert cp.token is None and cp.certificate_key is None
    assert cp.withheld == ("token", "certificate-key")
    assert worker.withheld == ("token",)
    assert cp.ca_cert_hashes == (H,)


def test_lines_from_the_node_log_with_prefixes() -> None:
    logged = "\n".join(
        f"2024-10-01T09:36:0{i % 10}Z kubeadm.out {line}"
        for i, line in enumerate(INIT_OK.splitlines())
    )
    assert parse_join_commands(logged) == parse_join_commands(INIT_OK)


def test_prose_and_malformed_commands_ignored() -> None:
    text = (
        "then run 'kubeadm join' on each node\n"
        "kubeadm join --token abc\n"
        f"kubeadm join 1.2.3.4:6443 --token {TOKEN} --discovery-token-ca-cert-hash sha256:xyz\n"
        "kubeadm joined the cluster\n"
    )
    assert parse_join_commands(text) == []
    assert parse_join_commands("") == []


def test_print_join_command() -> None:
    line = (
        f"kubeadm join 10.220.62.31:6443 --token abcdef.0123456789abcdef "
        f"--discovery-token-ca-cert-hash {H} \n"
    )
    cmd = parse_print_join_command(line)
    assert cmd.endpoint == "10.220.62.31:6443"
    assert cmd.token == "abcdef.0123456789abcdef"
    assert cmd.ca_cert_hashes == (H,)
    assert not cmd.control_plane
    cp = parse_print_join_command(line.rstrip("\n") + f"--control-plane --certificate-key {K}\n")
    assert cp.control_plane and cp.certificate_key == K


def test_print_join_command_equals_form_and_several_pins() -> None:
    h2 = "sha256:" + "01" * 32
    cmd = parse_print_join_command(
        f"kubeadm join [fd00::1]:6443 --token=abcdef.0123456789abcdef "
        f"--discovery-token-ca-cert-hash={H} --discovery-token-ca-cert-hash {h2}"
    )
    assert cmd.endpoint == "[fd00::1]:6443"
    assert cmd.ca_cert_hashes == (H, h2)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "cannot use --certificate-key without --print-join-command\n",
        f"kubeadm join 1.2.3.4:6443 --discovery-token-ca-cert-hash {H}\n",
        f"kubeadm join 1.2.3.4:6443 --token ABCDEF.0123456789abcdef --discovery-token-ca-cert-hash {H}",
        f"kubeadm join 1.2.3.4:6443 --token {TOKEN}\nkubeadm join 1.2.3.5:6443 --token {TOKEN}\n",
        f"kubeadm join 1.2.3.4:6443 --token {TOKEN} --certificate-key abc --control-plane",
    ],
)
def test_print_join_command_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse_print_join_command(text)


def test_unsafe_flag_is_reported() -> None:
    (cmd,) = parse_join_commands(
        f"kubeadm join 1.2.3.4:6443 --token {TOKEN} --discovery-token-unsafe-skip-ca-verification"
    )
    assert cmd.unsafe_skip_ca_verification
    assert cmd.ca_cert_hashes == ()
