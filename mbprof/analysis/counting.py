"""MAdds and parameters, per layer and in total, with fvcore.

The convention (the papers'): ``madds`` are the multiply-accumulates of
convolutions and fully connected layers (fvcore's conv / linear / matmul
handles, which count one fused multiply-add as one, and mbprof's own for fused
attention, ``scaled_dot_product_attention``: its two matrix products). fvcore's
other estimates (batch norm, adaptive pooling, upsampling, normalisation) go to
``other_flops``. Ops that have no estimate at all (activations, additions,
concatenation, reshapes) are listed in ``uncounted_ops`` with how often they ran,
never dropped. ``params_used`` are the parameters that inference reads
(``mbprof.analysis.used_params``). All counts are for a batch of one image.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

with warnings.catch_warnings():  # fvcore scripts a loss function at import: not our concern
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.14 deprecates torch.jit.script
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import get_shape

from mbprof.analysis import used_params
from mbprof.analysis.collector import collector_paused
from mbprof.analysis.memory.graph import Graph
from mbprof.core.records import CountReport, LayerRow

FVCORE_LOGGER = "fvcore.nn.jit_analysis"
# fvcore handle names whose counts are multiply-accumulates of conv / FC layers.
MADD_OPS = frozenset(
    {"conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum", "scaled_dot_product_attention"}
)


def count_params(model: nn.Module) -> int:
    """Elements of every parameter tensor (weights, biases, batch-norm affine).
    Buffers such as batch-norm running statistics are not parameters."""
    return sum(p.numel() for p in model.parameters())


def _sdpa_madds(inputs: list, outputs: list) -> int:
    """fused attention (``nn.MultiheadAttention``, ViT): q @ k^T and attention @ v, for
    q (..., L, E), k (..., S, E), v (..., S, Ev): lead x L x S x (E + Ev). fvcore has no
    handle of its own for it."""
    query, key, value = (get_shape(inputs[i]) for i in range(3))
    lead = 1
    for size in query[:-2]:
        lead *= size
    return lead * query[-2] * key[-2] * (query[-1] + value[-1])


def _layer_geometry(module: nn.Module) -> dict:
    if isinstance(module, nn.modules.conv._ConvNd):
        return {
            "in_channels": module.in_channels,
            "out_channels": module.out_channels,
            "kernel": tuple(module.kernel_size[-2:]),
            "stride": tuple(module.stride[-2:]),
            "groups": module.groups,
        }
    if isinstance(module, nn.Linear):
        return {"in_channels": module.in_features, "out_channels": module.out_features}
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
        channels = getattr(module, "num_features", None) or getattr(module, "num_channels", None)
        return {"in_channels": channels, "out_channels": channels}
    return {}


class _OutputSizes:
    """Forward hooks that record each leaf module's output HxW while fvcore traces
    (so the sizes cost no extra forward pass). A shape read under the tracer is recorded
    into its graph (``aten::size`` values that fvcore then walks): that made counting about
    half as slow again, so the hook reads it with the tracer paused."""

    def __init__(self, model: nn.Module) -> None:
        self.sizes: dict[str, tuple[int, int]] = {}
        self._handles = [
            module.register_forward_hook(self._hook(name))
            for name, module in model.named_modules()
            if next(module.children(), None) is None
        ]

    def _hook(self, name: str):
        def record(_module, _inputs, output) -> None:
            if not isinstance(output, torch.Tensor):
                return
            tracing = torch._C._get_tracing_state()
            torch._C._set_tracing_state(None)
            try:
                if output.dim() == 4:
                    self.sizes[name] = (int(output.shape[-2]), int(output.shape[-1]))
            finally:
                torch._C._set_tracing_state(tracing)

        return record

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@contextmanager
def _quiet_fvcore() -> Iterator[None]:
    """fvcore's logger at ERROR only while mbprof's own analysis runs (what it would warn
    about is reported in ``uncounted_ops``), then back as it was: a user's own fvcore calls
    in the same process keep their warnings."""
    logger = logging.getLogger(FVCORE_LOGGER)
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


@collector_paused()
def count(
    model: nn.Module, input_shape: tuple[int, ...], graph: Graph | None = None
) -> CountReport:
    """Count MAdds and params of ``model`` for one input of ``input_shape`` (N, C, H, W).

    The model is traced with fvcore on the CPU in float32; counts are scaled to
    batch 1 whatever N is given. Each row of ``layers`` holds the ops a module ran
    itself (a parent's row holds only the functional ops in its own ``forward``), so
    the rows sum to the totals. ``graph``: the memory analysis' meta-device trace of the
    same model and resolution, when the caller has one: the output sizes and the
    parameters read come from it, and fvcore's trace runs without hooks or a recorder.
    """
    model = model.eval()
    batch = input_shape[0]
    example = torch.zeros(input_shape)
    analysis = FlopCountAnalysis(model, example)
    analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_madds)
    # Hear about every op without an estimate, not only the ones fvcore thinks notable.
    analysis._ignored_ops = set()
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")

    if graph is not None:
        with _quiet_fvcore():
            by_module = analysis.by_module_and_operator()  # fvcore traces the model here
        leaves = {name for name, m in model.named_modules() if next(m.children(), None) is None}
        sizes = graph.leaf_output_sizes(leaves)
        read = frozenset(id(p) for name, p in model.named_parameters() if name in graph.params_read)
        reads = used_params.ParamReads(read, on_meta=True)
    else:
        by_module, sizes, reads = _traced(model, analysis, input_shape)
    unsupported = analysis.unsupported_ops()
    uncounted = Counter({op: n for op, n in unsupported.items() if op.startswith("aten::")})
    return _report(model, batch, by_module, sizes, reads, uncounted)


def _traced(
    model: nn.Module, analysis: FlopCountAnalysis, input_shape: tuple[int, ...]
) -> tuple[dict, dict[str, tuple[int, int]], used_params.ParamReads]:
    """fvcore's trace, with the output sizes and the parameters read recorded in the same
    forward pass (a pass of their own each cost as much as the trace)."""
    recorder = _OutputSizes(model)
    try:
        with _quiet_fvcore(), used_params.recording(model) as seen:
            by_module = analysis.by_module_and_operator()  # fvcore traces the model here
    finally:
        recorder.remove()
    reads = seen.reads()
    if reads.values_read:
        # Under jit's tracer a shape is a tensor: ``x.shape[-2] == 224`` looks like a value
        # read. Only a pass without the tracer tells (on the meta device when it runs there).
        reads = used_params.read_parameters(model, (1, *input_shape[1:]))
    return by_module, recorder.sizes, reads


def _report(
    model: nn.Module,
    batch: int,
    by_module: dict,
    sizes: dict[str, tuple[int, int]],
    reads: used_params.ParamReads,
    uncounted: Counter[str],
) -> CountReport:
    """The rows and totals from fvcore's counts per module (``by_module``)."""
    layers: list[LayerRow] = []
    other_by_op: Counter[str] = Counter()
    for name, module in model.named_modules():
        held = list(module.parameters(recurse=False))
        own = dict(by_module.get(name) or {})
        if not (own or held):
            continue  # nothing counted in it or below, no parameters: no row
        for child_name, _ in module.named_children():
            for op, n in by_module.get(f"{name}.{child_name}" if name else child_name, {}).items():
                own[op] = own.get(op, 0) - n
        # int(): fvcore's einsum handle counts in floats (MaxViT's attention)
        madds = int(sum(n for op, n in own.items() if op in MADD_OPS)) // batch
        other = {op: int(n) // batch for op, n in own.items() if op not in MADD_OPS and n}
        params = sum(p.numel() for p in held)
        used = sum(p.numel() for p in held if id(p) in reads.read)
        if not (madds or other or params):
            continue  # activations, dropout, containers: no cost of their own
        other_by_op.update(other)
        layers.append(
            LayerRow(
                path=name or "(model)",
                type=type(module).__name__,
                madds=madds,
                other_flops=sum(other.values()),
                params=params,
                out_hw=sizes.get(name),
                **_layer_geometry(module),
                params_used=used,
            )
        )
    total, read = count_params(model), used_params.count_read(model, reads)
    return CountReport(
        madds=sum(row.madds for row in layers),
        params=total,
        other_flops=sum(other_by_op.values()),
        layers=tuple(layers),
        other_flops_by_op=dict(other_by_op),
        uncounted_ops=dict(uncounted),
        params_used=read,
        notes=used_params.notes(model, reads, total, read),
    )
