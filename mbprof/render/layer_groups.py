"""The per-layer table as designers read it: grouped by module (the layers under each module
path cut to a depth, summed, as fvcore's ``max_depth`` and torchinfo's ``depth`` do) or by
layer type (every depthwise conv together, every pointwise conv, ...: each type's share of
MAdds and parameters). The rows are ``profile``'s layers; groups only add them up, so every
grouped table sums to the same totals as the flat one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mbprof.core.records import LayerRow
from mbprof.render.document import Table

if TYPE_CHECKING:
    import pandas as pd

GROUPINGS = ("layer", "module", "type")
DEFAULT_DEPTH = 2  # the blocks of the torchvision layouts (features.3)


def check_grouping(by: str, depth: int | str | None) -> tuple[str, int | None]:
    """``(by, depth)`` as the table uses them: a depth alone means ``by="module"``, and
    ``by="module"`` alone groups to ``DEFAULT_DEPTH``."""
    from mbprof.core.parsing import parse_int, refused

    if by not in GROUPINGS:
        raise refused("by", f"{by!r} is not a grouping; choose one of {', '.join(GROUPINGS)}")
    if depth is not None:
        depth = parse_int(depth, "max_depth")
        if by == "type":
            raise refused("max_depth", "a module depth groups modules; it does not go with type")
        return "module", depth
    return by, DEFAULT_DEPTH if by == "module" else None


def layer_type(row: LayerRow) -> str:
    """'depthwise conv 3x3', 'pointwise conv 1x1', 'conv 3x3', 'group conv 1x1',
    'fully connected'; other layers by their class ('BatchNorm2d'), the top module's own
    functional ops as "MobileNetV2's own ops"."""
    if row.groups is not None and row.kernel is not None:
        kernel = f"{row.kernel[0]}x{row.kernel[1]}"
        if row.groups > 1 and row.groups == row.in_channels == row.out_channels:
            return f"depthwise conv {kernel}"
        if row.groups > 1:
            return f"group conv {kernel}"
        return "pointwise conv 1x1" if kernel == "1x1" else f"conv {kernel}"
    if row.type == "Linear":
        return "fully connected"
    if row.path == "(model)":  # the top module's own functional ops (pooling, adds)
        return f"{row.type}'s own ops"
    return row.type


def _share(part: int, total: int) -> float:
    return 100.0 * part / total if total else 0.0


def _module_of(path: str, depth: int) -> str:
    return ".".join(path.split(".")[:depth])


def module_frame(layers: Sequence[LayerRow], depth: int) -> pd.DataFrame:
    """One row per module path cut to ``depth`` parts, in the order the layers run."""
    import pandas as pd

    madds_total = sum(r.madds for r in layers)
    groups: dict[str, list[LayerRow]] = {}
    for row in layers:
        groups.setdefault(_module_of(row.path, depth), []).append(row)
    rows = []
    for path, members in groups.items():
        sizes = [r.out_hw for r in members if r.out_hw is not None]
        rows.append(
            {
                "module": path,
                "layers": len(members),
                "output_hw": f"{sizes[-1][0]}x{sizes[-1][1]}" if sizes else None,
                "madds": sum(r.madds for r in members),
                "params": sum(r.params for r in members),
                "other_flops": sum(r.other_flops for r in members),
                "madds_share": _share(sum(r.madds for r in members), madds_total),
            }
        )
    return pd.DataFrame(rows)


def type_frame(layers: Sequence[LayerRow]) -> pd.DataFrame:
    """One row per layer type (``layer_type``), the most MAdds first."""
    import pandas as pd

    madds_total = sum(r.madds for r in layers)
    params_total = sum(r.params for r in layers)
    groups: dict[str, list[LayerRow]] = {}
    for row in layers:
        groups.setdefault(layer_type(row), []).append(row)
    rows = [
        {
            "layer_type": kind,
            "layers": len(members),
            "madds": sum(r.madds for r in members),
            "madds_share": _share(sum(r.madds for r in members), madds_total),
            "params": sum(r.params for r in members),
            "params_share": _share(sum(r.params for r in members), params_total),
            "other_flops": sum(r.other_flops for r in members),
        }
        for kind, members in groups.items()
    ]
    rows.sort(key=lambda r: (-r["madds"], -r["params"], r["layer_type"]))
    return pd.DataFrame(rows)


HEADERS = {
    "module": "Module",
    "layer_type": "Layer type",
    "layers": "Layers",
    "output_hw": "Output HxW",
    "madds": "MAdds",
    "params": "Params",
    "other_flops": "Other FLOPs",
    "madds_share": "Share",
    "params_share": "Params share",
}
KINDS = {
    "module": "text",
    "layer_type": "text",
    "layers": "int",
    "output_hw": "text",
    "madds": "int",
    "params": "int",
    "other_flops": "int",
    "madds_share": "percent",
    "params_share": "percent",
}
_SECONDARY = ("output_hw", "params_share", "other_flops", "layers")


def grouped_table(layers: Sequence[LayerRow], by: str, depth: int | None) -> Table:
    """The table of ``layers`` grouped ``by`` "module" (to ``depth``) or "type"."""
    if by == "module":
        return Table(
            name="modules",
            frame=module_frame(layers, depth or DEFAULT_DEPTH),
            title=f"Per module, to depth {depth} (the layers under each summed; rows sum to "
            "the totals)",
            headers={**HEADERS, "madds_share": "MAdds share"},
            kinds=KINDS,
            secondary=_SECONDARY,
        )
    return Table(
        name="layer_types",
        frame=type_frame(layers),
        title="Per layer type (rows sum to the totals)",
        headers={**HEADERS, "madds_share": "MAdds share"},
        kinds=KINDS,
        secondary=_SECONDARY,
    )
