"""``python -m tests.fleet up|down|serve``: the fleet's command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

from tests.fleet import keys, layout, process


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.fleet", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a fleet of simulated LinuxKit nodes in the background")
    up.add_argument("--dir", required=True, type=Path)
    up.add_argument("--nodes", type=int, default=20)
    up.add_argument("--control-planes", type=int, default=1)
    up.add_argument("--kubeadm-seconds", type=float, default=2.0)
    up.add_argument("--settle", type=float, default=5.0)
    up.add_argument("--ready-delay", type=float, default=1.0)
    up.add_argument("--port", type=int, default=layout.DEFAULT_PORT)
    up.add_argument("--kubernetes-version", default=layout.DEFAULT_VERSION)
    up.add_argument("--fail-nodes", default="", help="comma-separated nodes whose kubeadm fails")
    down = sub.add_parser("down", help="stop the fleet of DIR")
    down.add_argument("--dir", required=True, type=Path)
    serve = sub.add_parser("serve", help="run the fleet in the foreground (what `up` starts)")
    serve.add_argument("--dir", required=True, type=Path)
    serve.add_argument("--ready-fd", type=int, default=None)
    return p


def up(args: argparse.Namespace) -> int:
    directory: Path = args.dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = layout.FleetConfig(
        nodes=layout.node_specs(args.nodes, args.control_planes),
        port=args.port,
        kubernetes_version=args.kubernetes_version,
        settle=args.settle,
        kubeadm_seconds=args.kubeadm_seconds,
        ready_delay=args.ready_delay,
        fail_nodes=[n for n in args.fail_nodes.split(",") if n],
    )
    unknown = set(config.fail_nodes) - {n.name for n in config.nodes}
    if unknown:
        raise ValueError(f"--fail-nodes names no node of this fleet: {', '.join(sorted(unknown))}")
    keys.write_client_key(directory / layout.CLIENT_KEY)
    layout.save(directory, config)
    layout.write_inventory(directory, config)
    (directory / layout.STATS_FILE).unlink(missing_ok=True)
    pid = process.start(directory)
    print(f"fleet up: {len(config.nodes)} nodes on port {config.port}, pid {pid}, "
          f"inventory {directory / layout.INVENTORY}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            return up(args)
        if args.command == "down":
            stats = process.stop(args.dir.resolve())
            print(json.dumps(stats, indent=1))
            return 0
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
        from tests.fleet.server import serve

        asyncio.run(serve(args.dir.resolve(), args.ready_fd))
        return 0
    except (process.FleetError, ValueError) as exc:
        print(f"fleet: {exc}")
        return 1
