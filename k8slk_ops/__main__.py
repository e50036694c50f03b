"""Allow ``python -m k8slk_ops``."""

from k8slk_ops.console import main

main()
