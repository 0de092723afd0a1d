"""Table 3 of the MobileNetV2 paper (the largest activation tensor per resolution, fp16,
224x224): its cells checked against their own channel counts, and beside mbprof's memory
analysis, with sentences for the cells that differ."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.frame.rows import is_missing
from mbprof.render.document import markdown_grid
from mbprof.report.folder import ReproduceResult, csv_text, write_file
from mbprof.report.plan import AS_DATA, leave_out, read_data, registered
from mbprof.report.text import fill, kilobytes

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.core.records import MemoryReport


def _rounding(printed_k: float, computed_k: float) -> bool:
    """Whether the paper's whole kilobytes (and its rounding to 2 digits: 10%) explain it."""
    return abs(printed_k - computed_k) <= max(1.0, 0.10 * computed_k)


def table3_paper_problems() -> list[str]:
    """The cells that disagree with their own channel count by more than rounding."""
    problems, largest = [], {}
    cells = read_data("paper_table3.csv")
    for cell in (c for c in cells if c["size"] != "max"):
        network, side, channels = cell["network"], int(cell["size"]), int(cell["channels"])
        printed = float(cell["kbytes"])
        largest[network] = max(largest.get(network, printed), printed)
        computed = channels * side * side * 2
        if not _rounding(printed, computed / 1000):
            values = {"network": network, "side": side, "channels": channels, "printed": printed}
            values |= {"computed": computed, "computed_k": computed / 1000}
            ratio = printed * 1000 / computed
            problems.append(fill("table3", "cell_problem", **values, ratio=ratio))
    for cell in (c for c in cells if c["size"] == "max"):
        printed, top = float(cell["kbytes"]), largest[cell["network"]]
        if not _rounding(printed, top):
            problems.append(fill("table3", "max_problem", **cell, printed=printed, top=top))
    return problems


_FOUND = ("channels", "tensor_bytes", "materialized_channels", "materialized_bytes", "op_bytes")


def _square(rows: Any) -> dict[int, Any]:
    return {r.resolution[0]: r for r in rows if r.resolution[0] == r.resolution[1]}


def table3_frame(
    left_out: list[str], memory_of: Callable[[str, float], MemoryReport]
) -> pd.DataFrame:
    """The paper's Table 3 beside mbprof's largest tensor per resolution, both modes."""
    import pandas as pd

    cells = read_data("paper_table3.csv")
    networks = list(dict.fromkeys((c["network"], c["model"], float(c["width"])) for c in cells))
    rows = []
    for network, model, width in networks:
        if not registered(model):
            leave_out(left_out, f"Table 3, {network}: {model} not registered in this mbprof")
            continue
        mem = memory_of(model, width)
        efficient, whole = _square(mem.resolutions_efficient), _square(mem.resolutions)
        for cell in (c for c in cells if c["network"] == network):
            row: dict[str, Any] = {
                "network": network,
                "model": model,
                "width": width,
                "size": cell["size"],
                "paper_channels": int(cell["channels"]) if cell["channels"] else None,
                "paper_kbytes": float(cell["kbytes"]),
            }
            if cell["size"] == "max":
                found = (None, mem.max_tensor_bytes_efficient, None, mem.max_tensor_bytes, None)
            else:
                eff, mat = efficient.get(int(cell["size"])), whole.get(int(cell["size"]))
                found = (getattr(eff, "channels", None), getattr(eff, "tensor_bytes", None),
                         getattr(mat, "channels", None), getattr(mat, "tensor_bytes", None),
                         getattr(mat, "op_bytes", None))  # fmt: skip
            row.update(zip(_FOUND, found, strict=True))
            if row["tensor_bytes"] is not None:
                row["delta_bytes"] = row["tensor_bytes"] - round(row["paper_kbytes"] * 1000)
            rows.append(row)
    frame = pd.DataFrame(rows)
    ints = "paper_channels channels materialized_channels tensor_bytes materialized_bytes op_bytes"
    ints = [key for key in (*ints.split(), "delta_bytes") if key in frame.columns]
    return frame.astype(dict.fromkeys(ints, "Int64"))


def table3_markdown(t3: pd.DataFrame) -> str:
    networks = list(dict.fromkeys(t3["network"]))
    sizes = list(dict.fromkeys(t3["size"]))
    headers = ["Size"]
    for network in networks:
        headers += [f"{network}: paper", "mbprof", "Δ"]
    rows = []
    for size in sizes:
        label = "max" if size == "max" else f"{size}x{size}"
        row = [label]
        for network in networks:
            match = t3[(t3["network"] == network) & (t3["size"] == size)]
            if match.empty:
                row += ["-", "-", "-"]
                continue
            r = match.iloc[0]
            paper = f"{r['paper_kbytes']:g}K"
            if not is_missing(r["paper_channels"]):
                paper = f"{int(r['paper_channels'])} / {paper}"
            ours = delta = "-"
            if not is_missing(r["tensor_bytes"]):
                ours = kilobytes(float(r["tensor_bytes"]))
                ours = ours if is_missing(r["channels"]) else f"{int(r['channels'])} / {ours}"
                paper_bytes = r["paper_kbytes"] * 1000
                diff = float(r["tensor_bytes"]) - paper_bytes
                delta = f"{diff / 1000:+,.1f}K ({100 * diff / paper_bytes:+.1f}%)"
            row += [paper, ours, delta]
        rows.append(row)
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


def _by_size(t3: pd.DataFrame, model: str) -> dict[str, dict[str, Any]]:
    return {str(r["size"]): r for r in t3.to_dict(orient="records") if r["model"] == model}


def table3_explained(t3: pd.DataFrame, g2: dict[int, Any] | None = None) -> str:
    """Sentences for the cells where mbprof and the paper differ by more than rounding."""
    cells = []
    for r in sorted(t3.to_dict(orient="records"), key=lambda r: r["size"] == "max"):
        if is_missing(r["tensor_bytes"]):
            continue
        paper_bytes, ours = r["paper_kbytes"] * 1000, float(r["tensor_bytes"])
        if abs(ours - paper_bytes) <= max(1000.0, 0.10 * paper_bytes):
            continue
        same = _by_size(t3, r["model"])
        if r["size"] == "max":
            where = [
                f"{q['size']}x{q['size']}"
                for q in same.values()
                if q["size"] != "max" and q["tensor_bytes"] == r["tensor_bytes"]
            ]
            where = fill("table3", "max_where", where=where[0]) if where else "."
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


def write_table3(
    root: Path, result: ReproduceResult, memory_of: Callable[[str, float], MemoryReport]
) -> str | None:
    """Table 3 beside mbprof's memory analysis; returns the inconsistencies page's part."""
    t3 = table3_frame(result.left_out, memory_of)
    if t3.empty:
        return None
    g2 = None
    if registered("shufflenet_v1_g2"):
        mem = memory_of("shufflenet_v1_g2", 2.0)
        g2 = {r.resolution[0]: (r.channels, r.tensor_bytes) for r in mem.resolutions_efficient}
    md, data = table3_markdown(t3), csv_text(t3)
    write_file(root, "table3.md", md, result, "Table 3 beside mbprof's memory analysis")
    write_file(root, "table3.csv", data, result, f"Table 3 {AS_DATA}")
    return table3_explained(t3, g2)
