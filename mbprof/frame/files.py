"""Frame files read back: the CSV and JSON that ``mbprof compare`` writes (results,
baselines, frames to plot)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mbprof.core.errors import MbprofError

if TYPE_CHECKING:
    import pandas as pd


def read_frame(path: str | Path) -> pd.DataFrame:
    """A frame written by mbprof: CSV, or the first table of a JSON document."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise MbprofError(f"{str(path)!r} does not exist")
    try:
        if path.suffix.lower() == ".json":
            payload = json.loads(path.read_text(encoding="utf-8"))
            tables = payload.get("tables") if isinstance(payload, dict) else None
            if not tables:
                raise MbprofError(f"{str(path)!r} is not an mbprof JSON result (no 'tables')")
            return pd.DataFrame(next(iter(tables.values())))
        return pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        if isinstance(exc, MbprofError):
            raise
        raise MbprofError(f"{str(path)!r} cannot be read as CSV or JSON: {exc}") from None
