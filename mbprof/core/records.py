"""Plain records from the analyses to the renderers: numbers stay numbers (the unit in the
field name); a result's notebook display is registered in ``DISPLAY`` by mbprof.render.html."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mbprof.core.units import format_value

IMAGE_CHANNELS = 3
# Record class -> (its HTML for a notebook, its main table as a DataFrame).
DISPLAY: dict[type, tuple[Callable[[Any], str], Callable[[Any], Any]]] = {}


class Displayed:
    """A result that shows as a table in Jupyter and converts to a pandas DataFrame."""

    def _repr_html_(self) -> str:
        return DISPLAY[type(self)][0](self)

    def to_dataframe(self):
        """The main table: a profile's layers; a bench result's layers or its timing row."""
        return DISPLAY[type(self)][1](self)


def is_import_path(model: str) -> bool:  # the user's own code, ``module:attribute``
    return ":" in model


@dataclass(frozen=True)
class ModelSpec:
    """One configuration, as built or (``reparam``) deployed: ``resolution`` is the input's
    (height, width), ``channels`` its channels (3 but for a module given another
    ``input_size``), ``kwargs`` the builder's extra arguments as sorted (key, value) pairs."""

    model: str
    width: float = 1.0
    depth: float = 1.0
    resolution: tuple[int, int] = (224, 224)
    num_classes: int = 1000
    kwargs: tuple[tuple[str, Any], ...] = ()
    channels: int = IMAGE_CHANNELS
    reparam: bool = False

    @property
    def res_label(self) -> str:
        """``224`` for a square input, ``160x224`` otherwise."""
        h, w = self.resolution
        return str(h) if h == w else f"{h}x{w}"

    @property
    def label(self) -> str:
        """Short name such as ``mobilenet_v2 1.0@224``."""
        depth = "" if self.depth == 1.0 else f" depth {self.depth:g}"
        deployed = " reparam" if self.reparam else ""
        return f"{self.model} {format_value(self.width, 'float')}@{self.res_label}{depth}{deployed}"

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.channels, *self.resolution)


@dataclass(frozen=True)
class LayerRow:
    """Cost of one module, counting only the ops it runs itself (not its children's), as
    ``CountReport`` counts them; ``params`` are its own, ``params_used`` (None: not known)
    those of them that the inference forward pass reads."""

    path: str
    type: str
    madds: int
    other_flops: int
    params: int
    in_channels: int | None = None
    out_channels: int | None = None
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    groups: int | None = None
    out_hw: tuple[int, int] | None = None
    params_used: int | None = None


@dataclass(frozen=True)
class CountReport:
    """MAdds and parameters of one configuration, in total and per layer (docs/counting.md).

    ``madds`` (batch 1) are the papers' multiply-accumulates of convolutions and fully
    connected layers, ``other_flops`` fvcore's estimates for batch norm, pooling and
    normalisation, ``uncounted_ops`` the ops with no estimate (how often each ran);
    ``params_used`` the parameters an eval-mode forward pass reads (None: not counted);
    ``attention_madds`` the part of ``madds`` in fused attention.
    """

    madds: int
    params: int
    other_flops: int
    layers: tuple[LayerRow, ...]
    other_flops_by_op: Mapping[str, int] = field(default_factory=dict)
    uncounted_ops: Mapping[str, int] = field(default_factory=dict)
    params_used: int | None = None
    notes: tuple[str, ...] = ()
    engine: str = "fvcore"
    attention_madds: int = 0


@dataclass(frozen=True)
class ResolutionMemory:
    """The largest activations at one spatial size (the paper's Table 3 layout)."""

    resolution: tuple[int, int]
    channels: int
    tensor_bytes: int
    shape: tuple[int, ...]
    op_bytes: int
    op: str


@dataclass(frozen=True)
class LivePoint:
    """Live activation bytes at one op: input + output + held + internal (chunk buffer)."""

    step: int
    op: str
    module: str
    shape: tuple[int, ...] | None
    live_bytes: int
    input_bytes: int
    output_bytes: int
    held_bytes: int
    internal_bytes: int


@dataclass(frozen=True)
class ChunkedBlock:
    """A block the memory-efficient mode runs in chunks (kind "project" or "pool")."""

    kind: str
    module: str
    expand: str
    exit: str
    in_channels: int
    expanded_channels: int
    out_channels: int
    chunk_channels: int
    chunk_bytes: int
    residual: bool
    two_pass: bool


@dataclass(frozen=True)
class MemoryReport:
    """Activation memory of one forward pass, from the traced graph (docs/memory.md):
    ``peak`` materialized, ``peak_efficient`` with the chunked ``blocks`` run as one op each,
    ``eager_peak_bytes`` as eager PyTorch allocates; the input image (``input_bytes``) is
    not counted."""

    dtype: str
    bytes_per_element: int
    chunks: int | None
    batch: int
    input_bytes: int
    max_tensor_bytes: int
    max_tensor_bytes_efficient: int
    peak: LivePoint
    peak_efficient: LivePoint
    eager_peak_bytes: int
    resolutions: tuple[ResolutionMemory, ...]
    resolutions_efficient: tuple[ResolutionMemory, ...]
    blocks: tuple[ChunkedBlock, ...]
    curve: tuple[LivePoint, ...]
    curve_efficient: tuple[LivePoint, ...]

    @property
    def chunks_label(self) -> str:
        """'channel' (one channel per chunk) or T, as the ``mem_chunks`` column holds it."""
        return "channel" if self.chunks is None else str(self.chunks)


