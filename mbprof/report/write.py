"""The folder a run of ``reproduce`` writes, from what the API measured: each part's files,
staged and installed whole (``folder``), and the README index (``templates/readme.md``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mbprof.render.document import markdown_grid
from mbprof.report import folder, plan, tables
from mbprof.report.folder import ReproduceResult, csv_text
from mbprof.report.plan import AS_DATA, fill, kilobytes, lines, millions

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.core.records import MemoryReport


def write_report(
    result: ReproduceResult,
    parts: Sequence[str],
    frame: pd.DataFrame,
    *,
    memory_of: Callable[[str, float], MemoryReport],
    bn_params: Callable[[str, float], int],
    timm: Callable[[], Sequence[tables.TimmCounts]],
    phone: tuple[list[dict[str, Any]], Sequence[str]] | None = None,
    load_at_start: tuple[float, float] | None = None,
) -> None:
    """Write ``result.out`` from the measured ``frame`` (and the phone study's rows and the
    runtimes it missed), staged: a failure changes nothing. ``memory_of`` gives Table 3's
    memory (224x224, fp16), ``bn_params`` the batch-norm parameters TF-Slim's tables leave out,
    ``timm`` the counts for timm's index."""
    owned = plan.check_out(result.out, parts)  # again: a file may have been edited meanwhile
    with folder.staged(result.out, owned) as stage:

        def write(relative: str, text: str, what: str) -> None:
            folder.write_file(stage, relative, text, result, what)

        t4 = explained = None
        if "table4" in parts:
            t4 = tables.table4_frame(frame, bn_params)
            md = tables.table4_markdown(t4, environment_text(frame))
            write("table4.md", md, "Table 4 beside mbprof's counts")
            write("table4.csv", csv_text(t4), f"Table 4 {AS_DATA}")
        t3 = tables.table3_frame(result.left_out, memory_of) if "table3" in parts else None
        if t3 is not None and not t3.empty:
            write(
                "table3.md", tables.table3_markdown(t3), "Table 3 beside mbprof's memory analysis"
            )
            write("table3.csv", csv_text(t3), f"Table 3 {AS_DATA}")
            explained = tables.table3_explained(t3, tables.shufflenet_g2(memory_of))
        if {"sweep", "figures"} & set(parts):
            sweep = plan.rows_of(frame, plan.sweep_configs())
        if "sweep" in parts:
            what = "Every configuration of the width x resolution sweep and the baselines, "
            write(
                "sweep.csv",
                csv_text(sweep),
                what + "one row each (columns described in mbprof/columns.py)",
            )
        if "figures" in parts:
            from mbprof.report.figures import write_figures

            text = write_figures(sweep, stage, result)
            write("pareto.md", text, "The figures with the points on each frontier")
        if t4 is not None:
            text = tables.inconsistencies_markdown(t4, explained, timm())
            write(
                "inconsistencies.md",
                text,
                "Where the paper's tables disagree with themselves, and why mbprof differs",
            )
        if phone is not None:
            import pandas as pd

            from mbprof.report.figures import write_phone

            rows, missing = phone
            write_phone(stage, rows, result, environment_text(pd.DataFrame(rows)), missing)
        load = load_text(load_at_start)
        (stage / "README.md").write_text(readme_markdown(result, frame, t4, load), encoding="utf-8")
        result.files.insert(0, ("README.md", "This index"))


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


_LABELS = {
    "backend": "backend ",
    "batch": "batch ",
    "threads": "threads ",
    "torch_version": "torch ",
}


def environment_text(frame: pd.DataFrame) -> str:
    """Where latency was measured, from the frame's environment columns."""
    parts: list[str] = []
    for key in (
        "cpu_model",
        "device_name",
        "backend",
        "dtype",
        "batch",
        "threads",
        "torch_version",
    ):
        if key in frame.columns:
            # 1.0 as 1: a column with empty cells (a failed row) reads its integers as floats
            values = frame[key].dropna().map(_whole).astype(str).unique()
            text = f"{_LABELS.get(key, '')}{values[0]}" if len(values) == 1 and values[0] else ""
            if text and text not in parts:
                parts.append(text)
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
            [
                r["network"],
                *(pair(r[f"paper_{k}_m"], millions(r[k])) for k in ("madds", "params")),
            ]
            for r in t4.to_dict(orient="records")
        ]
        headers = ["Network", "MAdds: paper / mbprof", "Params: paper / mbprof"]
        table = markdown_grid(headers, rows, [False, True, True])
        sections.append(fill("readme", "table", table=table))
    v1, v2 = plan.v1_v2(frame)  # the paper's section 5.1 claim, in mbprof's figures
    if "peak_act_bytes_efficient" in frame.columns and v1 is not None and v2 is not None:
        a, b, c = v1["peak_act_bytes"], v2["peak_act_bytes"], v2["peak_act_bytes_efficient"]
        peaks = {"v1": kilobytes(a), "v2": kilobytes(b), "efficient": kilobytes(c)}
        sections.append(fill("readme", "peaks", **peaks, ratio=a / c))
    if any(plan.is_measured(c) and c.startswith("latency") for c in frame.columns):
        sections.append(fill("readme", "latency", environment=environment_text(frame), load=load))
    if result.findings:
        sections.append(fill("readme", "findings", findings=lines(result.findings)))
    if result.left_out:
        left_out = lines(f"- {item}" for item in result.left_out)
        sections.append(fill("readme", "left_out", left_out=left_out))
    files = [[f"[{p}]({p})", w] for p, w in result.files]
    files = markdown_grid(["File", "What it holds"], files, [False, False])
    return fill("readme", "document", versions=_versions(), files=files, sections="".join(sections))


def machine_load() -> tuple[float, float] | None:
    """The 1- and 5-minute load averages (None where the system has none)."""
    try:
        return os.getloadavg()[:2]
    except OSError:
        return None


def load_text(start: tuple[float, float] | None) -> str:
    """The machine's load from ``start`` to now: latency on a shared machine is slower."""
    end = machine_load()
    if start is None or end is None:
        return ""
    return fill("readme", "load", start=start[0], end=end[0], cores=os.cpu_count() or 1)
