"""mbprof: what a mobile network costs before it ships.

The public API is imported lazily so that ``mbprof --help`` does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "create_model": "mbprof.models",
    "list_models": "mbprof.models",
    "get_model_info": "mbprof.models",
    "register_model": "mbprof.models",
    "load_weights": "mbprof.models",
    "profile": "mbprof.api",
    "profile_spec": "mbprof.api",
    "compare": "mbprof.api",
    "check": "mbprof.api",
    "write_baseline": "mbprof.api",
    "CheckOutcome": "mbprof.api",
    "make_spec": "mbprof.api",
    "make_specs": "mbprof.api",
    "bench": "mbprof.api",
    "make_latency_settings": "mbprof.api",
    "LatencySettings": "mbprof.core.settings",
    "MemorySettings": "mbprof.core.settings",
    "memory_settings": "mbprof.api",
    "Timing": "mbprof.core.records",
    "Environment": "mbprof.core.records",
    "BenchResult": "mbprof.core.records",
    "memory": "mbprof.api",
    "reproduce": "mbprof.api",
    "diff": "mbprof.api",
    "DiffResult": "mbprof.api.diff",
    "analyze_memory": "mbprof.analysis.memory",
    "MemoryReport": "mbprof.core.records",
    "ModelSpec": "mbprof.core.records",
    "Profile": "mbprof.core.records",
    "CountReport": "mbprof.core.records",
    "LayerRow": "mbprof.core.records",
    "MbprofError": "mbprof.core.errors",
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
