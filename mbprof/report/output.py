"""What a run of ``reproduce`` wrote (``ReproduceResult``) and the writing of one of its
files into the staging folder (``mbprof.report.folder`` moves them into place)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class ReproduceResult:
    """What ``reproduce`` wrote and what it had to leave out."""

    out: Path
    files: list[tuple[str, str]] = field(default_factory=list)  # (relative path, what it holds)
    left_out: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # measured conclusions for the README


def write_file(root: Path, relative: str, text: str, result: ReproduceResult, what: str) -> None:
    """Write ``root/relative`` and list it in ``result`` as holding ``what``."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    result.files.append((relative, what))


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as the report's CSV files hold it: no index, one LF a line."""
    import io

    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()
