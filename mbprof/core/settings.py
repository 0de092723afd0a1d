"""Settings, torch-free: the choices of every knob, memory and latency settings (errors
name the field; the CLI says its flag)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mbprof.core.errors import MbprofError
from mbprof.core.parsing import (
    MAX_BATCH,
    MAX_MIN_TIME_S,
    MAX_WARMUP,
    parse_choice,
    parse_int,
    parse_positive_float,
    parse_threads,
    refused,
)

DEVICES = ("auto", "cpu", "cuda")
LATENCY_DTYPES = ("fp32", "fp16", "bf16")
QUANTIZE = ("none", "int8")
# Bytes per activation element of the dtypes the memory analysis knows.
MEM_DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4, "int8": 1}
MEM_DTYPES = tuple(MEM_DTYPE_BYTES)
MEM_MODES = ("materialized", "efficient")
CHUNKS_PER_CHANNEL = "channel"
ENGINES = ("fvcore", "dispatch")


def spoken(names: tuple[str, ...] | list[str]) -> str:
    """'a, b or c'."""
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


@dataclass(frozen=True)
class Runtime:
    """What a latency backend accepts; its code is the module of the same name in
    ``mbprof.analysis.latency``. A new runtime is a row here, that module and its docs."""

    name: str
    about: str = ""  # in --backend's help: "compile (torch.compile)"
    devices: tuple[str, ...] = ("cpu", "cuda")
    dtypes: tuple[str, ...] = LATENCY_DTYPES
    runs: str = ""  # what one run is, where the device is refused
    layout: str = ""  # why channels_last is refused ("": accepted)
    int8: bool = False  # post-training static quantization from fp32
    layers: str = ""  # how --layers profiles it ("": it cannot be)
    extra: str = ""  # the pip extra that installs it ...
    modules: tuple[str, ...] = ()  # ... and the modules it needs
    package: str = "torch"  # whose version the environment gives

    @property
    def help(self) -> str:
        install = f'needs: pip install "mbprof[{self.extra}]"' if self.extra else ""
        said = "; ".join(part for part in (self.about, install) if part)
        return f"{self.name} ({said})" if said else self.name


_EXPORTED = {"devices": ("cpu",), "dtypes": ("fp32",), "int8": True}  # run as files, on the CPU
RUNTIMES = {
    runtime.name: runtime
    for runtime in (
        Runtime("eager", layers="torch.profiler"),
        Runtime("compile", about="torch.compile"),
        Runtime(
            "onnxruntime",
            runs="an ONNX Runtime CPU session",
            layout="ONNX Runtime chooses its own memory layout",
            layers="its own profile",
            extra="onnx",
            modules=("onnxruntime", "onnx", "onnxscript"),
            package="onnxruntime",
            **_EXPORTED,
        ),
        Runtime(
            "executorch",
            about="XNNPACK",
            runs="an ExecuTorch program (XNNPACK) on the CPU",
            layout="ExecuTorch chooses its own memory layout (and reads a channels-last input "
            "wrongly)",
            layers="its ETDump",
            extra="executorch",
            modules=("executorch",),
            package="executorch",
            **_EXPORTED,
        ),
    )
}
BACKENDS = tuple(RUNTIMES)
# Alphabetical, as the messages have always listed them.
INT8_BACKENDS = tuple(sorted(name for name, r in RUNTIMES.items() if r.int8))
LAYER_BACKENDS = tuple(name for name, r in RUNTIMES.items() if r.layers)


@dataclass(frozen=True)
class MemorySettings:
    """How activation memory is counted: ``dtype`` gives every floating-point element its
    size (fp16/bf16 2 bytes, fp32 4, int8 1); ``chunks`` is T of the memory-efficient mode
    (None: one channel per chunk, the paper's limit)."""

    dtype: str = "fp16"
    chunks: int | None = None

    @property
    def bytes_per_element(self) -> int:
        return MEM_DTYPE_BYTES[self.dtype]


def parse_mem_dtype(text: Any, option: str = "mem_dtype") -> str:
    """'fp16' -> 'fp16' (also bf16, fp32, int8; case-insensitive)."""
    value = str(text).strip().lower()
    if value not in MEM_DTYPE_BYTES:
        raise refused(option, f"unknown dtype {text!r}; use one of {', '.join(MEM_DTYPES)}")
    return value


def parse_chunks(text: Any, option: str = "chunks") -> int | None:
    """'4' -> 4 (an integer >= 1); 'channel' or None -> None (one channel per chunk)."""
    if text is None or (isinstance(text, str) and text.strip().lower() == CHUNKS_PER_CHANNEL):
        return None
    allowed = f"give an integer T >= 1 or '{CHUNKS_PER_CHANNEL}' (one channel per chunk)"
    is_int = isinstance(text, int) and not isinstance(text, bool)
    if not (is_int or (isinstance(text, str) and text.strip().lstrip("+-").isdigit())):
        raise refused(option, f"{text!r} is not allowed; {allowed}")
    value = int(text)
    if value < 1:
        raise refused(option, f"{value} is too small; {allowed}")
    return value


def memory_settings(
    dtype: Any = "fp16", chunks: Any = None, names: tuple[str, str] = ("mem_dtype", "chunks")
) -> MemorySettings:
    """Checked memory settings; ``names`` are the fields that errors name."""
    if isinstance(dtype, MemorySettings):
        return dtype
    return MemorySettings(parse_mem_dtype(dtype, names[0]), parse_chunks(chunks, names[1]))


@dataclass(frozen=True)
class LatencySettings:
    """How to run a model for a latency measurement, as the flags of the same names
    (docs/latency.md): ``device`` "auto" takes cuda when a GPU is present, ``threads`` None
    keeps torch's setting, ``backend`` is one of ``RUNTIMES``, ``quantize`` "int8" quantizes
    an fp32 model (executorch, onnxruntime). API only: ``compile_backend`` (torch.compile's)
    and ``cache_programs`` (reuse ExecuTorch programs lowered before, from the cache folder).
    """

    device: str = "auto"
    batch: int = 1
    threads: int | None = None
    dtype: str = "fp32"
    backend: str = "eager"
    channels_last: bool = False
    fuse_bn: bool = False
    min_time_s: float = 1.0
    warmup: int = 10
    compile_backend: str = "inductor"
    quantize: str = "none"
    cache_programs: bool = False

    @property
    def memory_format(self) -> str:
        return "channels_last" if self.channels_last else "contiguous"


@dataclass(frozen=True)
class ResolvedLatency(LatencySettings):
    """Latency settings checked and resolved for this machine (made only by ``resolved``)."""


def check_latency(settings: LatencySettings) -> LatencySettings:
    """A checked copy of ``settings``: names in lower case, numbers as numbers."""
    if isinstance(settings, ResolvedLatency):
        return settings
    if not isinstance(settings, LatencySettings):
        raise MbprofError(f"settings: {settings!r} is not a LatencySettings")
    if not isinstance(settings.compile_backend, str) or not settings.compile_backend:
        raise refused("compile_backend", f"{settings.compile_backend!r} is not a backend name")
    for name in ("channels_last", "fuse_bn", "cache_programs"):
        if not isinstance(getattr(settings, name), bool):
            raise refused(name, f"{getattr(settings, name)!r} is not true or false")
    dtype = parse_choice(settings.dtype, "dtype", LATENCY_DTYPES)
    backend = parse_choice(settings.backend, "backend", BACKENDS)
    quantize = parse_choice(settings.quantize, "quantize", QUANTIZE)
    if quantize == "int8" and backend not in INT8_BACKENDS:
        raise MbprofError(
            f"quantize int8: the {backend} backend has no int8 path here; use backend "
            f"{spoken(INT8_BACKENDS)}",
            field="quantize",
        )
    if quantize == "int8" and dtype != "fp32":
        raise MbprofError(
            f"quantize int8 quantizes an fp32 model (int8 weights and activations), so dtype "
            f"{dtype} does not apply; use dtype fp32",
            field="quantize",
        )
    return replace(
        settings,
        device=parse_choice(settings.device, "device", DEVICES),
        dtype=dtype,
        backend=backend,
        quantize=quantize,
        batch=parse_int(settings.batch, "batch", minimum=1, maximum=MAX_BATCH),
        threads=None if settings.threads is None else parse_threads(settings.threads, "threads"),
        min_time_s=parse_positive_float(
            settings.min_time_s, "min_time_s", maximum=MAX_MIN_TIME_S, unit=" s"
        ),
        warmup=parse_int(settings.warmup, "warmup", minimum=0, maximum=MAX_WARMUP),
    )


def resolved(settings: LatencySettings, **decided: Any) -> ResolvedLatency:
    return ResolvedLatency(**{**vars(settings), **decided})
