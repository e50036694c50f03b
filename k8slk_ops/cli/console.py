"""The console entry point: warnings are held before anything else is imported.

Importing the command line imports asyncssh, cryptography, pydantic and rich, and some of them
warn while they load; ``depwarnings.hold`` has to come first for those warnings to be kept off
the terminal, so it lives in this module of its own, which imports nothing else at the top.
"""

from __future__ import annotations


def main() -> None:
    """``k8slk-ops``: hold dependency warnings, then run the command line."""
    from k8slk_ops.cli import depwarnings

    depwarnings.hold()
    from k8slk_ops.cli.main import main as cli_main

    cli_main()
