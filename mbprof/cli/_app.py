"""The typer app, torch-free: the error policy every command shares (bad input: one line,
exit 2), standard streams that never end a command in a traceback, the sweep's progress bar."""

from __future__ import annotations

import codecs
import inspect
import io
import os
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import typer
from typer.core import TyperGroup

from mbprof import __version__
from mbprof.core import errors
from mbprof.render.document import safe_text

# What a terminal that cannot show Unicode (LANG=C) gets instead: readable ASCII, never a
# UnicodeEncodeError; what sits in a table cell keeps one character, so columns stay aligned.
_PLAIN = "<= >= x ~ - - -> <- u +- . * ~ D ' ' \" \"".split()
_ASCII = dict(zip("≤≥×…–—→←µ±·•≈Δ‘’“”", _PLAIN, strict=True))


def _ascii_for(char: str) -> str:
    if char in _ASCII:
        return _ASCII[char]
    name = unicodedata.name(char, "")
    if name.startswith("BOX DRAWINGS"):
        return "-" if "HORIZONTAL" in name else "|" if "VERTICAL" in name else "+"
    if name.startswith(("FULL BLOCK", "LEFT ", "RIGHT ", "UPPER ", "LOWER ")) and "BLOCK" in name:
        return "#"
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or "?"


def _ascii_fallback(error: UnicodeEncodeError) -> tuple[str, int]:  # encoding only
    return "".join(map(_ascii_for, error.object[error.start : error.end])), error.end


codecs.register_error("mbprof-ascii", _ascii_fallback)


class _ClosedStdout(io.TextIOBase):
    """A closed stdout (``mbprof models >&-``): printing is one line of error; --output works."""

    encoding, errors = "utf-8", "strict"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not text:
            return 0
        raise errors.MbprofError(
            "standard output is closed, so the results cannot be printed; redirect it to a "
            "file, or give --output FILE"
        )


def prepare_streams() -> None:
    """Make closed stdout and stderr safe to print to, and an ASCII locale (look-alikes)."""
    if sys.stdout is None:
        sys.stdout = _ClosedStdout()
    if sys.stderr is None:  # nowhere to say anything: the exit code has to do
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            try:
                "≤×…─".encode(stream.encoding)
            except UnicodeEncodeError:
                stream.reconfigure(errors="mbprof-ascii")


try:  # typer >= 0.16 vendors click; older releases depend on it
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

EXIT_BAD_INPUT = 2
# The API's errors name its parameters; on the command line the flags are named instead.
_SAME = "device batch threads dtype backend channels_last fuse_bn warmup quantize parts"
_SAME += " mem_dtype chunks filters kernel stride padding by max_depth workers executor"
_SAME += " scheduler cache_latency"
FLAGS = {field: "--" + field.replace("_", "-") for field in _SAME.split()}
FLAGS |= {"min_time_s": "--min-time", "num_classes": "--classes", "kwargs": "--arg"}
FLAGS |= {"input_shape": "--input"}
# click >= 8.2 raises this for a bare `mbprof` (older ones print the help and exit 0).
_NO_ARGS_IS_HELP = getattr(click_exceptions, "NoArgsIsHelpError", ())


def fail(message: str) -> None:
    # Messages quote files' text: whitespace folded to one line, control characters shown.
    typer.echo(f"mbprof: error: {safe_text(' '.join(str(message).split()))}", err=True)


# stdout is for results: while a command runs, sys.stdout points at stderr, so what a user's
# module prints cannot corrupt a result (`--format json | jq`); results go to the real stdout.
_results: list[TextIO | None] = []  # the real stdout of each running command, innermost last


def results_stream() -> TextIO | None:
    """Where mbprof's results go: the command's real stdout."""
    return _results[-1] if _results else sys.stdout


@contextmanager
def user_output_to_stderr() -> Iterator[None]:
    _results.append(sys.stdout)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = _results.pop()


# Help that reads well at 80 columns and at 120: typer's rich help keeps a docstring's line
# breaks in the commands list and shows `<bool>` on a flag, `<str>` on text options. Here
# paragraphs are joined for rich to wrap; a flag shows no value, an option its metavar (or its
# flag in capitals), an argument its name alone.


def rewrap(text: str) -> str:
    """``text`` with each paragraph on one line (one starting with click's \\b keeps its)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def _value_name(param: Any) -> str:
    """FILE or DIR for a path, else the long flag in capitals (--min-time -> MIN_TIME)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.is_path:
        return {"file": "FILE", "dir": "DIR"}.get(descriptor.path_type, "PATH")
    flags = [o for o in param.opts if o.startswith("--")] or [param.name or "value"]
    return flags[0].lstrip("-").upper().replace("-", "_")


