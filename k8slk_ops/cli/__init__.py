"""The command line: the Typer app, its commands, the console entry point.

Imports nothing at package level: ``console`` must hold dependency warnings before anything
heavy loads (see ``console.py``).
"""
