"""Commands that register themselves on ``k8slk_ops.cli.app``."""
