"""``python -m tests.lab up|down|fault|image|known-hosts|rss``: the lab from a shell (demos, CI,
benchmarks, and an engineer poking at a node)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from tests.lab.errors import LabError
from tests.lab.lab import DEFAULT_VERSION, FAULTS, Lab


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start fresh nodes; prints the inventory's path")
    up.add_argument("--dir", required=True)
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--control-planes", type=int, default=1)
    up.add_argument("--kubernetes-version", default=DEFAULT_VERSION)
    up.add_argument("--settle", type=float, default=5.0, help="kubeadm.sh's settle (image: 5 s)")
    up.add_argument("--ready-delay", type=float, default=1.0)
    up.add_argument("--slot", type=int, default=None, help="1..250 (default: a free one)")
    up.add_argument("--load-balancer", action="store_true",
                    help="a TCP load balancer on 127.0.SLOT.250:6443 as controlPlaneEndpoint")
    up.add_argument("--strict-network", action="store_true",
                    help="the default: nodes stay NotReady until a CNI config is in their "
                         "/etc/cni/net.d, as real kubelets do")
    up.add_argument("--lenient-network", action="store_true",
                    help="nodes turn Ready without a pod network (unlike a real node)")
    up.add_argument("--no-addons", action="store_true",
                    help="an inventory without the lab's CNI manifest as cluster.addons")
    up.add_argument("--real-etcd", action=argparse.BooleanOptionalAction, default=True,
                    help="control planes run Debian's etcd as their etcd static pod, holding the "
                    "cluster's state (the default; --no-real-etcd: a JSON file under the lab "
                    "directory instead, with no quorum)")

    down = sub.add_parser("down", help="stop everything the lab started")
    down.add_argument("--dir", required=True)

    fault = sub.add_parser("fault", help=f"inject a fault: {', '.join(FAULTS)}")
    fault.add_argument("--dir", required=True)
    fault.add_argument("node")
    fault.add_argument("kind", choices=FAULTS)
    fault.add_argument("args", nargs=argparse.REMAINDER)

    img = sub.add_parser("image", help="set the image the lab serves (a node's next reboot)")
    img.add_argument("--dir", required=True)
    img.add_argument("--kubernetes-version", required=True)

    # What the lab's reboot(8) in a node's shell calls (not for people).
    for internal in ("power-cycle", "reboot-now"):
        cmd = sub.add_parser(internal)
        cmd.add_argument("--dir", required=True)
        cmd.add_argument("node")

    kh = sub.add_parser("known-hosts", help="rewrite DIR/known_hosts from the current host keys")
    kh.add_argument("--dir", required=True)

    rss = sub.add_parser("rss", help="resident memory per node (sum over its processes)")
    rss.add_argument("--dir", required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            started = time.monotonic()
            lab = Lab.up(
                args.dir, nodes=args.nodes, control_planes=args.control_planes,
                kubernetes_version=args.kubernetes_version, settle=args.settle,
                ready_delay=args.ready_delay, slot=args.slot,
                load_balancer=args.load_balancer, strict_network=not args.lenient_network,
                pod_network_addon=not args.no_addons,
                real_etcd=args.real_etcd,
            )
            took = time.monotonic() - started
            print(f"{len(lab.nodes)} nodes up in {took:.1f} s (slot {lab.slot})", file=sys.stderr)
            print(lab.inventory_path)
        elif args.command == "down":
            try:
                lab = Lab.open(args.dir)
            except LabError as e:
                print(f"nothing to do: {e}", file=sys.stderr)
                return 0
            lab.down()
        elif args.command == "fault":
            Lab.open(args.dir).fault(args.node, args.kind, *args.args)
        elif args.command == "image":
            Lab.open(args.dir).set_image(args.kubernetes_version)
        elif args.command == "power-cycle":
            Lab.open(args.dir).power_cycle(args.node)
        elif args.command == "reboot-now":
            Lab.open(args.dir).reboot_now(args.node)
        elif args.command == "known-hosts":
            lab = Lab.open(args.dir)
            lab.rewrite_known_hosts()
            print(lab.known_hosts_path)
        elif args.command == "rss":
            for name, size in Lab.open(args.dir).rss().items():
                print(f"{name} {size / 2**20:.1f} MiB")
    except (LabError, KeyError) as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1
    return 0
