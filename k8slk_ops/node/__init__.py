"""One LinuxKit node: driving it over its SSH connection, its facts, its paths."""
