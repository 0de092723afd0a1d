"""The one table of quantities: every column of a frame with its header, format kind and
convention, and where it has them its plot axis (``AXES``) and budget key (``METRICS``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mbprof.core.errors import MbprofError

# What a timed figure depends on: said beside its unit on a plot's axis.
TIMED = ("device", "dtype", "batch", "threads")


@dataclass(frozen=True)
class Axis:
    """How a column is plotted (``quality``: accuracy-like, a Pareto frontier drawn against it)."""

    name: str
    unit: str
    scale: float = 1.0
    lower_is_better: bool = True
    quality: bool = False
    context: tuple[str, ...] = field(default=())  # frame columns that qualify the unit
    column: str = ""  # filled in from the table


@dataclass(frozen=True)
class Metric:
    """A figure a budget may bound: its key in budget files, its name, what it counts."""

    key: str
    label: str
    what: str
    kind: str = ""  # "count", "bytes" or "ms": how limits are parsed (filled in)
    column: str = ""  # the column that holds the measured figure (filled in)

    @property
    def shown(self) -> str:
        """The ``format_value`` kind of an amount of it: '300.77M', '1.20 MB', '25.00 ms'."""
        return {"count": "count", "bytes": "size", "ms": "duration"}[self.kind]


@dataclass(frozen=True)
class Column:
    header: str
    kind: str
    description: str
    axis: Axis | None = None
    budget: Metric | None = None


def text_table(text: str, cells: int = 4) -> list[list[str]]:
    """Rows one a line, cells between '|'; the last cell may go on over indented lines."""
    rows: list[list[str]] = []
    for line in text.strip("\n").splitlines():
        if line.startswith(" "):
            rows[-1][-1] += " " + line.strip()
        else:
            rows.append([cell.strip() for cell in line.split("|", cells - 1)])
    return rows


def _table(text: str) -> dict[str, Column]:
    """Columns written as ``key | header | kind | description``."""
    return {key: Column(header, kind, about) for key, header, kind, about in text_table(text)}


# What a row measured, and its counts (mbprof.analysis.counting).
_CONFIGURATION = _table("""
model | Model | text | registered model name or import path
width | Width | float | width multiplier
depth | Depth | float | depth multiplier (1.0 where the model has none)
resolution | Res | text | input resolution, HxW when not square
input_h | H | int | input height in pixels
input_w | W | int | input width in pixels
num_classes | Classes | int | classifier outputs
args | Args | text | extra builder keyword arguments
reparam | Reparam | text | deployed form: each module's re-parameterization hook run first
madds | MAdds (M) | millions | multiply-accumulates of convolutions and fully connected layers,
    batch 1 (the papers' convention; fvcore conv/linear/matmul handles)
params | Params (M) | millions | elements of all parameter tensors: weights, biases, batch-norm
    affine
other_flops | Other (M) | millions | fvcore's element-wise estimates for batch norm, pooling,
    upsampling and normalisation, batch 1; not part of MAdds
engine | Engine | text | what counted madds and other_flops: fvcore (its JIT trace) or dispatch
    (fvcore's rules on the aten ops of a meta-device trace); the same figures either way
""")
# Activation memory (mbprof.analysis.memory): bytes, KB = 1000 bytes; the input image is not
# counted; every floating-point element costs mem_dtype's size.
_MEMORY = _table("""
peak_act_bytes | Peak (KB) | kb | materialized peak of live activations over one forward pass,
    batch 1: at the worst op, its inputs + outputs + tensors held for later (shortcuts, concat
    branches); batch norm and activations written over their input; input image not counted
peak_act_bytes_efficient | Peak eff. (KB) | kb | the same peak with inverted-residual blocks run
    memory-efficiently (MobileNetV2 paper, section 5.1): |input| + |output| + one chunk (1/T) of
    the expanded tensor
max_tensor_bytes | Max tensor (KB) | kb | largest single activation tensor (materialized), batch
    1
mem_dtype | Mem dtype | text | bytes per activation element: fp16/bf16 2, fp32 4, int8 1
mem_chunks | T | text | chunks of the memory-efficient mode ('channel': one channel per chunk)
""")
# Latency (mbprof.analysis.latency): the figures a run measures on this machine, and how
# sound they are (mbprof.analysis.latency.stability).
LATENCY = _table("""
latency_ms | Latency (ms) | ms | median wall time of one forward pass of a whole batch, warm, in
    torch.inference_mode (or one ONNX Runtime session.run), over timed blocks of runs
latency_ms_per_image | ms/image | ms | latency_ms divided by the batch size
latency_p10_ms | p10 (ms) | ms | 10th percentile of the per-run block times (ms per batch)
latency_p90_ms | p90 (ms) | ms | 90th percentile of the per-run block times (ms per batch)
runs | Runs | int | timed forward passes behind the latency figures
throughput_ips | Images/s | rate | images per second at the median latency: 1000 x batch /
    latency_ms
achieved_gflops | GFLOP/s | rate | 2 x MAdds x batch / median latency, in 1e9 operations per
    second (MAdds: conv + fully connected multiply-accumulates per image)
machine_share_pct | Machine % | percent | achieved_gflops as a share of the best rate of a large
    matrix product on the same device, threads and dtype (measured once, cached)
compile_s | Compile (s) | rate | one-off seconds before the first timed run: torch.compile's
    first call, or ONNX export + session creation; never part of the latency; empty for eager
latency_spread_pct | Spread | percent | (p90 - p10) / median of the per-run block times
latency_verdict | Timing | text | stable, or unstable when a check failed: spread above 25%,
    fewer than 10 timed blocks, a drift above 10% between the halves of the runs, other
    processes busy on the CPUs it needed, steal time, fewer usable CPUs than threads, a changing
    CPU clock
latency_reasons | Why unstable | text | the checks that failed, ';'-separated
other_cpus | Other CPUs | rate | CPUs other processes kept busy while it ran, on average
    (/proc/stat less this process' own CPU time)
load_average | Load | rate | the 1-minute load average when the timing ended
cpu_mhz | MHz | rate | mean clock of the usable CPUs when the timing ended
rounds | Rounds | int | interleaved round-robin rounds behind the figure (1: not interleaved)
""")
# Where a timing ran: the same for every row of a sweep, said once in a note on the
# terminal; CSV and JSON keep them in every row.
ENVIRONMENT = _table("""
device | Device | text | cpu or cuda
device_name | Device name | text | the GPU's name, or the CPU model on the CPU
backend | Backend | text | eager, compile (torch.compile), onnxruntime or executorch (XNNPACK
    delegate)
dtype | Dtype | text | inference dtype of weights and input: fp32, fp16, bf16
batch | Batch | int | images per forward pass
threads | Threads | int | intra-op threads (torch.set_num_threads, ONNX Runtime intra_op)
memory_format | Memory format | text | contiguous (NCHW) or channels_last (NHWC)
fuse_bn | Fused BN | text | batch norm folded into the preceding convolutions before timing
torch_version | torch | text | torch version that ran (and exported) the model
cpu_model | CPU | text | the CPU model
quantize | Quantize | text | none, or int8: post-training static quantization (weights per
    channel, activations calibrated on random batches of the input shape)
""")
# The per-resolution table of `mbprof memory` / `mbprof profile` (the paper's Table 3),
# published accuracy, errors and notes, and per-layer time (mbprof bench --layers).
_OTHER = _table("""
size | Size | text | height x width of the activations
channels | Ch | int | channels of the largest tensor at this size
tensor_bytes | Tensor B | int | bytes of the largest tensor at this size
op_bytes | Op B | int | largest inputs + outputs of one op whose output has this size
op | Op | text | that op (module and aten op)
channels_efficient | Ch (eff) | int | the same, memory-efficient mode
tensor_bytes_efficient | Tensor B (eff) | int | the same, memory-efficient mode (whole tensors
    only)
op_bytes_efficient | Op B (eff) | int | the same, memory-efficient mode (a chunked block: + its
    chunk)
op_efficient | Op (eff) | text | that op, memory-efficient mode
top1 | Top-1 (%) | float | published ImageNet top-1 accuracy, single crop (not measured here;
    source in accuracy_source)
top5 | Top-5 (%) | float | published ImageNet top-5 accuracy, same source as top1
accuracy_source | Accuracy source | text | where top1, top5 and phone_latency_ms come from
phone_latency_ms | Phone (ms) | ms | latency published by accuracy_source, measured on the phone
    in phone_latency_device (not measured here)
phone_latency_device | Phone | text | phone, runtime and precision of phone_latency_ms
error | Error | text | why this configuration has no figures
params_used | Params used (M) | millions | the parameters that some operation of one eval-mode
    forward pass reads: params less what inference never reads, such as auxiliary classifiers
notes | Notes | text | how the model had to be sized (a probe that failed, the fallback taken)
    and what its counts leave out; '; ' between notes
layer_time_ms | Time (ms) | ms | median time per pass of the whole batch, under the profiler
time_share_pct | Time % | percent | share of the profiled pass's time
madds_share_pct | MAdds % | percent | share of the model's MAdds
bytes_moved | Bytes | bytes | every tensor its ops read and wrote in one pass: activations in
    and out, weights (batch included, in the run's dtype)
intensity | FLOP/B | rate | arithmetic intensity: 2 x MAdds x batch per byte moved
layer_gflops | GFLOP/s | rate | 2 x MAdds x batch / its time
layer_gbs | GB/s | rate | bytes moved / its time (1e9 bytes per second)
bound | Bound | text | the ceiling it is under at its intensity: memory (left of the ridge
    point) or compute
roof_pct | Roof % | percent | its GFLOP/s as a share of that ceiling at its intensity
mapped | Mapped | text | false: an op that could not be mapped to a module (its own row)
""")
# Figures only some backends give (the deployed file of onnxruntime and executorch, the
# delegation, int8 against fp32): a row holds those its run measured.
DEPLOYMENT = _table("""
deployed_bytes | Deployed | bytes | bytes of the file the backend runs: the .onnx (onnxruntime)
    or the .pte (executorch), weights included; KB = 1000 bytes
fp32_deployed_bytes | Deployed fp32 | bytes | an int8 run: bytes of the same backend's fp32 file
delegated_ops | XNNPACK ops | int | executorch: operators the XNNPACK delegate took (fast
    kernels)
portable_ops | Portable ops | int | executorch: operators left outside XNNPACK, run by
    ExecuTorch's portable kernels (plain reference loops: slow)
fp32_latency_ms | fp32 (ms) | ms | an int8 run: the same backend's fp32 program, timed right
    after
int8_speedup | int8 speed-up | rate | an int8 run: fp32_latency_ms / latency_ms, same backend
int8_cosine | int8 cosine | auto | an int8 run: mean cosine similarity of its logits to fp32's,
    on random inputs that calibration never saw (closeness of outputs, not an accuracy figure)
int8_top1_agreement | int8 top-1 agree | auto | an int8 run: share of those random inputs whose
    arg-max class is fp32's (not an accuracy figure; random weights give nearly flat logits)
""")
# Plot axes and budget metrics, by column.
_AXES = {
    "madds": Axis("MAdds", "millions, batch 1", 1e-6),
    "params": Axis("Parameters", "millions", 1e-6),
    "peak_act_bytes": Axis("Peak activation memory", "bytes", context=("mem_dtype",)),
    "peak_act_bytes_efficient": Axis(
        "Peak activation memory, memory-efficient blocks", "bytes", context=("mem_dtype",)
    ),
    "max_tensor_bytes": Axis("Largest activation tensor", "bytes", context=("mem_dtype",)),
    "latency_ms": Axis("Latency", "ms per batch", context=TIMED),
    "latency_ms_per_image": Axis("Latency per image", "ms", context=TIMED),
    "throughput_ips": Axis("Throughput", "images/s", lower_is_better=False, context=TIMED),
    "top1": Axis("ImageNet top-1", "%", lower_is_better=False, quality=True),
    "top5": Axis("ImageNet top-5", "%", lower_is_better=False, quality=True),
    "phone_latency_ms": Axis("Published phone latency", "ms"),
}
_METRICS = {
    "madds": Metric("max_madds", "MAdds", "multiply-accumulates of conv and FC layers, batch 1"),
    "params": Metric("max_params", "Params", "parameter tensor elements"),
    "peak_act_bytes": Metric(
        "max_peak_memory",
        "Peak activations",
        "peak bytes of live activations over one forward pass, batch 1, input image not "
        "counted: materialized, or memory-efficient (inverted residuals in T chunks; "
        "mbprof memory explains both); KB = 1000 bytes",
    ),
    "latency_ms": Metric(
        "max_latency",
        "Latency",
        "median wall time of one forward pass of a batch on this machine, under the "
        "settings shown (mbprof bench explains the harness)",
    ),
    "deployed_bytes": Metric(
        "max_model_size",
        "Deployed size",
        "bytes of the file the backend runs (the .pte of executorch, the .onnx of "
        "onnxruntime), weights included, fp32 or int8 as shown; KB = 1000 bytes",
    ),
}
COLUMNS = {**_CONFIGURATION, **_MEMORY, **LATENCY, **ENVIRONMENT, **_OTHER, **DEPLOYMENT}
COLUMNS = {k: replace(c, axis=_AXES.get(k), budget=_METRICS.get(k)) for k, c in COLUMNS.items()}
LATENCY_FIGURES, ENVIRONMENT_COLUMNS = tuple(LATENCY), tuple(ENVIRONMENT)
DEPLOYMENT_FIGURES = tuple(DEPLOYMENT)


def column(key: str) -> Column:
    """The description of ``key``; an undescribed column renders as its own name."""
    return COLUMNS.get(key, Column(key, "auto", ""))


AXES: dict[str, Axis] = {k: replace(c.axis, column=k) for k, c in COLUMNS.items() if c.axis}
ALIASES = {
    "memory": "peak_act_bytes",
    "latency": "latency_ms",
    "throughput": "throughput_ips",
    "accuracy": "top1",
}
# The kinds of a limit, by the kind of its column.
_LIMIT_KINDS = {"millions": "count", "kb": "bytes", "bytes": "bytes", "ms": "ms"}
METRICS: dict[str, Metric] = {
    c.budget.key: replace(c.budget, kind=_LIMIT_KINDS[c.kind], column=k)
    for k, c in COLUMNS.items()
    if c.budget
}


def resolve_axis(name: str, option: str) -> Axis:
    """The axis named ``name`` (a column or an alias); unknown names are refused."""
    key = ALIASES.get(name.strip().lower(), name.strip())
    if key not in AXES:
        names = ", ".join([*AXES, *ALIASES])
        raise MbprofError(f"{option}: unknown axis {name!r}; choose one of {names}")
    return AXES[key]
