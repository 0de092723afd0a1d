"""The document of `mbprof profile`: totals, the per-layer table (flat, or summed by module
path cut to a depth, or by layer type: every grouping sums to the same totals) and, with
memory, the per-resolution table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.core.records import FlopsCount, LayerRow, Profile
from mbprof.core.units import format_value
from mbprof.render.document import Document, Fact, Table

if TYPE_CHECKING:
    import pandas as pd


MADDS_NOTE = "conv + fully connected multiply-accumulates, batch 1"
PARAMS_NOTE = "weights, biases, batch-norm affine"
PARAMS_USED_NOTE = "read by the inference forward pass"
UNUSED_MARK = "not read"  # a layer whose parameters inference never reads


def _ops_text(ops: dict[str, int]) -> str:
    return ", ".join(f"{op.removeprefix('aten::')} x{n}" for op, n in sorted(ops.items()))


LAYER_COLUMNS = (
    "path type kernel stride groups channels in_channels out_channels output_hw madds params "
    "params_used unused other_flops madds_share"
).split()


def _pair(values: tuple[int, int] | None) -> str | None:
    return None if values is None else f"{values[0]}x{values[1]}"


def layer_frame(layers: Sequence[LayerRow], madds_total: int) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for row in layers:
        rows.append({key: getattr(row, key, None) for key in LAYER_COLUMNS})
        rows[-1].update(
            kernel=_pair(row.kernel),
            stride=_pair(row.stride),
            channels=None
            if row.in_channels is None
            else f"{row.in_channels} -> {row.out_channels}",
            output_hw=_pair(row.out_hw),
            unused=UNUSED_MARK if row.params and row.params_used == 0 else "",
            madds_share=_share(row.madds, madds_total),
        )
    frame = pd.DataFrame(rows, columns=LAYER_COLUMNS)
    # integers, also where a row has none
    return frame.astype(dict.fromkeys(("groups", "in_channels", "out_channels"), "Int64"))


FLOPS_NAMES = {
    "multiply_adds": "Multiply-adds",
    "bias": "Bias",
    "batch_norm": "Batch norm",
    "pooling": "Pooling",
    "activations": "Activations",
    "additions": "Additions",
    "multiplications": "Multiplications",
}
FLOPS_NOTE = (
    "FLOPs: 2 per multiply-add plus 1 per element-wise operation (rules in the FLOPs table). "
    "DeepSpeed's and calflops' profilers count multiply-adds, batch norm and pooling the same "
    "way, but only the activations and element-wise ops called through the functions they "
    "patch (F.relu, torch.add; not nn.ReLU6, x + y or a linear layer's bias): for "
    "mobilenet_v2 1.0@224 they give 614.97M, 2 x MAdds + batch norm + pooling. torch's "
    "FlopCounterMode counts the multiply-adds only."
)


def flops_table(flops: FlopsCount) -> Table:
    """FLOPs in the 2-per-multiply-add convention, each kind with the rule that counted it."""
    import pandas as pd

    rows = [
        {
            "kind": kind,
            "name": FLOPS_NAMES.get(kind, kind),
            "flops": n,
            "rule": flops.rules.get(kind, ""),
        }
        for kind, n in flops.by_kind.items()
    ]
    return Table(
        name="flops",
        frame=pd.DataFrame(rows),
        title="FLOPs, 2 per multiply-add (the other common convention), by kind",
        headers={"name": "Kind", "flops": "FLOPs", "rule": "Rule"},
        kinds={"kind": "text", "name": "text", "flops": "int", "rule": "text"},
        hidden_in_text=("kind",),
    )


def profile_document(result: Profile, by: str = "layer", max_depth: int | None = None) -> Document:
    """``by`` "layer", "module" (to ``max_depth``; a depth alone means it) or "type"."""
    by, max_depth = check_grouping(by, max_depth)
    spec, counts = result.spec, result.counts
    other = sorted(counts.other_flops_by_op.items())
    other = ", ".join(f"{op} {format_value(n, 'count')}" for op, n in other) or "none"
    facts = [
        ("model", "Model", spec.model, "text"),
        ("width", "Width multiplier", spec.width, "float"),
        ("depth", "Depth multiplier", spec.depth, "float"),
        ("resolution", "Input", f"{spec.resolution[0]}x{spec.resolution[1]}x3", "text"),
        ("num_classes", "Classes", spec.num_classes, "int"),
        *([("args", "Builder args", dict(spec.kwargs), "text")] if spec.kwargs else []),
        ("madds", "MAdds", counts.madds, "int", MADDS_NOTE),
        ("params", "Params", counts.params, "int", PARAMS_NOTE),
        ("params_used", "Params used", counts.params_used, "int", PARAMS_USED_NOTE),
        ("other_flops", "Other FLOPs", counts.other_flops, "int", f"not in MAdds: {other}"),
    ]
    if result.flops is not None:
        note = "2 per multiply-add + element-wise ops (DeepSpeed/calflops style; see below)"
        facts.append(("flops", "FLOPs", result.flops.total, "int", note))
    facts = [Fact(*f) for f in facts]
    layers = layer_frame(counts.layers, counts.madds)
    marked = "unused" in layers and (layers["unused"] != "").any()
    table = Table(
        name="layers",
        frame=layers,
        title="Per layer (each module's own ops; rows sum to the totals)",
        headers={**HEADERS, "channels": "In -> out", "unused": "Inference"},
        kinds={**KINDS, **dict.fromkeys(("kernel", "stride", "channels", "unused"), "text")},
        hidden_in_text=("in_channels", "out_channels", "params_used")
        + (() if marked else ("unused",)),
        secondary=("groups", "stride", "kernel", "output_hw", "channels", "other_flops", "type"),
    )
    if by != "layer":
        table = grouped_table(counts.layers, by, max_depth)
    notes = [
        "MAdds: multiply-accumulates of convolutions and fully connected layers, counted by "
        + ("fvcore" if counts.engine == "fvcore" else "fvcore's rules on PyTorch's dispatcher")
        + " for one image (the papers' convention).",
        "Not counted (no cost estimate): " + (_ops_text(counts.uncounted_ops) or "none") + ".",
        *(note if note.endswith(".") else f"{note}." for note in result.notes),
        *(f"Not measured: {line}" for line in result.missing),
    ]
    tables = [table]
    if result.flops is not None:
        tables.append(flops_table(result.flops))
        notes.append(FLOPS_NOTE)
        if result.flops.uncounted_ops:
            notes.append(
                "Not in FLOPs (no rule): " + _ops_text(dict(result.flops.uncounted_ops)) + "."
            )
    if result.memory is not None:
        from mbprof.render.memory_view import NOTES, profile_memory_parts

        memory_facts, memory_table = profile_memory_parts(result.memory)
        facts += memory_facts
        tables.append(memory_table)
        notes += NOTES
    return Document(
        kind="profile",
        title=f"{spec.label}: MAdds and parameters",
        facts=facts,
        tables=tables,
        notes=notes,
        meta={"mbprof_version": __version__},
    )


GROUPINGS = ("layer", "module", "type")
DEFAULT_DEPTH = 2  # the blocks of the torchvision layouts (features.3)


def check_grouping(by: str, depth: int | str | None) -> tuple[str, int | None]:
    """``(by, depth)``: a depth alone means "module", "module" alone ``DEFAULT_DEPTH``."""
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
    """'depthwise conv 3x3', 'pointwise conv 1x1', 'fully connected', or the class name."""
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


def _summed(layers: Sequence[LayerRow], name: str, key) -> list[dict]:
    """One row per ``key(layer)``, in the order the layers run: the layers' figures summed."""
    madds, params = sum(r.madds for r in layers), sum(r.params for r in layers)
    groups: dict[str, list[LayerRow]] = {}
    for row in layers:
        groups.setdefault(key(row), []).append(row)
    rows = []
    for group, members in groups.items():
        sizes = [r.out_hw for r in members if r.out_hw is not None]
        sums = {f: sum(getattr(r, f) for r in members) for f in ("madds", "params", "other_flops")}
        shares = {"madds_share": _share(sums["madds"], madds)}
        shares["params_share"] = _share(sums["params"], params)
        hw = _pair(sizes[-1]) if sizes else None
        rows.append({name: group, "layers": len(members), "output_hw": hw, **sums, **shares})
    return rows


