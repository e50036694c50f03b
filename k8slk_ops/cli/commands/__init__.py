"""Built-in commands that live in their own modules, each registering on
``k8slk_ops.cli.cliutil.app``; ``cli/main.py`` imports them, and they import ``cliutil``, never
``main``."""
