"""The command line's shared parts, torch-free (``mbprof --help`` stays instant): the typer
app, the error policy every command shares (bad input: one line, exit 2; ``--debug`` shows the
traceback), standard streams that never end a command in a traceback, the option groups
(``@config_options`` gives a command ``config``), the one way results leave a command
(``emit``) with the output checks made before any work, and the sweep's progress bar."""

from __future__ import annotations

import codecs
import functools
import inspect
import io
import os
import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer
from typer.core import TyperGroup

from mbprof import __version__
from mbprof.core.errors import MbprofError
from mbprof.core.parsing import MAX_BATCH, MAX_CLASSES, MAX_MIN_TIME_S, MAX_WARMUP
from mbprof.core.settings import INT8_BACKENDS, RUNTIMES, LatencySettings, spoken
from mbprof.render.document import Document

if TYPE_CHECKING:
    from mbprof.core.records import ModelSpec

# What a terminal that cannot show Unicode (LANG=C) gets instead: readable ASCII, never a
# UnicodeEncodeError; what sits in a table cell keeps one character, so columns stay aligned.
_ASCII = {"≤": "<=", "≥": ">=", "×": "x", "…": "~", "–": "-", "—": "-", "→": "->"}
_ASCII.update({"←": "<-", "µ": "u", "±": "+-", "·": ".", "•": "*", "≈": "~", "Δ": "D"})
_ASCII.update({"‘": "'", "’": "'", "“": '"', "”": '"', "\u00a0": " "})


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


def _ascii_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
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
        raise MbprofError(
            "standard output is closed, so the results cannot be printed; redirect it to a "
            "file, or give --output FILE"
        )


def prepare_streams() -> None:
    """Make stdout and stderr safe to print to before a command runs: closed ones, and an
    ASCII locale (what an encoding lacks is printed as ASCII look-alikes)."""
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
            except LookupError:
                pass


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
    from mbprof.render.document import safe_text

    # Messages quote files' text: whitespace folded to one line, control characters shown.
    typer.echo(f"mbprof: error: {safe_text(' '.join(str(message).split()))}", err=True)


# --- stdout is for results -------------------------------------------------------------
# While a command runs, sys.stdout points at stderr: what a user's module prints cannot
# corrupt a result (`--format json | jq`); results go to `results_stream()`, the real stdout.

_results: list[TextIO | None] = []  # the real stdout of each running command, innermost last


def results_stream() -> TextIO | None:
    """Where mbprof's results go: the command's real stdout."""
    return _results[-1] if _results else sys.stdout


@contextmanager
def user_output_to_stderr() -> Iterator[None]:
    real = sys.stdout
    _results.append(real)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = real
        _results.pop()


# --- help that reads well at 80 columns and at 120 ----------------------------------------
# typer's rich help keeps a docstring's line breaks in the commands list and shows `<bool>` on
# a flag, `<str>` on text options. Here paragraphs are joined for rich to wrap; a flag shows no
# value, an option its metavar (or its flag in capitals), an argument its name alone.


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


def _readable(command: Any) -> None:
    if command.help:
        command.help = rewrap(command.help)
    get_params = command.get_params  # --help is made on the first call: tidied there too
    command.get_params = lambda ctx: readable_params(get_params(ctx))