def module_frame(layers: Sequence[LayerRow], depth: int) -> pd.DataFrame:
    """One row per module path cut to ``depth`` parts, in the order the layers run."""
    import pandas as pd

    rows = _summed(layers, "module", lambda r: ".".join(r.path.split(".")[:depth]))
    keys = ("module", "layers", "output_hw", "madds", "params", "other_flops", "madds_share")
    return pd.DataFrame(rows, columns=list(keys))


def type_frame(layers: Sequence[LayerRow]) -> pd.DataFrame:
    """One row per layer type (``layer_type``), the most MAdds first."""
    import pandas as pd

    rows = _summed(layers, "layer_type", layer_type)
    rows.sort(key=lambda r: (-r["madds"], -r["params"], r["layer_type"]))
    keys = "layer_type layers madds madds_share params params_share other_flops".split()
    return pd.DataFrame(rows, columns=keys)


HEADERS = {
    "path": "Module",
    "module": "Module",
    "layer_type": "Layer type",
    "type": "Type",
    "kernel": "Kernel",
    "stride": "Stride",
    "groups": "Groups",
    "layers": "Layers",
    "output_hw": "Output HxW",
    "madds": "MAdds",
    "params": "Params",
    "other_flops": "Other FLOPs",
    "madds_share": "Share",
    "params_share": "Params share",
}
KINDS = {
    **dict.fromkeys(("path", "module", "layer_type", "type", "output_hw"), "text"),
    **dict.fromkeys(("groups", "layers", "madds", "params", "other_flops", "params_used"), "int"),
    **dict.fromkeys(("madds_share", "params_share"), "percent"),
}
_SECONDARY = ("output_hw", "params_share", "other_flops", "layers")


def grouped_table(layers: Sequence[LayerRow], by: str, depth: int | None) -> Table:
    """The table of ``layers`` grouped ``by`` "module" (to ``depth``) or "type"."""
    if by == "module":
        name, frame = "modules", module_frame(layers, depth or DEFAULT_DEPTH)
        title = f"Per module, to depth {depth} (the layers under each summed; rows sum to "
        title += "the totals)"
    else:
        name, frame = "layer_types", type_frame(layers)
        title = "Per layer type (rows sum to the totals)"
    headers = {**HEADERS, "madds_share": "MAdds share"}
    return Table(name, frame, title, headers, KINDS, secondary=_SECONDARY)
