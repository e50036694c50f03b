"""Plain helpers every layer may import: the program's errors, what to do next, host
patterns, and the one writer of local files."""
