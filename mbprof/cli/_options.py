"""Options that several commands share, declared once as groups: a decorator
(``@config_options``, ``@latency_options``, ``@output_options``) adds a group's options to a
command, which receives them as one value (``config``, ``latency``, ``out``). Parsing here is
torch-free; latency options go on as typed, for the API to check once. Also the one way
results leave a command (``emit``) and the output checks made before any work."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from mbprof.cli._app import results_stream
from mbprof.core.parsing import MAX_BATCH, MAX_CLASSES, MAX_MIN_TIME_S, MAX_WARMUP
from mbprof.core.settings import INT8_BACKENDS, RUNTIMES, LatencySettings, spoken
from mbprof.render.document import Document


def option_group(
    name: str, options: dict[str, tuple[Any, Any]], collect: Callable[..., Any]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator that gives a command the ``options`` (parameter -> (type, typer.Option))
    in place of its keyword-only parameter ``name``, which receives ``collect(**values)``."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command)
        params = []
        for param in signature.parameters.values():
            if param.name != name:
                params.append(param)
                continue
            params += [
                inspect.Parameter(
                    key, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind
                )
                for key, (kind, option) in options.items()
            ]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            values = {key: kwargs.pop(key) for key in options}
            return command(*args, **kwargs, **{name: collect(**values)})

        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        annotations = {k: v for k, v in command.__annotations__.items() if k != name}
        run.__annotations__ = {**annotations, **{k: kind for k, (kind, _) in options.items()}}
        return run

    return decorate


def file_option(flag: str, help: str) -> Any:
    """An optional file path option (``--csv FILE``): a path, never a folder."""
    return typer.Option(None, flag, help=help, dir_okay=False)


def _text(default: str, flag: str, metavar: str | None, help: str, *short: str) -> tuple:
    """A text option of a group: (its type, its typer.Option)."""
    return str, typer.Option(default, flag, *short, metavar=metavar, help=help)


def _flag(flag: str, help: str) -> tuple:
    return bool, typer.Option(False, flag, help=help)


# --------------------------------------------------------------------------- one configuration


def _config(
    width: str, depth: str, res: str, classes: str, arg: list[str] | None, reparam: bool
) -> dict:
    """The model options, parsed as typed (``api.make_spec`` then checks them against the
    model): ``make_spec(model, **config)``."""
    from mbprof.core.parsing import parse_int, parse_kwargs, parse_positive_float, parse_resolution

    return dict(
        width=parse_positive_float(width, "--width"),
        depth=parse_positive_float(depth, "--depth"),
        resolution=parse_resolution(res, "--res"),
        num_classes=parse_int(classes, "--classes", maximum=MAX_CLASSES),
        kwargs=dict(parse_kwargs(arg)),
        reparam=reparam,
    )


CLASSES_OPTION = typer.Option(
    "1000",
    "--classes",
    metavar="INT",
    help=f"Number of classes, an integer from 1 to {MAX_CLASSES:,}.",
)
ARG_OPTION = typer.Option(
    None,
    "--arg",
    metavar="KEY=VALUE",
    help="Extra builder keyword argument KEY=VALUE (repeatable, each key once), checked "
    "against the builder's parameter: a bool takes true/false or 1/0.",
)
REPARAM_OPTION = typer.Option(
    False,
    "--reparam",
    help="Measure the deployed form: each module's own re-parameterization hook (fuse, "
    "reparameterize, switch_to_deploy: MobileOne, RepViT, FastViT, LeViT, ...) run first, "
    "its output checked against the model as built.",
)
config_options = option_group(
    "config",
    {
        "width": _text("1.0", "--width", "FLOAT", "Width multiplier, a number > 0.", "-w"),
        "depth": _text("1.0", "--depth", "FLOAT", "Depth multiplier (models that have one)."),
        "res": _text(
            "224",
            "--res",
            "RES",
            "Input resolution: 224, or HEIGHTxWIDTH such as 160x224 (>= 32).",
            "-r",
        ),
        "classes": (str, CLASSES_OPTION),
        "arg": (list[str] | None, ARG_OPTION),
        "reparam": (bool, REPARAM_OPTION),
    },
    _config,
)


class Engine(str, Enum):
    fvcore = "fvcore"
    dispatch = "dispatch"


ENGINE_OPTION = typer.Option(
    Engine.fvcore,
    "--engine",
    metavar="ENGINE",
    help="What counts MAdds: fvcore (its JIT trace, the default) or dispatch (fvcore's "
    "rules on PyTorch's dispatcher, no TorchScript); the same figures. See docs/counting.md.",
)
WEIGHTS_OPTION = typer.Option(
    None,
    "--weights",
    metavar="FILE",
    help="Load a local checkpoint (a state dict; read with weights_only=True).",
    dir_okay=False,
)


# --------------------------------------------------------------------------- latency


def _latency(**typed: Any) -> LatencySettings:
    """The latency options as typed (text), for ``api.make_latency_settings``/``resolve_latency``
    to check once and resolve for this machine."""
    typed["min_time_s"] = typed.pop("min_time")
    return LatencySettings(**typed)


latency_options = option_group(
    "latency",
    {
        "device": _text(
            "auto",
            "--device",
            "DEVICE",
            "Where to run: cpu, cuda, or auto (cuda when torch sees a GPU).",
        ),
        "batch": _text(
            "1", "--batch", "INT", f"Images per forward pass, an integer from 1 to {MAX_BATCH:,}."
        ),
        "threads": (
            str | None,
            typer.Option(
                None,
                "--threads",
                metavar="INT",
                help="Intra-op threads for every backend, an integer from 1 to the logical CPUs "
                "of this machine (default: torch's current count).",
            ),
        ),
        "dtype": _text("fp32", "--dtype", "DTYPE", "Inference dtype: fp32, fp16 or bf16."),
        "backend": _text(
            "eager",
            "--backend",
            "BACKEND",
            spoken([r.help for r in RUNTIMES.values()]).replace("[", r"\[") + ".",
        ),
        "channels_last": _flag("--channels-last", "Run in the channels-last (NHWC) memory format."),
        "fuse_bn": _flag(
            "--fuse-bn", "Fold batch norm into the convolutions first (the deployed form)."
        ),
        "min_time": _text(
            "1.0",
            "--min-time",
            "SECONDS",
            f"Seconds of timed runs per configuration, a number > 0 and <= {MAX_MIN_TIME_S:g}.",
        ),
        "warmup": _text(
            "10", "--warmup", "INT", f"Untimed warm-up runs first, from 0 to {MAX_WARMUP:,}."
        ),
        "quantize": _text(
            "none",
            "--quantize",
            None,
            "none, or int8: post-training static quantization calibrated on random batches "
            f"(backends {' and '.join(INT8_BACKENDS)}, from fp32); reports the speed-up over "
            "fp32 and how close the outputs stay.",
        ),
    },
    _latency,
)


# --------------------------------------------------------------------------- output


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


FORMAT_OPTION = typer.Option(
    OutputFormat.table,
    "--format",
    "-f",
    metavar="FORMAT",
    help="How to print results: table, csv, json or markdown.",
)
OUTPUT_OPTION = typer.Option(
    None,
    "--output",
    "-o",
    metavar="FILE",
    help="Write the results to this file instead of the terminal.",
    dir_okay=False,
)


@dataclass(frozen=True)
class Output:
    """Where a command's document goes: ``--format`` and ``--output``."""

    fmt: OutputFormat
    path: Path | None
    html: Path | None = None  # also one self-contained HTML page

    def check(self) -> None:
        """Refuse, before any work, an --output or --html that cannot be written."""

        check_output(self.path)
        check_output(self.html, "--html")
        check_outputs({"--output": self.path, "--html": self.html})

    def emit(self, doc: Document) -> None:

        if self.html is not None:
            import typer

            from mbprof.core.files import write_atomic
            from mbprof.render.document import safe_text
            from mbprof.render.html import to_html

            write_atomic(self.html, to_html(doc))
            typer.echo(f"wrote {safe_text(self.html)}", err=True)
        emit(doc, self.fmt, self.path)