@dataclass(frozen=True)
class MeasuredMemory:
    """Activation memory of a real forward pass (``mbprof.analysis.memory.measured``)."""

    device: str
    dtype: str
    peak_bytes: int
    last_use_peak_bytes: int
    allocator_peak_bytes: int | None = None


@dataclass(frozen=True)
class FlopsCount:
    """FLOPs of one image, 2 per multiply-accumulate plus element-wise work, by kind."""

    total: int
    by_kind: Mapping[str, int]
    rules: Mapping[str, str]
    uncounted_ops: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile(Displayed):
    """Everything mbprof knows about one configuration. ``notes``: how the model had to
    be sized (a probe that failed, the fallback taken), then the counts' notes."""

    spec: ModelSpec
    counts: CountReport
    memory: MemoryReport | None = None
    flops: FlopsCount | None = None  # None: the model does not trace on the meta device
    notes: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    """Where and how a timing was taken; every timing carries one."""

    torch_version: str
    device: str  # "cpu" or "cuda"
    device_name: str  # the GPU's name, or the CPU model on the CPU
    cpu_model: str
    cpu_count: int  # logical CPUs the OS reports
    threads: int
    backend: str
    backend_version: str  # torch's version, or ONNX Runtime's for the onnxruntime backend
    dtype: str
    batch: int
    memory_format: str  # "contiguous" or "channels_last"
    fuse_bn: bool
    quantize: str = "none"  # or "int8": post-training static quantization


@dataclass(frozen=True)
class Timing:
    """Latency of one configuration, measured on this machine: what each figure counts is in
    docs/latency.md, the deployed and int8 figures in docs/phone.md. ``madds`` is per image."""

    latency_ms: float
    latency_p10_ms: float
    latency_p90_ms: float
    runs: int
    blocks: int
    runs_per_block: int
    warmup: int
    min_time_s: float
    environment: Environment
    compile_s: float | None = None
    madds: int | None = None
    machine_peak_gflops: float | None = None
    notes: tuple[str, ...] = ()
    verdict: str = "stable"
    reasons: tuple[str, ...] = ()
    other_cpus: float | None = None  # CPUs other processes kept busy while it ran
    load_average: float | None = None  # the 1-minute load average when it ended
    cpu_mhz: float | None = None  # mean clock of the usable CPUs when it ended
    rounds: int = 1  # interleaved rounds behind the figure (1: one run of blocks)
    remeasured: int = 0  # outlier rounds measured again
    deployed_bytes: int | None = None
    delegated_ops: int | None = None
    portable_ops: int | None = None
    fp32_latency_ms: float | None = None
    fp32_deployed_bytes: int | None = None
    int8_cosine: float | None = None
    int8_top1_agreement: float | None = None

    @property
    def stable(self) -> bool:
        return self.verdict == "stable"

    @property
    def latency_spread_pct(self) -> float:
        """(p90 - p10) / median, in percent."""
        return 100.0 * (self.latency_p90_ms - self.latency_p10_ms) / self.latency_ms

    @property
    def int8_speedup(self) -> float | None:
        """fp32 latency / int8 latency on the same backend."""
        return None if self.fp32_latency_ms is None else self.fp32_latency_ms / self.latency_ms

    @property
    def latency_ms_per_image(self) -> float:
        return self.latency_ms / self.environment.batch

    @property
    def throughput_ips(self) -> float:
        """Images per second at the median latency."""
        return 1e3 * self.environment.batch / self.latency_ms

    @property
    def achieved_gflops(self) -> float | None:
        """2 x MAdds x batch / median latency, in GFLOP/s."""
        if self.madds is None:
            return None
        return 2 * self.madds * self.environment.batch / (self.latency_ms * 1e-3) / 1e9

    @property
    def machine_share_pct(self) -> float | None:
        if self.achieved_gflops is None or not self.machine_peak_gflops:
            return None
        return 100.0 * self.achieved_gflops / self.machine_peak_gflops


@dataclass(frozen=True)
class LayerTime:
    """One row of ``mbprof bench --layers``."""

    path: str
    type: str
    time_ms: float
    madds: int = 0
    bytes_moved: int = 0
    mapped: bool = True
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    groups: int | None = None
    out_shape: tuple[int, ...] | None = None
    ops: int = 0
    time_share_pct: float = 0.0
    madds_share_pct: float = 0.0
    intensity: float | None = None
    gflops: float | None = None
    gbs: float | None = None
    bound: str = ""
    roof_pct: float | None = None
    kind: str = ""


@dataclass(frozen=True)
class LayerProfile:
    """Per-layer time of one configuration: ``rows`` sum to ``profiled_ms``."""

    backend: str
    batch: int
    dtype: str
    rows: tuple[LayerTime, ...]
    profiled_ms: float
    latency_ms: float
    passes: int
    compute_gflops: float
    bandwidth_gbs: float
    notes: tuple[str, ...] = ()

    @property
    def overhead_pct(self) -> float:  # how much longer a profiled pass took than a timed one
        return 100.0 * (self.profiled_ms - self.latency_ms) / self.latency_ms

    @property
    def ridge(self) -> float:  # FLOPs per byte where the memory and compute ceilings meet
        return self.compute_gflops / self.bandwidth_gbs


@dataclass(frozen=True)
class BenchResult(Displayed):
    """One configuration's latency (and, when asked for, where its time goes layer by layer)."""

    spec: ModelSpec
    timing: Timing
    layers: LayerProfile | None = None
