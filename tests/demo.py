"""The demo: a lab of 1 control plane and 3 workers, bootstrapped, shown, taken down.

Run with `nox -s demo` (or `python -m tests.demo` as root with the lab's packages installed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.lab import Lab


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--control-planes", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="k8slk-demo-"))
    nodes = args.workers + args.control_planes
    print(f"== lab up: {args.control_planes} control plane(s), {args.workers} worker(s)")
    t0 = time.monotonic()
    lab = Lab.up(workdir / "lab", nodes=nodes, control_planes=args.control_planes, settle=1.0)
    print(f"   {nodes} nodes up in {time.monotonic() - t0:.1f}s; inventory {lab.inventory_path}")
    code = 1
    try:
        print("== k8slk-ops bootstrap")
        kubeconfig = workdir / "admin.kubeconfig"
        t0 = time.monotonic()
        code = subprocess.call(
            [sys.executable, "-m", "k8slk_ops", "bootstrap", str(lab.inventory_path),
             "--kubeconfig-out", str(kubeconfig)]
        )
        print(f"   exit {code} after {time.monotonic() - t0:.1f}s; kubeconfig {kubeconfig}")
        print("== kubectl get nodes (inside cp-1's kubelet container)")
        out = lab.kubelet_exec("cp-1", ["kubectl", "get", "nodes", "-o", "wide"])
        print(out.stdout, end="")
        print("== the pod network bootstrap applied (cluster.addons: cni/lab-cni.yaml)")
        out = lab.kubelet_exec("cp-1", ["kubectl", "get", "ds", "-n", "kube-system"])
        print(out.stdout, end="")
        if args.keep:
            print(f"== lab left running: python -m tests.lab down --dir {workdir / 'lab'}")
            return code
    finally:
        if not args.keep:
            print("== lab down")
            lab.down()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
