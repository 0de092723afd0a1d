"""The document of `mbprof profile`: totals, the per-layer table (flat, or summed by module
path cut to a depth, or by layer type: every grouping sums to the same totals) and, with
memory, the per-resolution table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mbprof.core.parsing import parse_int, refused
from mbprof.core.records import LayerRow, Profile
from mbprof.core.units import format_value
from mbprof.render.document import Document, Fact, Table, data_frame
from mbprof.render.memory_view import NOTES as MEMORY_NOTES
from mbprof.render.memory_view import memory_facts, resolution_table

if TYPE_CHECKING:
    import pandas as pd

MADDS_NOTE = "conv + fully connected multiply-accumulates, batch 1"
USED_NOTE = "read by the inference forward pass"


def _ops_text(ops: dict[str, int]) -> str:
    return ", ".join(f"{op.removeprefix('aten::')} x{n}" for op, n in sorted(ops.items()))


LAYER_COLUMNS = (
    "path type kernel stride groups channels in_channels out_channels output_hw madds params "
    "params_used unused other_flops madds_share"
).split()


def pair(values: tuple[int, ...] | None) -> str | None:
    return None if values is None else "x".join(map(str, values))


def layer_frame(layers: Sequence[LayerRow], madds_total: int) -> pd.DataFrame:
    rows = []
    for row in layers:
        rows.append({key: getattr(row, key, None) for key in LAYER_COLUMNS})
        channels = None if row.in_channels is None else f"{row.in_channels} -> {row.out_channels}"
        rows[-1].update(kernel=pair(row.kernel), stride=pair(row.stride), channels=channels)
        rows[-1].update(output_hw=pair(row.out_hw), madds_share=_share(row.madds, madds_total))
        rows[-1]["unused"] = "not read" if row.params and row.params_used == 0 else ""
    return data_frame(rows, LAYER_COLUMNS, ("groups", "in_channels", "out_channels"))


FLOPS_NOTE = (
    "FLOPs: 2 per multiply-add plus 1 per element-wise operation (rules in the FLOPs table). "
    "DeepSpeed's and calflops' profilers count multiply-adds, batch norm and pooling the same "
    "way, but only the activations and element-wise ops called through the functions they "
    "patch (F.relu, torch.add; not nn.ReLU6, x + y or a linear layer's bias): for "
    "mobilenet_v2 1.0@224 they give 614.97M, 2 x MAdds + batch norm + pooling. torch's "
    "FlopCounterMode counts the multiply-adds only."
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
        ("params", "Params", counts.params, "int", "weights, biases, batch-norm affine"),
        ("params_used", "Params used", counts.params_used, "int", USED_NOTE),
        ("other_flops", "Other FLOPs", counts.other_flops, "int", f"not in MAdds: {other}"),
    ]
    facts = [Fact(*f) for f in facts]
    if by != "layer":
        table = grouped_table(counts.layers, by, max_depth)
    else:
        layers = layer_frame(counts.layers, counts.madds)
        marked = "unused" in layers and (layers["unused"] != "").any()
        hidden = ("in_channels", "out_channels", "params_used") + (() if marked else ("unused",))
        title = "Per layer (each module's own ops; rows sum to the totals)"
        secondary = ("groups", "stride", "kernel", "output_hw", "channels", "other_flops", "type")
        headers, kinds = {**COUNTS, "channels": "In -> out"}, {**KINDS, "channels": "text"}
        table = Table("layers", layers, title, headers, kinds, hidden, secondary)
    notes = [
        "MAdds: multiply-accumulates of convolutions and fully connected layers, counted by "
        + ("fvcore" if counts.engine == "fvcore" else "fvcore's rules on PyTorch's dispatcher")
        + " for one image (the papers' convention).",
        "Not counted (no cost estimate): " + (_ops_text(counts.uncounted_ops) or "none") + ".",
        *(note if note.endswith(".") else f"{note}." for note in result.notes),
        *(f"Not measured: {line}" for line in result.missing),
    ]
    tables = [table]
    if (flops := result.flops) is not None:
        note = "2 per multiply-add + element-wise ops (DeepSpeed/calflops style; see below)"
        facts.append(Fact("flops", "FLOPs", flops.total, "int", note))
        rows = []  # each kind with the rule that counted it
        for kind, n in flops.by_kind.items():  # 'Multiply-adds', 'Batch norm', ...
            name = kind.replace("_", " ").capitalize().replace("Multiply adds", "Multiply-adds")
            rows.append({"kind": kind, "name": name, "flops": n, "rule": flops.rules.get(kind, "")})
        title = "FLOPs, 2 per multiply-add (the other common convention), by kind"
        headers = {"name": "Kind", "flops": "FLOPs", "rule": "Rule"}
        kinds = {"name": "text", "flops": "int", "rule": "text"}
        tables.append(Table("flops", data_frame(rows), title, headers, kinds, ("kind",)))
        notes.append(FLOPS_NOTE)
        if flops.uncounted_ops:
            notes.append("Not in FLOPs (no rule): " + _ops_text(dict(flops.uncounted_ops)) + ".")
    if result.memory is not None:  # the two peaks and the per-resolution table
        keys = ("mem_dtype", "peak_act_bytes", "peak_act_bytes_efficient", "mem_chunks")
        facts += [f for f in memory_facts(result.memory) if f.key in keys]
        tables.append(resolution_table(result.memory, hide_ops=True))
        notes += MEMORY_NOTES
    return Document(f"{spec.label}: MAdds and parameters", facts, tables, notes, kind="profile")


GROUPINGS = ("layer", "module", "type")
DEFAULT_DEPTH = 2  # the blocks of the torchvision layouts (features.3)


def check_grouping(by: str, depth: int | str | None) -> tuple[str, int | None]:
    """``(by, depth)``: a depth alone means "module", "module" alone ``DEFAULT_DEPTH``."""
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


# The counts in full (mbprof.frame.columns shows them in millions).
COUNTS = {"madds": "MAdds", "params": "Params", "other_flops": "Other FLOPs"}
KINDS = dict.fromkeys(COUNTS, "int")
_SECONDARY = ("output_hw", "params_share", "other_flops", "layers")


def grouped_table(layers: Sequence[LayerRow], by: str, depth: int | None) -> Table:
    """``layers`` summed by "module" (paths cut to ``depth``) or "type" (most MAdds first)."""
    name = "module" if by == "module" else "layer_type"
    cut = depth or DEFAULT_DEPTH
    key = (lambda r: ".".join(r.path.split(".")[:cut])) if by == "module" else layer_type
    madds, params = sum(r.madds for r in layers), sum(r.params for r in layers)
    groups: dict[str, list[LayerRow]] = {}
    for row in layers:
        groups.setdefault(key(row), []).append(row)
    rows = []
    for group, members in groups.items():
        sums = {f: sum(getattr(r, f) for r in members) for f in ("madds", "params", "other_flops")}
        shares = {"madds_share": _share(sums["madds"], madds)}
        shares["params_share"] = _share(sums["params"], params)
        hw = next((pair(r.out_hw) for r in reversed(members) if r.out_hw is not None), None)
        rows.append({name: group, "layers": len(members), "output_hw": hw, **sums, **shares})
    if by == "module":
        table, keys = "modules", "module layers output_hw madds params other_flops madds_share"
        title = f"Per module, to depth {depth} (the layers under each summed; rows sum to "
        title += "the totals)"
    else:
        rows.sort(key=lambda r: (-r["madds"], -r["params"], r["layer_type"]))
        table, keys = "layer_types", "layer_type layers madds madds_share params params_share"
        keys += " other_flops"
        title = "Per layer type (rows sum to the totals)"
    headers = {**COUNTS, "madds_share": "MAdds share"}
    return Table(table, data_frame(rows, keys.split()), title, headers, KINDS, secondary=_SECONDARY)
