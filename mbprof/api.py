"""The Python API; the CLI is a thin layer over these functions.

import mbprof
model = mbprof.create_model("mobilenet_v2", width=0.5)
p = mbprof.profile("mobilenet_v2", width=1.0, resolution=224)
p.counts.madds    # 300774272
frame = mbprof.compare(widths=[0.35, 0.5, 1.0, 1.4], resolutions=[96, 224])
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.errors import ResourceError
from mbprof.parsing import parse_resolution
from mbprof.records import ModelSpec, Profile

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from mbprof.accuracy import AccuracyTable

Resolution = int | str | tuple[int, int]


def make_spec(
    model: str = "mobilenet_v2",
    width: float = 1.0,
    depth: float = 1.0,
    resolution: Resolution = 224,
    num_classes: int = 1000,
    kwargs: dict[str, Any] | Sequence[tuple[str, Any]] | None = None,
) -> ModelSpec:
    """A checked ``ModelSpec``: raises ``MbprofError`` naming any value the model refuses."""
    from mbprof.models import check_spec

    if isinstance(resolution, tuple):
        resolution = f"{resolution[0]}x{resolution[1]}"
    pairs = dict(kwargs or {})
    spec = ModelSpec(
        model=model,
        width=float(width),
        depth=float(depth),
        resolution=parse_resolution(resolution, "resolution"),
        num_classes=num_classes,
        kwargs=tuple(sorted(pairs.items())),
    )
    check_spec(spec)
    return spec


def make_specs(
    models: Iterable[str] = ("mobilenet_v2",),
    widths: Iterable[float] = (1.0,),
    depths: Iterable[float] = (1.0,),
    resolutions: Iterable[Resolution] = (224,),
    num_classes: int = 1000,
    kwargs: dict[str, Any] | None = None,
) -> list[ModelSpec]:
    """Every (model, width, depth, resolution), all checked before any is built.

    Models without a depth multiplier take only depth 1.0: a sweep over depths
    gives them one row per (width, resolution).
    """
    from mbprof.models import get_model_info

    specs: list[ModelSpec] = []
    depths = list(depths)
    for model, width, depth, resolution in itertools.product(models, widths, depths, resolutions):
        if depth != 1.0 and 1.0 in depths and not get_model_info(model).has_depth:
            continue
        spec = make_spec(model, width, depth, resolution, num_classes, kwargs)
        if spec not in specs:
            specs.append(spec)
    return specs


def _refuse_if_over(spec: ModelSpec, need: int, what: str) -> None:
    from mbprof.analysis.footprint import available_memory_bytes
    from mbprof.units import format_bytes

    have = available_memory_bytes()
    if need > have:
        raise ResourceError(
            f"{spec.label} needs about {format_bytes(need)} for its {what}, more than the "
            f"{format_bytes(have)} of memory available; use a smaller resolution or width"
        )


def build_checked(spec: ModelSpec, weights: str | Path | None = None, batch: int = 1) -> nn.Module:
    """Build the model of ``spec``, first making sure that it and a float32 forward pass
    of ``batch`` images fit in free memory (refused with ``ResourceError`` otherwise)."""
    from mbprof.analysis.footprint import activation_bytes, param_bytes
    from mbprof.models import create_from_spec

    _refuse_if_over(spec, param_bytes(lambda: create_from_spec(spec)), "parameters")
    model = create_from_spec(spec, weights=weights)
    _refuse_if_over(spec, activation_bytes(model, spec.input_shape(batch)), "activations")
    return model


def profile_spec(spec: ModelSpec, weights: str | Path | None = None) -> Profile:
    """Build the model of ``spec`` and count its MAdds and parameters."""
    from mbprof.analysis.counting import count

    model = build_checked(spec, weights=weights)
    return Profile(spec=spec, counts=count(model, spec.input_shape()))


def profile(
    model: str = "mobilenet_v2",
    width: float = 1.0,
    depth: float = 1.0,
    resolution: Resolution = 224,
    num_classes: int = 1000,
    *,
    weights: str | Path | None = None,
    kwargs: dict[str, Any] | None = None,
) -> Profile:
    """Profile one configuration; see ``Profile`` and ``CountReport`` for the fields."""
    spec = make_spec(model, width, depth, resolution, num_classes, kwargs)
    return profile_spec(spec, weights=weights)


def profile_row(result: Profile) -> dict[str, Any]:
    """One flat row of a comparison frame (column meanings in ``mbprof.columns``)."""
    spec = result.spec
    row: dict[str, Any] = {
        "model": spec.model,
        "width": spec.width,
        "depth": spec.depth,
        "resolution": spec.res_label,
        "input_h": spec.resolution[0],
        "input_w": spec.resolution[1],
        "num_classes": spec.num_classes,
        "madds": result.counts.madds,
        "params": result.counts.params,
        "other_flops": result.counts.other_flops,
    }
    if spec.kwargs:
        row["args"] = " ".join(f"{k}={v}" for k, v in spec.kwargs)
    return row


def iter_compare(
    specs: Sequence[ModelSpec],
    weights: str | Path | None = None,
    on_start: Callable[[ModelSpec], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one row per configuration as it is measured (for progress bars and for
    keeping finished rows when a sweep is interrupted)."""
    for spec in specs:
        if on_start is not None:
            on_start(spec)
        yield profile_row(profile_spec(spec, weights=weights))


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows))


def compare(
    models: Iterable[str] = ("mobilenet_v2",),
    widths: Iterable[float] = (1.0,),
    depths: Iterable[float] = (1.0,),
    resolutions: Iterable[Resolution] = (224,),
    num_classes: int = 1000,
    *,
    kwargs: dict[str, Any] | None = None,
    weights: str | Path | None = None,
    accuracy: bool | str | Path = True,
) -> pd.DataFrame:
    """One row per (model, width, depth, resolution) with MAdds and params.

    ``accuracy``: True joins the published top-1/top-5 shipped with mbprof (see
    ``mbprof.accuracy``), a path to a CSV puts that file's figures first, False joins none.
    """
    table = accuracy_for(accuracy)
    specs = make_specs(models, widths, depths, resolutions, num_classes, kwargs)
    return add_accuracy(rows_to_frame(iter_compare(specs, weights=weights)), table)


def accuracy_for(accuracy: bool | str | Path | None) -> AccuracyTable | None:
    """The ``AccuracyTable`` that ``accuracy`` asks for (read and checked now), or None."""
    from mbprof import accuracy as published

    if accuracy is False or accuracy is None:
        return None
    return published.accuracy_table(None if accuracy is True else accuracy)


def add_accuracy(frame: pd.DataFrame, table: AccuracyTable | None) -> pd.DataFrame:
    """``frame`` with published accuracy joined (unchanged when ``table`` is None)."""
    from mbprof import accuracy as published

    return frame if table is None else published.join(frame, table)
