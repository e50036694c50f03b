"""``python -m tests.fleet up|down|serve``."""

from tests.fleet.cli import main

raise SystemExit(main())
