"""The CLI reference page (docs/cli.md): every command, every option and its help text, read
from the typer app itself, so that the page is the ``--help`` of each command."""

from __future__ import annotations

import re

import cog
import typer

# typer (0.2x) carries its own copy of click, so parameters are read by what they have
# (param_type_name, opts, help), not by click's classes.


def _unstyle(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _default(param) -> str:
    value = param.default
    if getattr(param, "is_flag", False) or value in (None, (), []) or callable(value):
        return ""
    value = getattr(value, "value", value)  # an Enum choice: its text, as typed
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return f" Default: `{value}`."


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _row(param) -> str:
    if param.param_type_name == "argument":
        name = f"`{param.name.upper()}`"
        kind = "argument" + ("" if param.required else ", optional")
    else:
        name = ", ".join(f"`{flag}`" for flag in (*param.opts, *param.secondary_opts))
        kind = "flag" if getattr(param, "is_flag", False) else f"`{param.metavar or 'VALUE'}`"
    help_ = getattr(param, "help", None) or ""
    env = param.envvar if param.param_type_name == "option" and param.envvar else None
    extra = _default(param) + (f" Environment: `${env}`." if env else "")
    return f"| {name} | {kind} | {_cell(help_ + extra)} |"


def reference() -> None:
    from mbprof.cli import app

    group = typer.main.get_command(app)
    cog.outl("| Option | Takes | What it does |\n| --- | --- | --- |")
    for param in group.params:
        cog.outl(_row(param))
    for name in sorted(group.commands):
        command = group.commands[name]
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        usage = " ".join(
            ["[OPTIONS]"]
            + [p.name.upper() if p.required else f"[{p.name.upper()}]" for p in arguments]
        )
        cog.outl(f"\n## mbprof {name}\n\n`mbprof {name} {usage}`\n")
        cog.outl(_unstyle((command.help or "").replace("\b\n", "")).strip() + "\n")
        cog.outl("| Option | Takes | What it does |\n| --- | --- | --- |")
        for param in command.params:
            if param.name == "help":
                continue
            cog.outl(_row(param))
