"""What a run of ``reproduce`` covers, decided before anything is measured: its parts and
configurations, the figures, the files it may write (and the folder check), and the paper's
own values (``mbprof/data``). Torch-free."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec
from mbprof.frame.columns import ENVIRONMENT_COLUMNS, LATENCY_FIGURES
from mbprof.frame.rows import row_measures
from mbprof.report.text import MARKER

if TYPE_CHECKING:
    import pandas as pd

DATA = Path(__file__).parent.parent / "data"
AS_DATA = "as data (paper_* columns are the paper's)"
PARTS = ("table4", "table3", "sweep", "figures", "phone")

# The width x resolution grids of the released checkpoints (TF-Slim's tables), and the
# baselines of the paper's Table 4 and of the model zoo at 224.
GRIDS: tuple[tuple[str, tuple[float, ...], tuple[int, ...]], ...] = (
    ("mobilenet_v2", (0.35, 0.5, 0.75, 1.0, 1.3, 1.4), (96, 128, 160, 192, 224)),
    ("mobilenet_v1", (0.25, 0.5, 0.75, 1.0), (128, 160, 192, 224)),
    ("shufflenet_v1_g3", (0.5, 1.0, 1.5, 2.0), (224,)),
    ("nasnet_a_mobile", (1.0,), (224,)),
    ("mobilenet_v3_large", (0.75, 1.0), (224,)),
    ("mobilenet_v3_small", (0.75, 1.0), (224,)),
)

# Columns whose values depend on the machine and the moment (latency and its environment,
# mbprof.frame.columns); everything else in the CSV files is counted and must regenerate exactly.
MEASURED_COLUMNS = frozenset({*LATENCY_FIGURES, *ENVIRONMENT_COLUMNS, "error"})


def is_measured(column: str) -> bool:
    """True for a column that a fresh run may change (latency and its environment)."""
    return column in MEASURED_COLUMNS or column.startswith("latency_")


@dataclass(frozen=True)
class FigureSpec:
    stem: str
    x: str
    y: str
    title: str
    log_x: bool = True
    log_y: bool = False
    only_224: bool = False  # parameters do not change with resolution: one point each


_TOP1 = "ImageNet top-1 against"
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("top1_vs_madds", "madds", "top1", f"{_TOP1} MAdds"),
    FigureSpec("top1_vs_params", "params", "top1", f"{_TOP1} parameters, 224x224",
               log_x=False, only_224=True),
    FigureSpec("top1_vs_peak_memory", "peak_act_bytes_efficient", "top1",
               f"{_TOP1} peak activation memory (memory-efficient inference)"),
    FigureSpec("top1_vs_latency", "latency_ms", "top1", f"{_TOP1} CPU latency"),
    FigureSpec("top1_vs_throughput", "throughput_ips", "top1", f"{_TOP1} CPU throughput"),
    FigureSpec("latency_vs_madds", "madds", "latency_ms", "CPU latency against MAdds", log_y=True),
)  # fmt: skip


def read_data(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def registered(model: str) -> bool:
    from mbprof.models import list_models

    return model in list_models()


def config(model: str, width: float | str, resolution: int | str) -> ModelSpec:
    """A configuration of the paper or of a grid: depth 1, a square input, 1000 classes."""
    return ModelSpec(model=model, width=float(width), resolution=(int(resolution),) * 2)


def sweep_configs() -> list[ModelSpec]:
    return [config(m, w, r) for m, widths, res in GRIDS for w in widths for r in res]


def check_parts(parts: Sequence[str]) -> tuple[str, ...]:
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise MbprofError(f"parts: {unknown[0]!r} is not one of {', '.join(PARTS)}", field="parts")
    return tuple(parts)


def wanted_configs(parts: Sequence[str]) -> list[ModelSpec]:
    """The configurations ``parts`` need: the sweep's, then Table 4's that are not in it."""
    wanted: list[ModelSpec] = []
    if "sweep" in parts or "figures" in parts:
        wanted += sweep_configs()
    if "table4" in parts:
        wanted += [
            config(r["model"], r["width"], r["resolution"]) for r in read_data("paper_table4.csv")
        ]
    return list(dict.fromkeys(wanted))


def leave_out(left_out: list[str], line: str) -> None:
    """Add ``line`` to what a run leaves out, once."""
    if line not in left_out:
        left_out.append(line)


def find_row(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, Any] | None:
    """The first row of ``frame`` that measured ``spec`` (None when none did)."""
    for row in frame.to_dict(orient="records"):
        if row_measures(row, spec):
            return row
    return None


def rows_of(frame: pd.DataFrame, specs: Sequence[ModelSpec]) -> pd.DataFrame:
    """The rows of ``frame`` that measured one of ``specs``."""
    records = frame.to_dict(orient="records")
    return frame[[any(row_measures(row, spec) for spec in specs) for row in records]]


def planned_files(parts: Sequence[str] = PARTS) -> set[str]:
    """Every file (relative to ``out``) a run of ``parts`` may write."""
    files = {
        "table4": ("table4.md", "table4.csv", "inconsistencies.md"),
        "table3": ("table3.md", "table3.csv"),
        "sweep": ("sweep.csv",),
        "figures": ("pareto.md", *(f"figures/{spec.stem}.png" for spec in FIGURES)),
        "phone": ("phone.md", "phone.csv", "figures/phone_latency.png"),
    }
    return {"README.md", *(name for part in parts for name in files.get(part, ()))}


def _written_before_manifests(out: Path) -> bool:
    """A folder from an mbprof that kept no manifest: its README carries the marker."""
    readme = out / "README.md"
    return readme.is_file() and MARKER in readme.read_text(encoding="utf-8", errors="ignore")


def check_out(out: str | Path, parts: Sequence[str] = PARTS) -> dict[str, list[str] | None]:
    """Refuse, before any measuring, a folder this run cannot write without losing a file."""
    from mbprof.report.folder import check_folder

    legacy = _written_before_manifests
    return check_folder(Path(out), planned_files(parts), planned_files(), legacy=legacy)
