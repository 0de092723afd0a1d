"""mbprof: what a mobile network costs before it ships.

The public API is imported lazily so that ``mbprof --help`` does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # for editors and type checkers; at run time __getattr__ imports lazily
    from mbprof.analysis.memory import analyze_memory  # noqa: F401
    from mbprof.api import (  # noqa: F401
        CheckOutcome,
        bench,
        check,
        compare,
        diff,
        make_latency_settings,
        make_spec,
        make_specs,
        memory,
        memory_settings,
        profile,
        profile_spec,
        write_baseline,
    )
    from mbprof.api.diff import DiffResult  # noqa: F401
    from mbprof.core.errors import MbprofError  # noqa: F401
    from mbprof.core.records import (  # noqa: F401
        BenchResult,
        CountReport,
        Environment,
        LayerRow,
        MemoryReport,
        ModelSpec,
        Profile,
        Timing,
    )
    from mbprof.core.settings import LatencySettings, MemorySettings  # noqa: F401
    from mbprof.models import (  # noqa: F401
        create_model,
        get_model_info,
        list_models,
        load_weights,
        register_model,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'mbprof' has no attribute {name!r}")
