"""The Python API (docs/api.md); the CLI is a thin layer over these functions."""

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
