"""mbprof: what a mobile network costs before it ships.

The public API is imported lazily so that ``mbprof --help`` does not load torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {  # name -> the module it comes from
    name: module
    for module, names in (
        ("mbprof.models", "create_model list_models get_model_info register_model load_weights"),
        (
            "mbprof.api",
            "profile profile_spec compare check write_baseline CheckOutcome make_spec make_specs "
            "bench make_latency_settings memory_settings memory reproduce diff",
        ),
        ("mbprof.api.diff", "DiffResult"),
        ("mbprof.analysis.memory", "analyze_memory"),
        ("mbprof.core.settings", "LatencySettings MemorySettings"),
        (
            "mbprof.core.records",
            "Timing Environment BenchResult MemoryReport ModelSpec Profile CountReport LayerRow",
        ),
        ("mbprof.core.errors", "MbprofError"),
    )
    for name in names.split()
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'mbprof' has no attribute {name!r}")
