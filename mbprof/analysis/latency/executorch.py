"""ExecuTorch with its XNNPACK delegate: the lowered program run from Python, and its ETDump."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import tempfile
from typing import Any

import torch
from torch import nn

from mbprof.analysis.collector import native_quiet
from mbprof.analysis.latency.lowering import XNNPACK_KINDS, Lowered, lower, modules
from mbprof.analysis.latency.runtimes import (
    CALIBRATION_BATCHES,
    Deployed,
    Prepared,
    RawProfile,
    Rows,
    verify,
)
from mbprof.core.errors import MbprofError
from mbprof.core.settings import LatencySettings


def thread_count() -> int:
    """The threads of XNNPACK's pool (the executorch backend's intra-op threads)."""
    return int(modules().portable._threadpool_get_thread_count())


class Loaded:
    """A program loaded on a thread pool of ``threads`` threads: call it with the input."""

    def __init__(self, lowered: Lowered, threads: int, etdump: bool = False) -> None:
        et = modules()
        registry = et.runtime.get().operator_registry.operator_names
        missing = [op for op in lowered.operators if op not in registry]  # no kernel in this build
        if missing:
            paths = [f.path for f in lowered.delegation.fallbacks if f.path]
            where = f" (outside XNNPACK: {', '.join(dict.fromkeys(paths))})" if paths else ""
            raise RuntimeError(
                f"ExecuTorch has no kernel for {', '.join(missing)} in this build{where}: the "
                "model lowers but cannot run; replace that operation"
            )
        with native_quiet():
            if et.portable._threadpool_get_thread_count() != threads:
                gc.collect()  # no method loaded on the old pool may run after the resize
                et.portable._unsafe_reset_threadpool(threads)
            self.program = et.runtime.get().load_program(
                lowered.pte, enable_etdump=etdump, debug_buffer_size=0
            )
            self.method = self.program.load_method("forward")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.execute([x])[0]


def prepare(form: Deployed, stack: contextlib.ExitStack) -> Prepared:
    """The program lowered, loaded, checked against the model, with its fp32 reference in int8."""
    model, settings, notes = form.model, form.settings, form.notes
    form.example = example = form.example.contiguous()
    int8 = settings.quantize == "int8"
    lowered = lower(model, example, settings.quantize, cache=settings.cache_programs)
    program = Loaded(lowered, settings.threads)
    notes.append(lowered.delegation.note())
    notes.append(
        "compile_s: torch.export + "
        + ("int8 quantization (PT2E) + " if int8 else "")
        + "lowering to XNNPACK + serialisation to a .pte"
    )
    if lowered.seconds is None:
        notes.append(
            f"the program came from mbprof's cache (lowered earlier in {lowered.cached_s:.1f} "
            "s), so compile_s is empty"
        )
    figures: dict[str, Any] = {
        "deployed_bytes": len(lowered.pte),
        "delegated_ops": lowered.delegation.delegated_ops,
        "portable_ops": len(lowered.delegation.fallbacks),
    }
    inputs, reference = [example], program
    if int8:
        notes.append(
            "int8: PT2E with the XNNPACK quantizer (weights int8 symmetric per channel, "
            f"activations int8 per tensor, calibrated on {CALIBRATION_BATCHES} random batches "
            "of the input shape)"
        )
        fp32 = lower(model, example, "none", cache=settings.cache_programs)
        reference = Loaded(fp32, settings.threads)
        figures["fp32_deployed_bytes"] = len(fp32.pte)
    verify(form, "ExecuTorch", reference, program if int8 else None, figures, "executorch")

    def layers(passes: int) -> tuple[RawProfile, str]:
        how = (
            f"ExecuTorch's ETDump, {passes} runs, XNNPACK's own time for each of its "
            "operators (1 us resolution: layers under 20 us leave the compute ceiling "
            "as it is), matched to the graph's nodes in order"
        )
        return layer_profile(model, tuple(example.shape), settings, passes, lowered=lowered), how

    return Prepared(
        run=lambda: program.method.execute(inputs),
        compile_s=lowered.seconds,
        notes=notes,
        reference=(lambda: reference.method.execute(inputs)) if int8 else None,
        figures=figures,
        threads=thread_count,
        layers=layers,
    )


LAYOUT, OVERHEAD = "(layout)", "(delegate overhead)"


def _events(pte_program: Any, folder: str) -> list[Any]:
    """The events of the Execute block of a profiled program's ETDump."""
    import warnings

    etdump = os.path.join(folder, "program.etdp")
    with native_quiet():
        has = pte_program._program.has_etdump()
        if has:
            pte_program.write_etdump_result_to_file(etdump, os.path.join(folder, "debug.bin"))
    if not has or not os.path.exists(etdump):
        raise MbprofError(
            "layers: this ExecuTorch build has no event tracer (ETDump), so it cannot time "
            "operators; install the executorch wheel from PyPI, which has it",
            field="layers",
        )
    from executorch.devtools import Inspector

    with native_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one "Unsupported kwarg" warning per graph node
        inspector = Inspector(etdump_path=etdump)
    blocks = [b for b in inspector.event_blocks if b.name == "Execute"]
    return list(blocks[0].events) if blocks else []