HTML_OPTION = typer.Option(
    None,
    "--html",
    metavar="FILE",
    help="Also write the result as one self-contained HTML page (tables, figures, styles "
    "and script inline; nothing fetched).",
    dir_okay=False,
)
output_options = option_group(
    "out",
    {
        "fmt": (OutputFormat, FORMAT_OPTION),
        "path": (Path | None, OUTPUT_OPTION),
        "html": (Path | None, HTML_OPTION),
    },
    Output,
)


def check_output(output: Path | None, option: str = "--output") -> None:
    if output is not None:
        from mbprof.core.files import check_writable

        check_writable(output, option)


def _identity(path: Path) -> tuple | None:
    """What ``path`` writes to: an existing file's inode (hard and symbolic links agree),
    a new file's resolved path; None for a device or FIFO (writes go through, none
    replaces another)."""
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
    outputs: dict[str, Path | None], inputs: dict[str, Path | None] | None = None
) -> None:
    """Refuse, before any work, two options that would write the same file (one would
    overwrite the other) and an output that would overwrite an input. Keys are the
    options as the user wrote them (``--csv``), values their paths or None."""
    from mbprof.core.errors import MbprofError

    seen: dict[tuple, tuple[str, Path]] = {}
    for option, path in (inputs or {}).items():
        if path is not None and (key := _identity(Path(path))) is not None:
            seen.setdefault(key, (option, Path(path)))
    readers = {option for option, _ in seen.values()}
    for option, path in outputs.items():
        if path is None or (key := _identity(Path(path))) is None:
            continue
        if key in seen:
            other, first = seen[key]
            both = (
                f"{other} and {option} name the same file {str(path)!r}"
                if str(first) == str(path)
                else f"{other} {str(first)!r} and {option} {str(path)!r} are the same file"
            )
            if other in readers:
                raise MbprofError(f"{both}: {option} would overwrite what mbprof reads")
            raise MbprofError(f"{both}; give each output its own path")
        seen[key] = (option, Path(path))


