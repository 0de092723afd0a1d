"""The report's prose: the README index and the page on where the paper's tables disagree
with themselves and why mbprof differs, with the sentences they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mbprof.render.document import markdown_grid
from mbprof.report.folder import ReproduceResult
from mbprof.report.plan import MARKER, config, find_row, is_measured
from mbprof.report.table3 import table3_paper_problems
from mbprof.report.text import delta, kilobytes, millions, top1_text
from mbprof.report.timm_flops import TimmCounts, timm_flops_markdown

if TYPE_CHECKING:
    import pandas as pd


def inconsistencies_markdown(
    t4: pd.DataFrame, table3_text: str | None, timm: Sequence[TimmCounts] = ()
) -> str:
    """Where Tables 4 and 3 disagree with their own sources, and why mbprof differs."""
    lines = [
        MARKER,
        "# Where the paper's tables disagree, and why mbprof differs",
        "",
        "## Table 4: parameters and MAdds",
        "",
    ]
    rows = {r["model"] + f" {r['width']:g}": r for r in t4.to_dict(orient="records")}

    def counted(r: dict[str, Any]) -> tuple[str, str]:
        with_bn = f"{r['params']:,} with batch norm, {r['params_without_bn']:,} without"
        return f"{r['madds']:,} MAdds ({millions(r['madds'])}", with_bn

    if (v1 := rows.get("mobilenet_v1 1")) is not None:
        madds, params = counted(v1)
        lines.append(
            f"- **MobileNetV1**: mbprof counts {madds}); the paper prints "
            f"{v1['paper_madds_m']:g}M. The MobileNetV1 paper and TF-Slim's checkpoint table give 569M for the same network, "
            "so 575M disagrees with the network's own sources, not only with mbprof. Params: "
            f"{params}; both round to the printed {v1['paper_params_m']:g}M."
        )
    if (v2 := rows.get("mobilenet_v2 1")) is not None:
        madds, params = counted(v2)
        lines.append(
            f"- **MobileNetV2 1.0**: {madds}, printed {v2['paper_madds_m']:g}M). Params: {params}; "
            f"the printed {v2['paper_params_m']:g}M is {millions(v2['params_without_bn'])} cut to "
            f"one decimal (rounding would give {v2['params_without_bn'] / 1e6:.1f}M)."
        )
    if (v14 := rows.get("mobilenet_v2 1.4")) is not None:
        madds, params = counted(v14)
        lines.append(
            f"- **MobileNetV2 1.4**: {madds}, printed {v14['paper_madds_m']:g}M, "
            f"{delta(v14['madds'] / 1e6, v14['paper_madds_m'])}). Params: {params}, against a "
            f"printed {v14['paper_params_m']:g}M "
            f"({delta(v14['params_without_bn'] / 1e6, v14['paper_params_m'])}). Every channel "
            "count follows make_divisible(c x 1.4) with the 1280 head widened to 1792, the layout "
            "whose 1.0 figures match the paper; no rounding rule we know brings 1.4 to 6.9M, "
            "which is also the upper end of the model sizes the paper's text gives for its "
            "whole sweep."
        )
    for key in ("shufflenet_v1_g3 1.5", "shufflenet_v1_g3 2", "nasnet_a_mobile 1"):
        r = rows.get(key)
        if r is None:
            continue
        lines.append(
            f"- **{r['network']}**: mbprof {millions(r['madds'])} MAdds against "
            f"{r['paper_madds_m']:g}M ({delta(r['madds'] / 1e6, r['paper_madds_m'])}), "
            f"{millions(r['params'])} params against {r['paper_params_m']:g}M "
            f"({delta(r['params'] / 1e6, r['paper_params_m'])})."
        )
    lines += [
        "",
        "## Table 4: top-1",
        "",
        "The paper's top-1 figures are those of its own training runs. The checkpoints released "
        "later (TF-Slim) and timm's retraining of the same architectures report other values; "
        "mbprof's `compare` uses the paper's for the paper's configurations and names the "
        "source in every row (`accuracy_source`):",
        "",
    ]
    for r in t4.to_dict(orient="records"):
        if r["other_top1"]:
            lines.append(
                f"- {r['network']}: paper {top1_text(r['paper_top1'])}; {r['other_top1']}."
            )
    lines += [
        "",
        "## Table 3: the paper's own arithmetic",
        "",
        "Each cell of Table 3 gives a channel count and a size in kilobytes for 16-bit "
        "activations, so each can be checked against itself: channels x side x side x 2 "
        "bytes. These cells disagree with their own channel count by more than rounding:",
        "",
    ]
    lines += [f"- {p}" for p in table3_paper_problems()]
    lines += [
        "",
        "The channel counts themselves follow a rule that differs from column to column: "
        "the MobileNetV1 column lists the largest tensor at each resolution; the MobileNetV2 "
        "column lists, from 56x56 down, the channel count of the next stage (32 at 56x56, 64 at "
        "28x28, 160 at 14x14), which lives at the next resolution; and the ShuffleNet "
        "(2x, g=3) column's 400/800/1600 are the stage widths of ShuffleNet 2x with g=2 "
        "(g=3 has 480/960/1920), with 32 channels at 112x112 where the reference code's 2x "
        "stem has 48.",
        "",
    ]
    if table3_text:
        lines += [table3_text, ""]
    lines += timm_flops_markdown(timm)
    return "\n".join(lines)


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
    lines = [
        MARKER,
        "# The MobileNetV2 paper, reproduced by mbprof",
        "",
        "Everything in this folder is the output of one command, run from the repository root:",
        "",
        "```bash",
        "mbprof reproduce --out reports/",
        "```",
        "",
        f"Counted with {_versions()}. The paper's values come from `mbprof/data/` "
        "(`paper_table4.csv`, `paper_table3.csv`, `accuracy.csv`, described beside them). "
        "Counts and memory figures regenerate exactly (a test checks the CSV files); latency "
        "is measured on the machine that ran the command and changes from run to run.",
        "",
        "## Files",
        "",
        markdown_grid(
            ["File", "What it holds"], [[f"[{p}]({p})", w] for p, w in result.files], [False, False]
        ),
        "",
    ]
    if t4 is not None and not t4.empty:
        pair = "{:g}M / {}".format
        rows = [
            [r["network"], *(pair(r[f"paper_{k}_m"], millions(r[k])) for k in ("madds", "params"))]
            for r in t4.to_dict(orient="records")
        ]
        headers = ["Network", "MAdds: paper / mbprof", "Params: paper / mbprof"]
        lines += ["## In one table", "", markdown_grid(headers, rows, [False, True, True]), ""]
    if peaks := _peak_sentence(frame):
        lines += ["## Activation memory in one sentence", "", peaks, ""]
    if any(is_measured(c) and c.startswith("latency") for c in frame.columns):
        lines += ["## Where latency was measured", "", f"{environment_text(frame)}. {load}", ""]
    if result.findings:
        lines += ["## What the measurements found", "", *result.findings, ""]
    if result.left_out:
        lines += [
            "## Left out of this run",
            "",
            "These parts need something this mbprof does not have; they appear when it does:",
            "",
            *(f"- {item}" for item in result.left_out),
            "",
        ]
    return "\n".join(lines)


def _peak_sentence(frame: pd.DataFrame) -> str:
    """MobileNetV1 against V2 at 1.0@224: the paper's section 5.1 claim, in mbprof's figures."""
    if "peak_act_bytes_efficient" not in frame.columns:
        return ""
    v1 = find_row(frame, config("mobilenet_v1", 1.0, 224))
    v2 = find_row(frame, config("mobilenet_v2", 1.0, 224))
    if v1 is None or v2 is None:
        return ""
    a, b, c = v1["peak_act_bytes"], v2["peak_act_bytes"], v2["peak_act_bytes_efficient"]
    return (
        f"At 1.0@224 in fp16, MobileNetV1's activations peak at {kilobytes(a)}B; MobileNetV2's at "
        f"{kilobytes(b)}B with every tensor whole and {kilobytes(c)}B when its blocks run the paper's "
        f"memory-efficient way ({a / c:.1f} times less than V1). KB = 1000 bytes; the input "
        "image is not counted; see `sweep.csv` for every configuration."
    )


def load_text(start: tuple[float, float] | None, end: tuple[float, float] | None) -> str:
    """The machine's load around the run: latency on a shared machine is slower."""
    import os

    if start is None or end is None:
        return ""
    cores = os.cpu_count() or 1
    return (
        f"Load average (1 min) {start[0]:.2f} when the run started and {end[0]:.2f} when it "
        f"ended, this run included, on {cores} cores; a load above the core count means "
        "other jobs shared the CPU and the latencies are slower than on a quiet machine."
    )
