"""The Python API; the CLI is a thin layer over these functions.

    import mbprof
    model = mbprof.create_model("mobilenet_v2", width=0.5)
    p = mbprof.profile("mobilenet_v2", width=1.0, resolution=224)
    p.counts.madds                         # 300774272
    p.memory.peak_efficient.live_bytes     # 577024 (fp16, one channel a chunk)
    frame = mbprof.compare(widths=[0.35, 0.5, 1.0, 1.4], resolutions=[96, 224])
    t = mbprof.bench("mobilenet_v2", settings=mbprof.make_latency_settings(threads=2)).timing
    t.latency_ms                           # median wall time of one batch on this machine

Rooms: ``inputs`` (what a user asks for, checked once), ``building`` (a model built once,
guarded), ``single`` (one configuration), ``sweep`` (rows of a comparison), ``checking``
(limits of budget files and baselines: ``check``).
"""

import mbprof.render.html  # noqa: F401  (the notebook display of records)
from mbprof.analysis.layer_cost import layer_cost
from mbprof.api.building import build_sized
from mbprof.api.checking import (
    CheckOutcome,
    CheckRun,
    check,
    prepare_check,
    write_baseline,
)
from mbprof.api.diff import DiffResult, diff
from mbprof.api.inputs import (
    make_latency_settings,
    make_spec,
    make_specs,
    memory_settings,
    resolve_latency,
)
from mbprof.api.reporting import reproduce
from mbprof.api.single import (
    bench,
    bench_spec,
    measure,
    measure_memory_spec,
    measure_rows,
    memory,
    memory_spec,
    profile,
    profile_spec,
)
from mbprof.api.sweep import (
    CompareRun,
    accuracy_for,
    add_accuracy,
    compare,
    iter_compare,
    prepare_compare,
    rows_to_frame,
)

__all__ = [
    "CheckOutcome",
    "CheckRun",
    "CompareRun",
    "DiffResult",
    "accuracy_for",
    "add_accuracy",
    "bench",
    "bench_spec",
    "build_sized",
    "check",
    "compare",
    "diff",
    "iter_compare",
    "layer_cost",
    "make_latency_settings",
    "make_spec",
    "make_specs",
    "measure",
    "measure_memory_spec",
    "measure_rows",
    "memory",
    "memory_settings",
    "memory_spec",
    "prepare_check",
    "prepare_compare",
    "profile",
    "profile_spec",
    "reproduce",
    "resolve_latency",
    "rows_to_frame",
    "write_baseline",
]