class MbprofGroup(TyperGroup):
    """Runs every command under mbprof's error policy (also under typer's CliRunner)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _readable(self)
        for command in self.commands.values():
            _readable(command)
            if command.callback is not None:  # a context manager wraps as a decorator too
                command.callback = user_output_to_stderr()(command.callback)

    def list_commands(self, ctx: Any) -> list[str]:
        # In the order of their names, whichever module registers them.
        return sorted(self.commands)

    def main(self, args: Any = None, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv or os.environ.get("MBPROF_DEBUG", "") not in ("", "0")
        prepare_streams()  # a closed stdout, an ASCII locale: one line, not a traceback
        from mbprof.core import errors

        try:
            # SIGTERM (a CI runner's timeout) stops a sweep as Ctrl-C does: finished rows kept.
            with errors.watch(sigterm=True):
                named = {"prog_name": extra.get("prog_name") or "mbprof", "standalone_mode": False}
                code = super().main(args=argv, **extra | named)
            code = code if isinstance(code, int) else 0
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("mbprof: interrupted", err=True)
            code = errors.exit_code()  # 130 for Ctrl-C, 143 for SIGTERM
        except typer.Exit as exc:
            code = exc.exit_code
        except _NO_ARGS_IS_HELP as exc:  # a bare `mbprof`: the help, and no empty error line
            message = exc.format_message()
            if message.strip():  # typer's rich help is already printed; plain help is here
                typer.echo(message, err=True)
            code = EXIT_BAD_INPUT
        except Exception as exc:  # noqa: BLE001 - the policy is one line unless --debug
            if debug:
                raise
            code = EXIT_BAD_INPUT
            if isinstance(exc, MbprofError):
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

    from mbprof.render.document import safe_text

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

    def start(spec: ModelSpec) -> None:
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


# --- options several commands share, as groups; output -----------------------------------


def _typed(option: Any) -> tuple[Any, Any]:
    """(type, typer.Option): as given, or as its default says (None: optional text)."""
    if isinstance(option, tuple):
        return option
    return (str | None if option.default is None else type(option.default)), option


def option_group(
    name: str, options: dict[str, Any], collect: Callable[..., Any]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator: the ``options`` (parameter -> typer.Option, or (type, typer.Option)) in
    place of the command's keyword-only parameter ``name``, which gets ``collect(**values)``."""
    typed = {key: _typed(option) for key, option in options.items()}
    group = [
        inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for key, (kind, option) in typed.items()
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            values = {key: kwargs.pop(key) for key in options}
            return command(*args, **kwargs, **{name: collect(**values)})

        signature = inspect.signature(command)
        params = [
            q for p in signature.parameters.values() for q in (group if p.name == name else [p])
        ]
        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        annotations = {k: v for k, v in command.__annotations__.items() if k != name}
        run.__annotations__ = annotations | {key: kind for key, (kind, _) in typed.items()}
        return run

    return decorate


def file_option(flag: str, help: str, metavar: str | None = None) -> Any:
    """An optional file path option (``--csv FILE``): a path, never a folder."""
    return typer.Option(None, flag, metavar=metavar, help=help, dir_okay=False)


def choices(name: str, *values: str) -> Any:
    """A choice option's type: an Enum of ``values`` (typer lists and checks them)."""
    return Enum(name, {value: value for value in values}, type=str)


def _option(default: Any, flag: str, metavar: str | None, help: str, *short: str, **extra: Any):
    return typer.Option(default, flag, *short, metavar=metavar, help=help, **extra)


def flag(name: str, help: str, **extra: Any) -> Any:
    return typer.Option(False, name, help=help, **extra)


def _config(
    width: str, depth: str, res: str, classes: str, arg: list[str] | None, reparam: bool
) -> dict:
    """``make_spec(model, **config)``: parsed here, checked against the model there."""
    from mbprof.core.parsing import parse_int, parse_kwargs, parse_positive_float, parse_resolution

    return dict(
        width=parse_positive_float(width, "--width"),
        depth=parse_positive_float(depth, "--depth"),
        resolution=parse_resolution(res, "--res"),
        num_classes=parse_int(classes, "--classes", maximum=MAX_CLASSES),
        kwargs=dict(parse_kwargs(arg)),
        reparam=reparam,
    )


CLASSES_OPTION = _option(
    "1000", "--classes", "INT", f"Number of classes, an integer from 1 to {MAX_CLASSES:,}."
)
ARG_OPTION = _option(
    None,
    "--arg",
    "KEY=VALUE",
    "Extra builder keyword argument KEY=VALUE (repeatable, each key once), checked "
    "against the builder's parameter: a bool takes true/false or 1/0.",
)
REPARAM_OPTION = flag(
    "--reparam",
    "Measure the deployed form: each module's own re-parameterization hook (fuse, "
    "reparameterize, switch_to_deploy: MobileOne, RepViT, FastViT, LeViT, ...) run first, "
    "its output checked against the model as built.",
)
config_options = option_group(
    "config",
    {
        "width": _option("1.0", "--width", "FLOAT", "Width multiplier, a number > 0.", "-w"),
        "depth": _option("1.0", "--depth", "FLOAT", "Depth multiplier (models that have one)."),
        "res": _option(
            "224",
            "--res",
            "RES",
            "Input resolution: 224, or HEIGHTxWIDTH such as 160x224 (>= 32).",
            "-r",
        ),
        "classes": CLASSES_OPTION,
        "arg": (list[str] | None, ARG_OPTION),
        "reparam": REPARAM_OPTION,
    },
    _config,
)


Engine = choices("Engine", "fvcore", "dispatch")
ENGINE_OPTION = typer.Option(
    Engine.fvcore,
    "--engine",
    metavar="ENGINE",
    help="What counts MAdds: fvcore (its JIT trace, the default) or dispatch (fvcore's "
    "rules on PyTorch's dispatcher, no TorchScript); the same figures. See docs/counting.md.",
)
WEIGHTS_OPTION = file_option(
    "--weights", "Load a local checkpoint (a state dict; read with weights_only=True).", "FILE"
)


latency_options = option_group(
    "latency",
    {
        "device": _option(
            "auto",
            "--device",
            "DEVICE",
            "Where to run: cpu, cuda, or auto (cuda when torch sees a GPU).",
        ),
        "batch": _option(
            "1", "--batch", "INT", f"Images per forward pass, an integer from 1 to {MAX_BATCH:,}."
        ),
        "threads": typer.Option(
            None,
            "--threads",
            metavar="INT",
            help="Intra-op threads for every backend, an integer from 1 to the logical CPUs "
            "of this machine (default: torch's current count).",
        ),
        "dtype": _option("fp32", "--dtype", "DTYPE", "Inference dtype: fp32, fp16 or bf16."),
        "backend": _option(
            "eager",
            "--backend",
            "BACKEND",
            spoken([r.help for r in RUNTIMES.values()]).replace("[", r"\[") + ".",
        ),
        "channels_last": flag("--channels-last", "Run in the channels-last (NHWC) memory format."),
        "fuse_bn": flag(
            "--fuse-bn", "Fold batch norm into the convolutions first (the deployed form)."
        ),
        "min_time_s": _option(
            "1.0",
            "--min-time",
            "SECONDS",
            f"Seconds of timed runs per configuration, a number > 0 and <= {MAX_MIN_TIME_S:g}.",
        ),
        "warmup": _option(
            "10", "--warmup", "INT", f"Untimed warm-up runs first, from 0 to {MAX_WARMUP:,}."
        ),
        "quantize": _option(
            "none",
            "--quantize",
            None,
            "none, or int8: post-training static quantization calibrated on random batches "
            f"(backends {' and '.join(INT8_BACKENDS)}, from fp32); reports the speed-up over "
            "fp32 and how close the outputs stay.",
        ),
    },
    LatencySettings,  # as typed: api.resolve_latency checks them once, for this machine
)


OutputFormat = choices("OutputFormat", "table", "csv", "json", "markdown")
FORMAT_OPTION = _option(
    OutputFormat.table,
    "--format",
    "FORMAT",
    "How to print results: table, csv, json or markdown.",
    "-f",
)
OUTPUT_OPTION = _option(
    None,
    "--output",
    "FILE",
    "Write the results to this file instead of the terminal.",
    "-o",
    dir_okay=False,
)


@dataclass(frozen=True)
class Output:
    """Where a command's document goes: ``--format`` and ``--output``."""

    fmt: OutputFormat
    path: Path | None
    html: Path | None = None  # also one self-contained HTML page

    def __post_init__(self) -> None:  # before any work
        check_outputs({"--output": self.path, "--html": self.html})

    def emit(self, doc: Document) -> None:
        if self.html is not None:
            from mbprof.render.html import to_html

            write_file(self.html, to_html(doc))
        emit(doc, self.fmt, self.path)


HTML_OPTION = file_option(
    "--html",
    "Also write the result as one self-contained HTML page (tables, figures, styles and "
    "script inline; nothing fetched).",
    "FILE",
)
output_options = option_group(
    "out",
    {
        "fmt": FORMAT_OPTION,
        "path": (Path | None, OUTPUT_OPTION),
        "html": (Path | None, HTML_OPTION),
    },
    Output,
)


def _identity(path: Path) -> tuple | None:
    """An existing file's inode (links agree), a new file's real path; None for a device or
    FIFO (writes go through, none replaces another)."""
    import os
    import stat

    try:
        found = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    if not stat.S_ISREG(found.st_mode):
        return None
    return ("inode", found.st_dev, found.st_ino)


def check_outputs(
    outputs: dict[str, Path | None], inputs: dict[str, Path | None] | None = None, new=False
) -> None:
    """Refuse, before any work, outputs that cannot be written (but in a ``new`` folder),
    write the same file, or would overwrite an input (keys: the options, ``--csv``)."""
    from mbprof.core.errors import MbprofError
    from mbprof.core.files import check_writable

    for option, path in outputs.items():
        if path is not None and not new:
            check_writable(path, option)
    seen: dict[tuple, tuple[str, Path]] = {}  # inputs first: an output may not overwrite one
    for option, path in [*(inputs or {}).items(), *outputs.items()]:
        if path is None or (key := _identity(Path(path))) is None:
            continue
        if key in seen and option in outputs:
            other, first = seen[key]
            both = (
                f"{other} and {option} name the same file {str(path)!r}"
                if str(first) == str(path)
                else f"{other} {str(first)!r} and {option} {str(path)!r} are the same file"
            )
            if other not in outputs:
                raise MbprofError(f"{both}: {option} would overwrite what mbprof reads")
            raise MbprofError(f"{both}; give each output its own path")
        seen.setdefault(key, (option, Path(path)))


def render(doc: Document | str, fmt: str) -> str:
    """``doc`` in ``fmt`` (text as it is)."""
    from mbprof.render import document as export
    from mbprof.render.console import render_table_text

    formats = {"csv": export.to_csv, "json": export.to_json, "markdown": export.to_markdown}
    return doc if isinstance(doc, str) else formats.get(fmt, render_table_text)(doc)


def write_file(path: Path, text: str | bytes) -> None:
    """Write ``path`` whole, and say so on stderr."""
    from mbprof.core.files import write_atomic
    from mbprof.render.document import safe_text

    write_atomic(path, text)
    typer.echo(f"wrote {safe_text(path)}", err=True)


def emit(doc: Document | str, fmt: str, output: Path | None = None) -> None:
    """Print ``doc`` in ``fmt`` on the real stdout, or write it whole to ``output``."""
    stdout = results_stream()
    if output is not None:
        write_file(output, render(doc, fmt))
    elif fmt == "table":
        from rich.console import Console

        from mbprof.render.console import print_document, terminal_width

        print_document(doc, Console(file=stdout, width=terminal_width(stdout)))
    else:
        stdout.write(render(doc, fmt))


# One exit-code rule for every command: 0 when every figure asked for was measured (and,
# for `check`, every limit holds); 1 when a figure could not be had (the others are
# printed, each missing one named on stderr in one line) or a limit is exceeded; 2 for bad
# input or when nothing could be measured; 130 / 143 when interrupted.
EXIT_FAILED = 1
