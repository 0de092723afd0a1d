"""A sweep's stability columns, which `mbprof compare` keeps in its CSV and JSON (the
terminal table shows the verdict only): runs ``mbprof compare ... --csv FILE`` with the
arguments given and prints those columns as a Markdown table (docs/latency.md).

    python tools/compare_stability.py --widths 0.35,1.0 --res 96,224 --threads 2
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

COLUMNS = {
    "model": "Model",
    "width": "Width",
    "resolution": "Res",
    "latency_ms": "Latency (ms)",
    "latency_p10_ms": "p10",
    "latency_p90_ms": "p90",
    "latency_spread_pct": "Spread (%)",
    "runs": "Runs",
    "rounds": "Rounds",
    "other_cpus": "Other CPUs busy",
    "latency_verdict": "Timing",
    "latency_reasons": "Why",
}


def _cell(key: str, value: str) -> str:
    if key.endswith("_ms") or key in ("latency_spread_pct", "other_cpus"):
        return f"{float(value):.2f}" if value else "-"
    return value.replace("|", "\\|") or "-"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sweep.csv"
        command = [sys.executable, "-m", "mbprof", "compare", *sys.argv[1:], "--csv", str(path)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    print("| " + " | ".join(COLUMNS.values()) + " |")
    print("| " + " | ".join("---" for _ in COLUMNS) + " |")
    for row in rows:
        print("| " + " | ".join(_cell(k, row.get(k, "")) for k in COLUMNS) + " |")


if __name__ == "__main__":
    main()
