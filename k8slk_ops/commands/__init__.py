"""Built-in commands that live in their own modules, each registering on
``k8slk_ops.cliutil.app``; ``cli.py`` imports them, and they import ``cliutil``, never ``cli``."""
