"""Options several commands share, as groups (``@config_options`` gives a command ``config``),
parsed torch-free; the one way results leave a command (``emit``), outputs checked first."""

from __future__ import annotations

import functools
import inspect
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from mbprof.cli._app import results_stream
from mbprof.core import parsing
from mbprof.core.errors import MbprofError
from mbprof.core.files import check_writable, write_atomic
from mbprof.core.parsing import MAX_BATCH, MAX_CLASSES, MAX_MIN_TIME_S, MAX_WARMUP
from mbprof.core.settings import INT8_BACKENDS, RUNTIMES, LatencySettings, spoken
from mbprof.render.document import Document, safe_text, to_csv, to_json, to_markdown


def option_group(
    name: str, collect: Callable[..., Any], **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator: the ``options`` (parameter -> typer.Option, or (type, typer.Option); the
    type is the default's, None meaning optional text) in place of the command's keyword-only
    parameter ``name``, which gets ``collect(**values)``."""
    group = []
    for key, option in options.items():
        kind, option = option if isinstance(option, tuple) else (type(option.default), option)
        kind = str | None if kind is type(None) else kind
        group.append(
            inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        )

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
        return run

    return decorate


def option(default: Any, flags: str, help: str, **extra: Any) -> Any:
    """A typer.Option from "--res -r RES": its flags, then the name of its value (if any)."""
    names = flags.split()
    metavar = None if names[-1].startswith("-") else names.pop()
    return typer.Option(default, *names, metavar=metavar, help=help, **extra)


def file_option(flags: str, help: str, **extra: Any) -> Any:
    """An optional file path option (``--csv FILE``): a path, never a folder."""
    return option(None, flags, help, dir_okay=False, **extra)


def flag(flags: str, help: str, **extra: Any) -> Any:
    return option(False, flags, help, **extra)


def choices(name: str, *values: str) -> Any:
    """A choice option's type: an Enum of ``values`` (typer lists and checks them)."""
    return Enum(name, {value: value for value in values}, type=str)


def _config(
    width: str, depth: str, res: str, classes: str, arg: list[str] | None, reparam: bool
) -> dict:
    """``make_spec(model, **config)``: parsed here, checked against the model there."""
    return dict(
        width=parsing.parse_positive_float(width, "--width"),
        depth=parsing.parse_positive_float(depth, "--depth"),
        resolution=parsing.parse_resolution(res, "--res"),
        num_classes=parsing.parse_int(classes, "--classes", maximum=MAX_CLASSES),
        kwargs=dict(parsing.parse_kwargs(arg)),
        reparam=reparam,
    )


CLASSES_OPTION = option(
    "1000", "--classes INT", f"Number of classes, an integer from 1 to {MAX_CLASSES:,}."
)
ARG_OPTION = option(
    None,
    "--arg KEY=VALUE",
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
    _config,
    width=option("1.0", "--width -w FLOAT", "Width multiplier, a number > 0."),
    depth=option("1.0", "--depth FLOAT", "Depth multiplier (models that have one)."),
    res=option(
        "224", "--res -r RES", "Input resolution: 224, or HEIGHTxWIDTH such as 160x224 (>= 32)."
    ),
    classes=CLASSES_OPTION,
    arg=(list[str] | None, ARG_OPTION),
    reparam=REPARAM_OPTION,
)


Engine = choices("Engine", "fvcore", "dispatch")
ENGINE_OPTION = option(
    Engine.fvcore,
    "--engine ENGINE",
    "What counts MAdds: fvcore (its JIT trace, the default) or dispatch (fvcore's "
    "rules on PyTorch's dispatcher, no TorchScript); the same figures. See docs/counting.md.",
)
WEIGHTS_OPTION = file_option(
    "--weights FILE", "Load a local checkpoint (a state dict; read with weights_only=True)."
)
BACKENDS_HELP = spoken([r.help for r in RUNTIMES.values()]).replace("[", r"\[") + "."
latency_options = option_group(
    "latency",
    LatencySettings,  # as typed: api.resolve_latency checks them once, for this machine
    device=option(
        "auto", "--device DEVICE", "Where to run: cpu, cuda, or auto (cuda when torch sees a GPU)."
    ),
    batch=option(
        "1", "--batch INT", f"Images per forward pass, an integer from 1 to {MAX_BATCH:,}."
    ),
    threads=option(
        None,
        "--threads INT",
        "Intra-op threads for every backend, an integer from 1 to the logical CPUs "
        "of this machine (default: torch's current count).",
    ),
    dtype=option("fp32", "--dtype DTYPE", "Inference dtype: fp32, fp16 or bf16."),
    backend=option("eager", "--backend BACKEND", BACKENDS_HELP),
    channels_last=flag("--channels-last", "Run in the channels-last (NHWC) memory format."),
    fuse_bn=flag("--fuse-bn", "Fold batch norm into the convolutions first (the deployed form)."),
    min_time_s=option(
        "1.0",
        "--min-time SECONDS",
        f"Seconds of timed runs per configuration, a number > 0 and <= {MAX_MIN_TIME_S:g}.",
    ),
    warmup=option("10", "--warmup INT", f"Untimed warm-up runs first, from 0 to {MAX_WARMUP:,}."),
    quantize=option(
        "none",
        "--quantize",
        "none, or int8: post-training static quantization calibrated on random batches "
        f"(backends {' and '.join(INT8_BACKENDS)}, from fp32); reports the speed-up over "
        "fp32 and how close the outputs stay.",
    ),
)


OutputFormat = choices("OutputFormat", "table", "csv", "json", "markdown")
OUTPUT_OPTION = file_option(
    "--output -o FILE", "Write the results to this file instead of the terminal."
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
    "--html FILE",
    "Also write the result as one self-contained HTML page (tables, figures, styles and "
    "script inline; nothing fetched).",
)
output_options = option_group(
    "out",
    Output,
    fmt=option(
        OutputFormat.table,
        "--format -f FORMAT",
        "How to print results: table, csv, json or markdown.",
    ),
    path=(Path | None, OUTPUT_OPTION),
    html=(Path | None, HTML_OPTION),
)


def _identity(path: Path) -> tuple | None:
    """An existing file's inode (links agree), a new file's real path; None for a device."""
    try:
        found = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return ("inode", found.st_dev, found.st_ino) if stat.S_ISREG(found.st_mode) else None


def check_outputs(
    outputs: dict[str, Path | None], inputs: dict[str, Path | None] | None = None, new=False
) -> None:
    """Refuse outputs (option -> path) that cannot be written (unless ``new``), write one
    file twice or would overwrite an input."""
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
    from mbprof.render.console import render_table_text

    formats = {"csv": to_csv, "json": to_json, "markdown": to_markdown}
    return doc if isinstance(doc, str) else formats.get(fmt, render_table_text)(doc)


def write_file(path: Path, text: str | bytes) -> None:
    """Write ``path`` whole, and say so on stderr."""
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


# Exit codes: 0 when every figure asked for was measured (for `check`, every limit holds); 1
# when one could not be had or a limit is exceeded; 2 for bad input; 130 / 143 interrupted.
EXIT_FAILED = 1
