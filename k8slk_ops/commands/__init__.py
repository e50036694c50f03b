"""Commands that register themselves on ``k8slk_ops.cli.app``, one module per command group."""
