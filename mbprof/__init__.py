"""mbprof: what a mobile network costs before it ships.

The public API is imported lazily so that ``mbprof --help`` does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the public API, named once: editors read these imports, __getattr__ too
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
        reproduce,
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


def _public() -> dict[str, str]:
    """Name -> the module it comes from, read from the imports above (never run)."""
    import ast

    with open(__file__, encoding="utf-8") as source:
        block = next(node for node in ast.parse(source.read()).body if isinstance(node, ast.If))
    return {alias.name: node.module for node in block.body for alias in node.names}


_API = _public()
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'mbprof' has no attribute {name!r}")