def _last(event: Any, runs: int) -> tuple[float, ...]:
    """The event's time in each of the last ``runs`` runs (the warm-up runs come first)."""
    return () if event.perf_data is None else tuple(float(t) for t in event.perf_data.raw[-runs:])


def layer_profile(
    model: nn.Module,
    input_shape: tuple[int, ...],
    settings: LatencySettings,
    runs: int = 20,
    warmup: int = 3,
    lowered: Lowered | None = None,
) -> RawProfile:
    """Each operator's time in each profiled run of the lowered program, summed per module path."""
    example = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    if lowered is None:
        lowered = lower(model, example, settings.quantize)
    program = Loaded(lowered, settings.threads or 1, etdump=True)
    for _ in range(warmup + runs):
        program(example)
    with tempfile.TemporaryDirectory(prefix="mbprof-etdump-") as folder:
        events = _events(program.program, folder)
    rows = Rows(model, example, runs)

    def add(path: str, kind: str, times_ms: tuple[float, ...]) -> None:
        if not times_ms:
            return
        row = rows.at(path, path, kind, mapped=path != "(unmapped)")
        if path in rows.owners and settings.quantize == "none":
            row.bytes_moved = rows.owners[path].bytes_moved
        for k, t in enumerate(times_ms[: len(row.times_us)]):
            row.times_us[k] += t * 1e3
        row.ops += 1

    partitions = iter(lowered.partitions)
    fallbacks = list(lowered.delegation.fallbacks)
    pending: list[Any] = []
    walls: tuple[float, ...] = (0.0,)
    for event in events:
        if event.is_delegated_op:
            pending.append(event)
        elif event.name == "DELEGATE_CALL":
            kinds = {kind: list(paths) for kind, paths in next(partitions, {}).items()}
            for op in pending:
                kernel = re.sub(r" #\d+$", "", op.name)
                kind = next((v for k, v in XNNPACK_KINDS.items() if kernel.startswith(k)), None)
                paths = kinds.get(kind or "", [])
                path = LAYOUT if kind is None else paths.pop(0) if paths else "(unmapped)"
                add(path, kind or "layout", _last(op, runs))
            # the call less its operators, run by run (none when the runs do not line up)
            total, parts = _last(event, runs), [_last(op, runs) for op in pending]
            if total and all(len(p) == len(total) for p in parts):
                add(
                    OVERHEAD,
                    "overhead",
                    tuple(t - sum(p[k] for p in parts) for k, t in enumerate(total)),
                )
            pending = []
        elif event.name.startswith("native_call_"):
            name = event.name.removeprefix("native_call_")
            base = name.split(".")[0]
            match = next((f for f in fallbacks if f.op.split(".")[1] == base), None)
            if match is not None:
                fallbacks.remove(match)
            add(match.path if match is not None else "(unmapped)", base, _last(event, runs))
        elif event.name == "Method::execute":
            p50 = float(event.perf_data.p50) if event.perf_data is not None else 0.0
            walls = _last(event, runs) or (p50,)
    # XNNPACK's operator times come in whole microseconds: a layer under 20 of them is timed
    # too coarsely (5% and worse) for its rate to raise the compute ceiling.
    return RawProfile(rows=list(rows.values()), walls_ms=list(walls), resolution_ms=0.02)
