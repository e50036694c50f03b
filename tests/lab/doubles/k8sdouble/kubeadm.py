"""The kubeadm double's command line: the subcommands the node image's kubeadm has."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from k8sdouble import env
from k8sdouble.errors import STACK_HINT, CommandError


class Parser(argparse.ArgumentParser):
    """argparse that fails the way cobra does: ``Error: unknown flag: --x``, exit 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CommandError(f"Error: {message}", hint=False)


def _version(args: list[str]) -> int:
    p = Parser(prog="kubeadm version")
    p.add_argument("-o", "--output", default="")
    ns = p.parse_args(args)
    v = env.node().version
    major, minor = v.lstrip("v").split(".")[:2]
    info = {"major": major, "minor": minor, "gitVersion": v, "gitCommit": "0" * 40,
            "gitTreeState": "clean", "buildDate": "2024-11-20T00:00:00Z",
            "goVersion": "go1.22.9", "compiler": "gc", "platform": "linux/amd64"}
    if ns.output == "short":
        print(v)
    elif ns.output == "json":
        print(json.dumps({"clientVersion": info}, indent=2))
    elif ns.output == "yaml":
        print("clientVersion:\n" + "".join(f"  {k}: {val}\n" for k, val in info.items()), end="")
    elif ns.output:
        raise CommandError(f'error: invalid output format: {ns.output}', hint=False)
    else:
        fields = ", ".join(f'{k[0].upper()}{k[1:]}:"{val}"' for k, val in info.items())
        print(f"kubeadm version: &version.Info{{{fields}}}")
    return 0


def _init(args: list[str]) -> int:
    if args[:2] == ["phase", "upload-certs"]:
        p = Parser(prog="kubeadm init phase upload-certs")
        p.add_argument("--upload-certs", action="store_true")
        p.add_argument("--certificate-key")
        p.add_argument("--config")
        p.add_argument("--skip-certificate-key-print", action="store_true")
        ns = p.parse_args(args[2:])
        from k8sdouble import tokens

        return tokens.upload_certs(ns.upload_certs, ns.certificate_key)
    p = Parser(prog="kubeadm init")
    p.add_argument("--config", required=True)
    p.add_argument("--upload-certs", action="store_true")
    p.add_argument("--skip-token-print", action="store_true")
    p.add_argument("--skip-certificate-key-print", action="store_true")
    p.add_argument("--v", "-v")
    ns = p.parse_args(args)
    from k8sdouble import init

    return init.run(ns.config, ns.upload_certs, ns.skip_token_print)


def _join(args: list[str]) -> int:
    p = Parser(prog="kubeadm join")
    p.add_argument("--config", required=True)
    p.add_argument("--v", "-v")
    ns = p.parse_args(args)
    from k8sdouble import join

    return join.run(ns.config)


def _token(args: list[str]) -> int:
    from k8sdouble import tokens

    if not args:
        raise CommandError("Error: missing subcommand; \"token\" is not meant to be run on its own",
                           hint=False)
    sub, rest = args[0], args[1:]
    if sub == "create":
        p = Parser(prog="kubeadm token create")
        p.add_argument("token", nargs="?")
        p.add_argument("--ttl", default="24h0m0s")
        p.add_argument("--description", default="")
        p.add_argument("--print-join-command", action="store_true")
        p.add_argument("--certificate-key")
        p.add_argument("--usages", default="signing,authentication")
        p.add_argument("--groups", default="system:bootstrappers:kubeadm:default-node-token")
        p.add_argument("--config")
        ns = p.parse_args(rest)
        return tokens.create(ns.token, ns.ttl, ns.description, ns.print_join_command,
                             ns.certificate_key, [u for u in ns.usages.split(",") if u],
                             [g for g in ns.groups.split(",") if g])
    if sub == "list":
        p = Parser(prog="kubeadm token list")
        p.add_argument("-o", "--output", default="text")
        ns = p.parse_args(rest)
        return tokens.list_tokens(ns.output)
    if sub == "delete":
        return tokens.delete(rest)
    raise CommandError(f'Error: unknown command "{sub}" for "kubeadm token"', hint=False)


def _reset(args: list[str]) -> int:
    p = Parser(prog="kubeadm reset")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--cri-socket")
    p.add_argument("--config")
    ns = p.parse_args(args)
    from k8sdouble import reset

    return reset.run(ns.force)


def _upgrade(args: list[str]) -> int:
    from k8sdouble import upgrade

    return upgrade.main(args)


def _certs(args: list[str]) -> int:
    from k8sdouble import certs

    return certs.main(args)


def _alpha(args: list[str]) -> int:
    from k8sdouble import certs  # `kubeadm alpha certs` before v1.21

    return certs.alpha(args)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "version": _version, "init": _init, "join": _join, "token": _token, "reset": _reset,
    "upgrade": _upgrade, "certs": _certs, "alpha": _alpha,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("Usage:\n  kubeadm [command]\n\nAvailable Commands:\n  " + "\n  ".join(COMMANDS))
        return 0
    command = COMMANDS.get(argv[0])
    try:
        if command is None:
            raise CommandError(f'unknown command "{argv[0]}" for "kubeadm"\nRun \'kubeadm '
                               "--help' for usage.", hint=False)
        return command(argv[1:])
    except CommandError as exc:
        sys.stdout.flush()
        print(exc.text, file=sys.stderr)
        if exc.hint:
            print(STACK_HINT, file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
