"""run: a command of the user's, on the node's SSH shell or inside the kubelet container.

A string is shell code the playbook's author wrote (run with ``sh -c``); a list is an argv whose
items are quoted for the remote shell one by one, so values never get spliced into shell code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import NodeError
from k8slk_ops.engine.context import PlanContext, RunContext
from k8slk_ops.engine.step import Action, Duration, Step, StepPlan, do
from k8slk_ops.output.events import EventKind


class CommandOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    command: str | list[str] = Field(min_length=1)
    where: Literal["node", "kubelet"] = Field(default="node", alias="in")
    timeout: Duration = 300.0
    ok_codes: list[int] = Field(default_factory=lambda: [0], alias="okCodes")

    @field_validator("command")
    @classmethod
    def _no_nul(cls, value: str | list[str]) -> str | list[str]:
        """A NUL cannot pass through an argv or a shell: it would cut the command short."""
        items = [value] if isinstance(value, str) else value
        if any("\0" in item for item in items):
            raise ValueError("a command cannot hold a NUL character")
        return value


def argv_of(options: CommandOptions) -> list[str]:
    if isinstance(options.command, str):
        return ["sh", "-c", options.command]
    return list(options.command)


class RunCommand(Step[CommandOptions]):
    name = "run"
    phase = "run"

    def plan(self, options: CommandOptions, ctx: PlanContext, node: str) -> StepPlan:
        shown = options.command if isinstance(options.command, str) else " ".join(options.command)
        place = "in the kubelet container" if options.where == "kubelet" else "on the node"
        return do(Action(f"run {shown!r} {place}", {"argv": argv_of(options)}))

    async def apply(self, options: CommandOptions, ctx: RunContext, node: str) -> bool:
        lk = await ctx.node(node)
        argv = argv_of(options)
        if options.where == "kubelet":
            result = await lk.kubelet_exec(argv, timeout=options.timeout)
        else:
            result = await lk.shell(argv, timeout=options.timeout)
        out = _whole(ctx, result.stdout)
        for line in out.splitlines()[-20:]:
            ctx.emit(node, self.phase, EventKind.PROGRESS, line)
        if result.exit_status not in options.ok_codes:
            err = _whole(ctx, result.stderr).splitlines()
            raise NodeError(
                f"command exited {result.exit_status}",
                phase=self.phase,
                log_tail=kubeadm.failure_tail([*out.splitlines(), *err]),
            )
        return True


def _whole(ctx: RunContext, raw: bytes) -> str:
    """A command's output with its secrets hidden while it is whole.

    Output leaves line by line, and a secret may span lines (a PEM key) or follow its
    announcement on the next line (``Using certificate key:``): found in the whole text, each
    is registered with the redactor (line by line) and replaced before the text is split."""
    text = raw.decode(errors="replace").strip()
    for secret in kubeadm.find_secrets(text):
        ctx.add_secret(secret)
    return kubeadm.redact(text)
