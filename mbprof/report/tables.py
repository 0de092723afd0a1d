"""The paper's tables beside mbprof's figures: Table 4 (top-1, params, MAdds, phone latency),
Table 3 (the largest activation tensor, fp16) checked against its own channel counts, timm's
index "FLOPs", and the page on where they disagree (``inconsistencies.md``). Torch-free."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mbprof.core.parsing import parse_kwargs
from mbprof.core.records import CountReport, ModelSpec
from mbprof.core.units import format_value
from mbprof.frame.rows import cell, is_missing
from mbprof.render.document import markdown_grid
from mbprof.report import plan
from mbprof.report.plan import config, delta, fill, kilobytes, lines, millions, read_data

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.core.records import MemoryReport

LATENCY_KEYS = ("latency_ms", "latency_p10_ms", "latency_p90_ms", "throughput_ips")


def table4_frame(frame: pd.DataFrame, bn_params: Callable[[str, float], int]) -> pd.DataFrame:
    """The paper's Table 4 rows that ``frame`` measured, beside mbprof's counts."""
    import pandas as pd

    from mbprof.frame import accuracy

    rows = []
    for paper in read_data("paper_table4.csv"):
        spec = config(paper["model"], paper["width"], paper["resolution"])
        ours = plan.find_row(frame, spec)
        if ours is None:
            continue
        others = [
            f"{plan.top1_text(e.top1)} ({e.source})"
            for e in accuracy.shipped().all_sources(config(spec.model, spec.width, 224))
            if not e.source.startswith("MobileNetV2 paper")
        ]
        row = {
            "network": paper["network"],
            "model": spec.model,
            "width": spec.width,
            "resolution": spec.resolution[0],
            "paper_top1": float(paper["top1"]),
            "other_top1": "; ".join(others),
            "paper_params_m": float(paper["params_m"]),
            "params": int(ours["params"]),
            "params_without_bn": int(ours["params"]) - bn_params(spec.model, spec.width),
            "paper_madds_m": float(paper["madds_m"]),
            "madds": int(ours["madds"]),
            "paper_phone_ms": float(paper["phone_ms"]) if paper["phone_ms"] else math.nan,
        }
        row |= {k: float(ours[k]) for k in LATENCY_KEYS if cell(ours, k) is not None}
        rows.append(row)
    return pd.DataFrame(rows)


def table4_markdown(t4: pd.DataFrame, env: str) -> str:
    """Table 4 as Markdown; ``env`` says where the CPU column was measured."""
    has_latency = "latency_ms" in t4.columns
    headers = fill("table4", "headers").split("|")[: None if has_latency else -1]
    records = t4.to_dict(orient="records")
    rows = []
    for r in records:
        row = [r["network"], plan.top1_text(r["paper_top1"])]
        for key in ("params", "madds"):  # the paper's, mbprof's, the difference
            paper = r[f"paper_{key}_m"]
            row += [f"{paper:g}M", f"{millions(r[key])} ({r[key]:,})", delta(r[key] / 1e6, paper)]
        row.append("-" if is_missing(r["paper_phone_ms"]) else f"{r['paper_phone_ms']:g}")
        row.append("-" if is_missing(r.get("latency_ms")) else f"{r['latency_ms']:.1f}")
        rows.append(row[: len(headers)])
    return fill(
        "table4",
        "document",
        table=markdown_grid(headers, rows, [False] + [True] * (len(headers) - 1)),
        others="; ".join(f"{r['network']}: {r['other_top1']}" for r in records if r["other_top1"]),
        without_bn=", ".join(f"{r['network']} {millions(r['params_without_bn'])}" for r in records),
        cpu_here=fill("table4", "cpu_here", environment=env) + "\n" if has_latency else "",
    )


def _rounding(printed_k: float, computed_k: float) -> bool:
    """Whether the paper's whole kilobytes (and its rounding to 2 digits: 10%) explain it."""
    return abs(printed_k - computed_k) <= max(1.0, 0.10 * computed_k)


