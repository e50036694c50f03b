"""Built-in commands that live in their own modules, each registering on ``k8slk_ops.cli.app``."""
