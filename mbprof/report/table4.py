"""Table 4 of the MobileNetV2 paper (top-1, params, MAdds, phone latency) beside mbprof's
counts and the CPU latency here, as data (``table4.csv``) and Markdown (``table4.md``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mbprof.frame.rows import cell, is_missing
from mbprof.render.document import markdown_grid
from mbprof.report.folder import ReproduceResult, csv_text, write_file
from mbprof.report.plan import AS_DATA, config, find_row, read_data
from mbprof.report.text import delta, fill, millions, top1_text

if TYPE_CHECKING:
    import pandas as pd

LATENCY_KEYS = ("latency_ms", "latency_p10_ms", "latency_p90_ms", "throughput_ips")


def table4_frame(frame: pd.DataFrame, bn_params: Callable[[str, float], int]) -> pd.DataFrame:
    """The paper's Table 4 rows that ``frame`` measured, beside mbprof's counts."""
    import pandas as pd

    from mbprof.frame import accuracy

    rows = []
    for paper in read_data("paper_table4.csv"):
        spec = config(paper["model"], paper["width"], paper["resolution"])
        ours = find_row(frame, spec)
        if ours is None:
            continue
        others = [
            f"{top1_text(e.top1)} ({e.source})"
            for e in accuracy.shipped().all_sources(spec.model, spec.width, 1.0, 224)
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
        for key in LATENCY_KEYS:
            if cell(ours, key) is not None:
                row[key] = float(ours[key])
        rows.append(row)
    return pd.DataFrame(rows)


def table4_markdown(t4: pd.DataFrame, env: str) -> str:
    """Table 4 as Markdown; ``env`` says where the CPU column was measured."""
    has_latency = "latency_ms" in t4.columns
    headers = fill("table4", "headers").split("|")[: None if has_latency else -1]
    records = t4.to_dict(orient="records")
    rows = []
    for r in records:
        row = [r["network"], top1_text(r["paper_top1"])]
        for key in ("params", "madds"):  # the paper's, mbprof's, the difference
            paper = r[f"paper_{key}_m"]
            row += [f"{paper:g}M", f"{millions(r[key])} ({r[key]:,})", delta(r[key] / 1e6, paper)]
        row.append("-" if is_missing(r["paper_phone_ms"]) else f"{r['paper_phone_ms']:g}")
        if has_latency:
            row.append("-" if is_missing(r.get("latency_ms")) else f"{r['latency_ms']:.1f}")
        rows.append(row)
    return fill(
        "table4",
        "document",
        table=markdown_grid(headers, rows, [False] + [True] * (len(headers) - 1)),
        others="; ".join(f"{r['network']}: {r['other_top1']}" for r in records if r["other_top1"]),
        without_bn=", ".join(f"{r['network']} {millions(r['params_without_bn'])}" for r in records),
        cpu_here=fill("table4", "cpu_here", environment=env) + "\n" if has_latency else "",
    )


def write_table4(
    root: Path,
    frame: pd.DataFrame,
    env: str,
    result: ReproduceResult,
    bn_params: Callable[[str, float], int],
) -> pd.DataFrame:
    """``table4.md`` and ``table4.csv`` under ``root``; returns the table."""
    t4 = table4_frame(frame, bn_params)
    md, data = table4_markdown(t4, env), csv_text(t4)
    write_file(root, "table4.md", md, result, "Table 4 beside mbprof's counts")
    write_file(root, "table4.csv", data, result, f"Table 4 {AS_DATA}")
    return t4
