"""Allow ``python -m k8slk_ops``."""

from k8slk_ops.cli.console import main

main()
