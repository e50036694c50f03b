"""Names vulture sees defined and never used, that something outside the code uses by name.

Read by vulture only (pyproject.toml, [tool.vulture]); never imported or run. Typer commands,
pydantic validators and pytest fixtures are recognised by their decorators there; what is left
is listed here, each with who uses it. Anything else vulture reports has no caller: delete it.
"""

# ruff: noqa
# fmt: off

# Typer reads a command's signature and annotations (cliutil.command builds them).
_.__signature__
_.__annotations__

# pydantic: fields filled from the inventory's keys (aliases), read back with model_dump.
init_configuration
cluster_configuration
join_configuration
kubelet_configuration
kube_proxy_configuration

# A task state `ctr tasks ls` prints, matched by value (facts.TaskState).
CREATED

# Attributes the standard library reads: yaml's Dumper, logging's LogRecord.
_.default_flow_style
_.exc_text

# ssh/patches: why each patch exists, for the person reading it and for the debug log's reader.
purpose

# asyncssh calls these by name: a transport's writelines, a client's host key check, the
# key pair an auth object carries; an async context manager's __aexit__ arguments.
_.writelines
_.validate_host_public_key
_._keypair
exc_type
tb

# asyncssh server callbacks of the fleet's simulated sshd and the tests' own servers.
_.connection_lost
_.begin_auth
_.password_auth_supported
_.auth_completed
_.public_key_auth_supported
_.validate_public_key

# http.server reads these of the lab's API server double.
daemon_threads
request_queue_size
_.get_request
protocol_version
_.do_GET
_.do_POST
_.do_PUT
_.do_PATCH
_.do_DELETE

# pytest fixtures a test asks for by name for their effect only.
node_verifies
no_settle
short_watch

# tests/benchlab.py: the timeline's rows read their fields by name (getattr on the table).
_.cleanup_tool
