"""The latency of several configurations, measured interleaved: what a sweep calls once
for all its rows (``mbprof compare``, ``mbprof check``), so that a burst of load on a shared
machine hits every row alike and an outlier round is measured again
(``mbprof.analysis.latency.interleave``).

    jobs = [(spec, model, madds), ...]            # built and counted by the sweep
    columns = interleaved_latency(jobs, latency)  # one dict per job, in order
    row.update(columns[i])

Each dict holds the latency columns of ``mbprof.frame.rows.latency_columns`` (figures,
verdict and environment), or, for a configuration that failed to prepare or to run, its
environment and an ``error``.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.api.building import running, timing_ready
from mbprof.core.records import ModelSpec
from mbprof.core.settings import ResolvedLatency
from mbprof.frame.rows import environment_columns, failure_text, latency_columns

if TYPE_CHECKING:
    from torch import nn

# One configuration to time: its spec, its model (built once by the sweep) and its MAdds
# per image (counted by the sweep).
TimingJob = tuple[ModelSpec, "nn.Module", int]


def interleaved_latency(
    jobs: Sequence[TimingJob],
    latency: ResolvedLatency,
    *,
    weights: str | Path | None = None,
    rounds: int | None = None,
    on_phase: Callable[[str], None] | None = None,
    stop_on: tuple[type[BaseException], ...] = (),
) -> list[dict[str, Any]]:
    """The latency columns of every job, measured interleaved with the resolved settings
    ``latency`` (``make_latency_settings``): ``latency.min_time_s`` of timed runs per
    configuration, split into ``rounds`` round-robin rounds (default
    ``interleave.ROUNDS``). mbprof's own models are calibrated first unless ``weights``
    were loaded (``timing_ready``). Every model is prepared before the first round (an
    ONNX export each, for onnxruntime), so all of them are held at once. A configuration
    that fails gets its environment and an ``error``, unless its failure is one of
    ``stop_on``, which is raised (after the other configurations are measured). torch's
    thread count is restored afterwards."""
    import torch

    from mbprof.analysis.latency import interleave as il
    from mbprof.analysis.latency.backends import prepare, threads_in_use
    from mbprof.analysis.latency.environment import environment
    from mbprof.analysis.latency.run import clock_for, make_timing

    say = on_phase or (lambda _text: None)
    failed: dict[int, BaseException] = {}
    prepared: dict[int, Any] = {}
    previous = torch.get_num_threads()
    try:
        with contextlib.ExitStack() as stack:
            torch.set_num_threads(latency.threads)
            for index, (spec, model, _madds) in enumerate(jobs):
                say(f"preparing {spec.label} for {latency.backend}")
                try:
                    ready = timing_ready(spec, model, weights)
                    with running(spec, f"preparing it for {latency.backend}"):
                        shape = spec.input_shape(latency.batch)
                        prepared[index] = prepare(ready, shape, latency, stack)
                except Exception as exc:  # noqa: BLE001 - recorded in its row (or raised below)
                    failed[index] = exc
            order = sorted(prepared)
            # An int8 run's fp32 program (its speed-up) is timed in the same rounds, last.
            references = [i for i in order if prepared[i].reference is not None]
            runs = [prepared[i].run for i in order] + [prepared[i].reference for i in references]
            timed = il.interleave(
                [
                    il.Job(
                        run=run,
                        clock=clock_for(latency),
                        guard=lambda spec=jobs[i][0]: running(
                            spec, f"timing it with {latency.backend}"
                        ),
                    )
                    for i, run in zip([*order, *references], runs, strict=True)
                ],
                latency.min_time_s,
                latency.warmup,
                rounds=rounds or il.ROUNDS,
                on_round=lambda text: say(f"timing {len(order)} interleaved: {text}"),
            )
            got = threads_in_use(latency.backend)
    finally:
        torch.set_num_threads(previous)
    for i, result in zip(references, timed[len(order) :], strict=True):
        if result.error is None:
            prepared[i].figures["fp32_latency_ms"] = statistics.median(result.per_run_s) * 1e3
    results: dict[int, Any] = {}
    for i, result in zip(order, timed[: len(order)], strict=True):
        if result.error is not None:
            failed[i] = result.error
            continue
        results[i] = make_timing(
            result.per_run_s,
            result.runs,
            result.runs_per_block,
            latency,
            prepared[i],
            jobs[i][2],
            result.load,
            threads_got=got,
            rounds=len(result.rounds),
            remeasured=result.remeasured,
            extra_reasons=result.reasons(),
        )
    for exc in failed.values():
        if isinstance(exc, stop_on):
            raise exc
    columns = []
    for i in range(len(jobs)):
        if i in failed:
            columns.append(
                {**environment_columns(environment(latency)), "error": failure_text(failed[i])}
            )
        else:
            columns.append(latency_columns(results[i]))
    return columns
