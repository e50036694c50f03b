"""The lab's process helpers a reboot's shutdown uses: a process's name, and SIGTERM with a
wait for the exit (etcd hands its leadership over on SIGTERM)."""

from __future__ import annotations

import subprocess
import sys

from tests.lab import procs

# Exits on SIGTERM only after saying so: what etcd does once it has handed leadership over.
GRACEFUL = (
    "import signal, sys, time\n"
    "def bye(*_):\n"
    "    print('handed over', flush=True); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "print('up', flush=True)\n"
    "time.sleep(60)\n"
)


def test_sigterm_and_wait_lets_a_process_finish_its_shutdown() -> None:
    proc = subprocess.Popen([sys.executable, "-c", GRACEFUL], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    assert procs.command_name(proc.pid).startswith("python")
    assert procs.terminate_and_wait([proc.pid], 10) == []
    assert proc.stdout.read() == "handed over\n"
    assert proc.wait() == 0
    assert procs.command_name(proc.pid) == ""