def render(doc: Document, fmt: str) -> str:
    from mbprof.render import document as export

    if fmt == "csv":
        return export.to_csv(doc)
    if fmt == "json":
        return export.to_json(doc)
    if fmt == "markdown":
        return export.to_markdown(doc)
    from mbprof.render.console import render_table_text

    return render_table_text(doc)


def emit(doc: Document, fmt: str, output: Path | None = None) -> None:
    """Print ``doc`` in ``fmt`` on the real stdout (user code's prints go to stderr),
    or write it whole to ``output``."""
    if output is not None:
        from mbprof.core.files import write_atomic
        from mbprof.render.document import safe_text

        write_atomic(output, render(doc, fmt))
        typer.echo(f"wrote {safe_text(output)}", err=True)
        return
    stdout = results_stream()
    if fmt == "table":
        from rich.console import Console

        from mbprof.render.console import print_document, terminal_width

        print_document(doc, Console(file=stdout, width=terminal_width(stdout)))
        return
    stdout.write(render(doc, fmt))


# One exit-code rule for every command: 0 when every figure asked for was measured (and,
# for `check`, every limit holds); 1 when a figure could not be had (the others are
# printed, each missing one named on stderr in one line) or a limit is exceeded; 2 for bad
# input or when nothing could be measured; 130 / 143 when interrupted.
EXIT_MISSING = 1


def exit_if_missing(missing: tuple[str, ...] | list[str]) -> None:
    from mbprof.render.document import safe_text

    for line in missing:
        typer.echo(f"mbprof: not measured: {safe_text(line)}", err=True)
    if missing:
        raise typer.Exit(EXIT_MISSING)
