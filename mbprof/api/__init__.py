"""The Python API (docs/api.md); the CLI is a thin layer over these functions."""

import mbprof.render.html  # noqa: F401  (the notebook display of records)
from mbprof.analysis.layer_cost import layer_cost  # noqa: F401
from mbprof.api.building import build_sized  # noqa: F401
from mbprof.api.checking import CheckOutcome, check, prepare_check, write_baseline  # noqa: F401
from mbprof.api.diff import diff  # noqa: F401
from mbprof.api.inputs import (  # noqa: F401
    make_latency_settings,
    make_spec,
    make_specs,
    memory_settings,
    resolve_latency,
)
from mbprof.api.reporting import reproduce  # noqa: F401
from mbprof.api.single import (  # noqa: F401
    bench,
    bench_spec,
    measure_memory_spec,
    measure_rows,
    memory,
    memory_spec,
    profile,
    profile_spec,
)
from mbprof.api.sweep import compare, prepare_compare  # noqa: F401