def table3_paper_problems() -> list[str]:
    """The cells of Table 3 that disagree with their own channel count by more than rounding."""
    problems, largest = [], {}
    cells = read_data("paper_table3.csv")
    for cell_ in (c for c in cells if c["size"] != "max"):
        network, side, channels = cell_["network"], int(cell_["size"]), int(cell_["channels"])
        printed = float(cell_["kbytes"])
        largest[network] = max(largest.get(network, printed), printed)
        computed = channels * side * side * 2
        if not _rounding(printed, computed / 1000):
            values = {"side": side, "printed": printed, "computed": computed}
            values |= {"computed_k": computed / 1000, "ratio": printed * 1000 / computed}
            problems.append(fill("table3", "cell_problem", **cell_, **values))
    for cell_ in (c for c in cells if c["size"] == "max"):
        printed, top = float(cell_["kbytes"]), largest[cell_["network"]]
        if not _rounding(printed, top):
            problems.append(fill("table3", "max_problem", **cell_, printed=printed, top=top))
    return problems


_FOUND = ("channels", "tensor_bytes", "materialized_channels", "materialized_bytes", "op_bytes")


def table3_frame(
    left_out: list[str], memory_of: Callable[[str, float], MemoryReport]
) -> pd.DataFrame:
    """The paper's Table 3 beside mbprof's largest tensor per resolution, both modes."""
    import pandas as pd

    cells = read_data("paper_table3.csv")
    rows = []
    for network, model, width in dict.fromkeys(
        (c["network"], c["model"], c["width"]) for c in cells
    ):
        if not plan.registered(model):
            left_out.append(f"Table 3, {network}: {model} not registered in this mbprof")
            continue
        mem = memory_of(model, float(width))
        efficient, whole = ({r.resolution[0]: r for r in m if r.resolution[0] == r.resolution[1]}
                            for m in (mem.resolutions_efficient, mem.resolutions))  # fmt: skip
        for c in (c for c in cells if c["network"] == network):
            row: dict[str, Any] = {"network": network, "model": model, "width": float(width)}
            row["size"] = c["size"]
            row["paper_channels"] = int(c["channels"]) if c["channels"] else None
            row["paper_kbytes"] = float(c["kbytes"])
            if c["size"] == "max":
                found = (None, mem.max_tensor_bytes_efficient, None, mem.max_tensor_bytes, None)
            else:
                eff, mat = efficient.get(int(c["size"])), whole.get(int(c["size"]))
                found = (getattr(eff, "channels", None), getattr(eff, "tensor_bytes", None),
                         getattr(mat, "channels", None), getattr(mat, "tensor_bytes", None),
                         getattr(mat, "op_bytes", None))  # fmt: skip
            row.update(zip(_FOUND, found, strict=True))
            if row["tensor_bytes"] is not None:
                row["delta_bytes"] = row["tensor_bytes"] - round(row["paper_kbytes"] * 1000)
            rows.append(row)
    frame = pd.DataFrame(rows)
    ints = [k for k in ("paper_channels", *_FOUND, "delta_bytes") if k in frame.columns]
    return frame.astype(dict.fromkeys(ints, "Int64"))


def _table3_cells(r: dict[str, Any]) -> list[str]:
    """One network's cells of a Table 3 row: the paper's, mbprof's, the difference."""
    paper = f"{r['paper_kbytes']:g}K"
    if not is_missing(r["paper_channels"]):
        paper = f"{int(r['paper_channels'])} / {paper}"
    if is_missing(r["tensor_bytes"]):
        return [paper, "-", "-"]
    ours = kilobytes(float(r["tensor_bytes"]))
    ours = ours if is_missing(r["channels"]) else f"{int(r['channels'])} / {ours}"
    paper_bytes = r["paper_kbytes"] * 1000
    diff = float(r["tensor_bytes"]) - paper_bytes
    return [paper, ours, f"{diff / 1000:+,.1f}K ({100 * diff / paper_bytes:+.1f}%)"]


def table3_markdown(t3: pd.DataFrame) -> str:
    networks = list(dict.fromkeys(t3["network"]))
    by_cell = {(r["network"], r["size"]): r for r in t3.to_dict(orient="records")}
    rows = []
    for size in dict.fromkeys(t3["size"]):
        row = ["max" if size == "max" else f"{size}x{size}"]
        for network in networks:
            r = by_cell.get((network, size))
            row += ["-", "-", "-"] if r is None else _table3_cells(r)
        rows.append(row)
    headers = ["Size", *(h for n in networks for h in (f"{n}: paper", "mbprof", "Δ"))]
    table = markdown_grid(headers, rows, [False] + [True] * (len(headers) - 1))
    v2 = t3[(t3["model"] == "mobilenet_v2") & (t3["size"] != "max")]
    pairs = [
        f"{r['size']}x{r['size']}: {int(r['materialized_channels'])} / "
        f"{kilobytes(float(r['materialized_bytes']))}"
        for r in v2.to_dict(orient="records")
        if not is_missing(r["materialized_bytes"])
    ]
    contrast = "" if v2.empty else fill("table3", "contrast", pairs="; ".join(pairs)) + "\n"
    return fill("table3", "document", table=table, contrast=contrast)


