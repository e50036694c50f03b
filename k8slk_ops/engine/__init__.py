"""The run engine: one operation's lifecycle (lock, probe, plan, execute, report), the
playbooks, what steps see (``context``) and the contract they fulfil (``step``).

It imports nothing of ``steps/``: the command line hands it the step registry.
"""
