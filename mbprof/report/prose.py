"""The report's prose: the README index and the page on where the paper's tables disagree
with themselves and why mbprof differs (``templates/readme.md``, ``inconsistencies.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mbprof.render.document import markdown_grid
from mbprof.report.folder import ReproduceResult
from mbprof.report.plan import config, find_row, is_measured
from mbprof.report.table3 import table3_paper_problems
from mbprof.report.text import delta, fill, kilobytes, lines, millions, top1_text
from mbprof.report.timm_flops import TimmCounts, timm_flops_markdown

if TYPE_CHECKING:
    import pandas as pd

# Table 4's rows in the order the page explains them, each with its template.
_EXPLAINED = {
    "mobilenet_v1 1": "mobilenet_v1",
    "mobilenet_v2 1": "mobilenet_v2",
    "mobilenet_v2 1.4": "mobilenet_v2_14",
    "shufflenet_v1_g3 1.5": "baseline",
    "shufflenet_v1_g3 2": "baseline",
    "nasnet_a_mobile 1": "baseline",
}


def _figures(r: dict[str, Any]) -> dict[str, Any]:
    """A Table 4 row with its counts in millions (``m``) and less the paper's (``d``)."""
    paper = {"madds": r["paper_madds_m"], "params": r["paper_params_m"]}
    paper["params_without_bn"] = r["paper_params_m"]
    m = {key: millions(r[key]) for key in paper}
    d = {key: delta(r[key] / 1e6, value) for key, value in paper.items()}
    return {"r": r, "m": m, "d": d, "without_bn_m": r["params_without_bn"] / 1e6}


def inconsistencies_markdown(
    t4: pd.DataFrame, table3_text: str | None, timm: Sequence[TimmCounts] = ()
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
        fill("inconsistencies", "top1", r=r, top1=top1_text(r["paper_top1"]))
        for r in records
        if r["other_top1"]
    ]
    timm_text = timm_flops_markdown(timm)
    return fill(
        "inconsistencies",
        "document",
        counts=lines(counts),
        top1=lines(top1),
        problems=lines(f"- {p}" for p in table3_paper_problems()),
        table3=f"\n{table3_text}\n" if table3_text else "",
        timm=f"\n{timm_text}" if timm_text else "",
    )


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def environment_text(frame: pd.DataFrame) -> str:
    """Where latency was measured, from the frame's environment columns."""
    parts: list[str] = []
    for key, label in (
        ("cpu_model", ""),
        ("device_name", ""),
        ("backend", "backend "),
        ("dtype", ""),
        ("batch", "batch "),
        ("threads", "threads "),
        ("torch_version", "torch "),
    ):
        if key in frame.columns:
            # 1.0 as 1: a column with empty cells (a failed row) reads its integers as floats
            values = frame[key].dropna().map(_whole).astype(str).unique()
            if len(values) == 1 and values[0] and f"{label}{values[0]}" not in parts:
                parts.append(f"{label}{values[0]}")
    return ", ".join(parts) or "this machine"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from mbprof import __version__

    found = [f"mbprof {__version__}"]
    for package in ("torch", "fvcore"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def readme_markdown(
    result: ReproduceResult, frame: pd.DataFrame, t4: pd.DataFrame | None, load: str
) -> str:
    """The README: how the folder was made, its files, headline figures, what was left out."""
    sections = []
    if t4 is not None and not t4.empty:
        pair = "{:g}M / {}".format
        rows = [
            [r["network"], *(pair(r[f"paper_{k}_m"], millions(r[k])) for k in ("madds", "params"))]
            for r in t4.to_dict(orient="records")
        ]
        headers = ["Network", "MAdds: paper / mbprof", "Params: paper / mbprof"]
        table = markdown_grid(headers, rows, [False, True, True])
        sections.append(fill("readme", "table", table=table))
    if peaks := _peaks(frame):
        sections.append(fill("readme", "peaks", **peaks))
    if any(is_measured(c) and c.startswith("latency") for c in frame.columns):
        sections.append(fill("readme", "latency", environment=environment_text(frame), load=load))
    if result.findings:
        sections.append(fill("readme", "findings", findings=lines(result.findings)))
    if result.left_out:
        left_out = lines(f"- {item}" for item in result.left_out)
        sections.append(fill("readme", "left_out", left_out=left_out))
    files = [[f"[{p}]({p})", w] for p, w in result.files]
    files = markdown_grid(["File", "What it holds"], files, [False, False])
    return fill("readme", "document", versions=_versions(), files=files, sections="".join(sections))


def _peaks(frame: pd.DataFrame) -> dict[str, Any] | None:
    """MobileNetV1 against V2 at 1.0@224: the paper's section 5.1 claim, in mbprof's figures."""
    if "peak_act_bytes_efficient" not in frame.columns:
        return None
    v1 = find_row(frame, config("mobilenet_v1", 1.0, 224))
    v2 = find_row(frame, config("mobilenet_v2", 1.0, 224))
    if v1 is None or v2 is None:
        return None
    a, b, c = v1["peak_act_bytes"], v2["peak_act_bytes"], v2["peak_act_bytes_efficient"]
    return {"v1": kilobytes(a), "v2": kilobytes(b), "efficient": kilobytes(c), "ratio": a / c}


def load_text(start: tuple[float, float] | None, end: tuple[float, float] | None) -> str:
    """The machine's load around the run: latency on a shared machine is slower."""
    import os

    if start is None or end is None:
        return ""
    return fill("readme", "load", start=start[0], end=end[0], cores=os.cpu_count() or 1)