def table3_explained(
    t3: pd.DataFrame, memory_of: Callable[[str, float], MemoryReport] | None = None
) -> str:
    """Sentences for the cells where mbprof and the paper differ by more than rounding."""
    g2 = None  # ShuffleNet g=2 2.0's largest tensor per side, (channels, bytes): Table 3's other
    if memory_of is not None and plan.registered("shufflenet_v1_g2"):
        mem = memory_of("shufflenet_v1_g2", 2.0)
        g2 = {r.resolution[0]: (r.channels, r.tensor_bytes) for r in mem.resolutions_efficient}
    cells = []
    for r in sorted(t3.to_dict(orient="records"), key=lambda r: r["size"] == "max"):
        if is_missing(r["tensor_bytes"]):
            continue
        paper_bytes, ours = r["paper_kbytes"] * 1000, float(r["tensor_bytes"])
        if abs(ours - paper_bytes) <= max(1000.0, 0.10 * paper_bytes):
            continue
        same = {str(q["size"]): q for q in t3.to_dict(orient="records") if q["model"] == r["model"]}
        if r["size"] == "max":
            at = [s for s, q in same.items() if s != "max" and q["tensor_bytes"] == ours]
            where = fill("table3", "max_where", where=f"{at[0]}x{at[0]}") if at else "."
            cells.append(fill("table3", "max", r=r, tensor_bytes=int(ours), where=where))
            continue
        side = int(r["size"])
        values = {"r": r, "size": f"{side}x{side}", "tensor_bytes": int(ours), "half": side // 2}
        values |= {"paper_channels": int(r["paper_channels"]), "channels": int(r["channels"])}
        text = fill("table3", "cell", **values)
        times = round(paper_bytes / ours)
        below = same.get(str(side // 2))
        if r["channels"] == r["paper_channels"] and times >= 2:
            ratio, total = paper_bytes / ours, times * int(ours)
            text += fill("table3", "same_channels", **values, ratio=ratio, times=times, total=total)
        elif r["model"] == "mobilenet_v2":
            text += fill("table3", "later_stage", **values)
        elif r["model"].startswith("shufflenet"):
            if g2 and side in g2 and g2[side][0] == r["paper_channels"]:
                g2_k = kilobytes(g2[side][1])
                text += fill("table3", "g2", **values, g2_channels=g2[side][0], g2_k=g2_k)
            elif side == 112 and below is not None and below["paper_channels"] == r["channels"]:
                text += fill("table3", "pooled", **values, pooled=int(below["paper_channels"]))
            elif below is not None and r["channels"] * 4 == below["channels"]:
                text += fill("table3", "quarter", **values, stage=int(below["channels"]))
        cells.append(text)
    return fill("table3", "explained", cells="\n".join(cells or [fill("table3", "none")]))


# pytorch/hub's dog.jpg (1546 x 1213), the model card's example image, resized to a short
# side of 224 (transforms.Resize(224): long side int(224 x 1546 / 1213) = 285), not cropped.
SEED_INPUT = (224, 285)
SEED_CLASSES = 1  # the classifier left out: its 1280 x 1 MAdds stand for the pool's "+1"


@dataclass(frozen=True)
class TimmRow:
    """A line of ``mbprof/data/timm_flops.csv``: ``seed`` at SEED_INPUT, ``square`` at 224x224."""

    name: str
    flops: int  # as printed
    params: int  # as printed, rounded to 10,000
    seed: ModelSpec
    square: ModelSpec


def timm_rows() -> list[TimmRow]:
    """The index's lines, each with its two configurations to count."""
    rows = []
    for line in read_data("timm_flops.csv"):
        arch = dict(model=line["model"], width=float(line["width"]), depth=float(line["depth"]))
        arch["kwargs"] = parse_kwargs([a for a in line["args"].split(";") if a], "args")
        seed = ModelSpec(**arch, resolution=SEED_INPUT, num_classes=SEED_CLASSES)
        figures = (line["name"], int(line["flops"]), int(line["params"]))
        rows.append(TimmRow(*figures, seed=seed, square=ModelSpec(**arch)))
    return rows


def _build(spec: ModelSpec) -> str:
    """'mobilenet_v2 1.1, depth 1.2, fix_stem_head'."""
    parts = [f"{spec.model} {format_value(spec.width, 'float')}"]
    parts += [f"depth {spec.depth:g}"] if spec.depth != 1.0 else []
    parts += [key if value is True else f"{key}={value}" for key, value in spec.kwargs]
    return ", ".join(parts)


def timm_flops_markdown(counts: Sequence[tuple[TimmRow, CountReport, CountReport]]) -> str:
    """The section of ``inconsistencies.md`` on timm's index ('' without counts)."""
    if not counts:
        return ""

    def head(counts: CountReport) -> int:  # the classifier's MAdds
        return sum(r.madds for r in counts.layers if r.type == "Linear")

    rows = []
    for row, seed, square in counts:
        total = seed.madds + seed.other_flops
        by_op = [seed.other_flops_by_op.get(op, 0) for op in ("batch_norm", "adaptive_avg_pool2d")]
        figures = (row.flops, seed.madds, *by_op, total, row.flops - total)
        rows.append(
            [f"`{row.name}`", _build(row.seed), *(f"{n:,}" for n in figures)]
            + [f"{square.madds:,}", f"{row.flops / square.madds:.3f}"]
        )
    first, seed, square = counts[0]
    conv, square_conv = seed.madds - head(seed), square.madds - head(square)
    ratios = [row.flops / square.madds for row, _, square in counts]
    exact = all(row.flops == seed.madds + seed.other_flops for row, seed, _ in counts)
    values = {"low": min(ratios), "high": max(ratios), "name": first.name, "conv": conv}
    values |= {"square_conv": square_conv, "conv_ratio": conv / square_conv}
    values["head"] = head(seed)  # input channels of the classifier, times 1 output
    values["verdict"] = fill("timm", "exact" if exact else "not_exact")
    values["params"] = ", ".join(
        f"{s.params:,} ({r.params / 1e6:.2f}M printed)" for r, _, s in counts
    )
    table = markdown_grid(fill("timm", "headers").split("|"), rows, [False, False] + [True] * 8)
    return fill("timm", "section", **values, table=table)


# Table 4's rows in the order the page explains them, each with its template.
_EXPLAINED = {"mobilenet_v1 1": "mobilenet_v1", "mobilenet_v2 1": "mobilenet_v2"}
_EXPLAINED |= {"mobilenet_v2 1.4": "mobilenet_v2_14", "shufflenet_v1_g3 1.5": "baseline"}
_EXPLAINED |= dict.fromkeys(("shufflenet_v1_g3 2", "nasnet_a_mobile 1"), "baseline")


def _figures(r: dict[str, Any]) -> dict[str, Any]:
    """A Table 4 row with its counts in millions (``m``) and less the paper's (``d``)."""
    paper = {"madds": r["paper_madds_m"], "params": r["paper_params_m"]}
    paper["params_without_bn"] = r["paper_params_m"]
    m = {key: millions(r[key]) for key in paper}
    d = {key: delta(r[key] / 1e6, value) for key, value in paper.items()}
    return {"r": r, "m": m, "d": d, "without_bn_m": r["params_without_bn"] / 1e6}


def inconsistencies_markdown(
    t4: pd.DataFrame, table3_text: str | None, timm: Sequence[tuple[TimmRow, Any, Any]] = ()
) -> str:
    """Where Tables 4 and 3 disagree with their own sources, and why mbprof differs."""
    records = t4.to_dict(orient="records")
    rows = {r["model"] + f" {r['width']:g}": r for r in records}
    counts = [
        fill("inconsistencies", block, **_figures(rows[key]))
        for key, block in _EXPLAINED.items()
        if key in rows
    ]
    top1 = [
        fill("inconsistencies", "top1", r=r, top1=plan.top1_text(r["paper_top1"]))
        for r in records
        if r["other_top1"]
    ]
    timm_text = timm_flops_markdown(timm)
    values = {"problems": lines(f"- {p}" for p in table3_paper_problems()), "top1": lines(top1)}
    values["table3"] = f"\n{table3_text}\n" if table3_text else ""
    values["timm"] = f"\n{timm_text}" if timm_text else ""
    return fill("inconsistencies", "document", **values, counts=lines(counts))
