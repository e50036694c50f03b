"""What a run tells the world: its events and report rows as data, and everything that turns
them into what a user sees (terminal, plain lines, JSON, log file, metrics)."""