def readable_params(params: list[Any]) -> list[Any]:
    for param in params:
        if param.param_type_name == "argument" or getattr(param, "is_flag", False):
            param.display_type_rich = lambda ctx: None  # a flag takes no value; an argument
            if param.param_type_name == "argument" and param.metavar is None:
                param.metavar = param.name.upper()  # usage: mbprof diff BEFORE AFTER
        elif param.metavar is None:
            param.metavar = _value_name(param)
    return params


class MbprofGroup(TyperGroup):
    """Runs every command under mbprof's error policy (also under typer's CliRunner)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in [self, *self.commands.values()]:
            command.help = command.help and rewrap(command.help)
            # --help is made on the first call of get_params: tidied there too
            command.get_params = lambda ctx, get=command.get_params: readable_params(get(ctx))
            if command is not self and command.callback is not None:
                command.callback = user_output_to_stderr()(command.callback)

    def list_commands(self, ctx: Any) -> list[str]:
        # In the order of their names, whichever module registers them.
        return sorted(self.commands)

    def main(self, args: Any = None, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv or os.environ.get("MBPROF_DEBUG", "") not in ("", "0")
        prepare_streams()  # a closed stdout, an ASCII locale: one line, not a traceback
        try:
            # SIGTERM (a CI runner's timeout) stops a sweep as Ctrl-C does: finished rows kept.
            with errors.watch(sigterm=True):
                named = {"prog_name": extra.get("prog_name") or "mbprof", "standalone_mode": False}
                code = super().main(args=argv, **extra | named)
            code = code if isinstance(code, int) else 0
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("mbprof: interrupted", err=True)
            code = errors.exit_code()  # 130 for Ctrl-C, 143 for SIGTERM
        except _NO_ARGS_IS_HELP as exc:  # a bare `mbprof`: the help, and no empty error line
            message = exc.format_message()
            if message.strip():  # typer's rich help is already printed; plain help is here
                typer.echo(message, err=True)
            code = EXIT_BAD_INPUT
        except Exception as exc:  # noqa: BLE001 - the policy is one line unless --debug
            if debug:
                raise
            code = EXIT_BAD_INPUT
            if isinstance(exc, errors.MbprofError):
                fail(exc.text_with(FLAGS))
            elif isinstance(exc, click_exceptions.UsageError):  # bad option, argument, choice
                where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
                # typer checks a choice with pydantic, whose messages start "Value error, "
                fail(exc.format_message().replace("Value error, ", "").rstrip(".") + where)
            else:
                fail(f"{type(exc).__name__}: {exc} (run again with --debug for the traceback)")
                code = 1
        if extra.get("standalone_mode", True):
            sys.exit(code)
        return code


app = typer.Typer(
    cls=MbprofGroup,
    name="mbprof",
    help=(
        "What a mobile network costs before it ships: MAdds, parameters, activation memory "
        "and latency of MobileNets and their baselines, at any width and resolution.\n\n"
        "Example: mbprof compare --widths 0.35,0.5,1.0,1.4 --res 96,224"
    ),
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mbprof {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """mbprof: what a mobile network costs before it ships."""


@contextmanager
def sweep_progress(total: int) -> Iterator[Any]:
    """A bar over ``total`` configurations: ``start(spec)``, ``phase(text)``, ``done(row)``."""
    from types import SimpleNamespace

    from rich import progress as bar
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True)
    progress = bar.Progress(
        bar.SpinnerColumn(),
        bar.TextColumn("{task.description}", markup=False),  # text, not markup
        bar.BarColumn(),
        bar.MofNCompleteColumn(),
        bar.TimeElapsedColumn(),
        bar.TextColumn("eta"),
        bar.TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task("starting", total=total)
    label = ""

    def start(spec: Any) -> None:  # a ModelSpec
        nonlocal label
        label = safe_text(spec.label)  # names from budget files reach the terminal
        progress.update(task, description=label)

    def phase(text: str) -> None:
        progress.update(task, description=f"{label}: {text}" if label else text)

    def done(row: dict[str, Any]) -> None:
        progress.advance(task)
        if not console.is_terminal:
            return
        if row.get("error"):
            figure = Text.assemble(("failed", "red"), f": {safe_text(row['error'])}")
        elif row.get("latency_ms") is not None:
            figure = Text(f"{row['latency_ms']:,.2f} ms")
        else:
            madds = row.get("madds")
            figure = Text("" if madds is None else f"{madds / 1e6:,.2f}M MAdds")
        console.print(Text.assemble(("done", "dim"), f" {label} ", figure))

    with progress:
        yield SimpleNamespace(start=start, phase=phase, done=done)
