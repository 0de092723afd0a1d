"""How fast a large sweep runs: cold with one worker, cold with every core, and warm (every
row read back from the result cache).

The sweep: MobileNetV2 at widths 0.25:1.5:0.05 and resolutions 96:224:16 (26 x 9 = 234
configurations), counts and memory (fp16, one channel a chunk), no latency, in an order
shuffled with a fixed seed so that any prefix of it is a fair sample of the whole. Each run
goes through ``mbprof.api.prepare_compare`` in this process, as ``mbprof compare`` does:

  cold, 1 worker     workers=1 (this process; torch already imported), an empty cache
  cold, N workers    workers=N (loky worker processes, their start included), an empty cache
  warm               the N-worker run's cache read back (no model built)

and small sweeps as a user runs them, whole `mbprof compare --no-latency` processes with no
result cache (2, 4, 8 (the mission's), 12 and 24 configurations), with 1 worker and with N
(median of 3 each): the sweep's process analyses beside its workers, so that a small sweep
is never slower with them.

Reported: configurations per second of each run and the ratios; how the time grows with
the configurations done (at 50, 100, 150 and 200: linear if the time per configuration
stays flat); and a whole process, `mbprof compare --no-latency` of the mission's eight
configurations, repeated warm (median of 5, byte-identical CSV checked).

    python benchmarks/sweep_scale.py [--workers N] [--configs 234]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mbprof.api import make_specs, prepare_compare  # noqa: E402
from mbprof.api.executors import available_cores  # noqa: E402
from mbprof.core.parsing import parse_float_list, parse_resolution_list  # noqa: E402

MARKS = (50, 100, 150, 200)
MISSION = ["--widths", "0.35,0.5,1.0,1.4", "--res", "96,224"]
SIX = "0.35,0.5,0.75,1.0,1.3,1.4"
SMALL = {  # configurations: compare's options
    2: ["--widths", "0.5,1.0", "--res", "224"],
    4: ["--widths", "0.35,0.5,1.0,1.4", "--res", "224"],
    8: MISSION,
    12: ["--widths", SIX, "--res", "96,224"],
    24: ["--widths", SIX, "--res", "96,128,160,224"],
}


def sweep(specs, workers: int, folder: Path) -> tuple[float, dict[int, float], list[dict]]:
    """Seconds for the whole sweep, seconds at each of MARKS rows, and the rows."""
    started = time.perf_counter()
    run = prepare_compare(specs, workers=workers, cache=folder, accuracy=False)
    rows, marks = [], {}
    for row in run.rows():
        rows.append(row)
        if len(rows) in MARKS:
            marks[len(rows)] = time.perf_counter() - started
    assert not any(row.get("error") for row in rows), [r["error"] for r in rows if "error" in r]
    return time.perf_counter() - started, marks, rows


def whole_process(folder: Path) -> tuple[float, bool]:
    """Median wall time of 5 warm `mbprof compare` processes, and whether their CSV is
    byte-identical to the cold one."""
    env = {**os.environ, "MBPROF_CACHE_DIR": str(folder)}
    env.pop("MBPROF_NO_CACHE", None)
    command = [sys.executable, "-m", "mbprof", "compare", "--no-latency", *MISSION, "-f", "csv"]
    cold = subprocess.run(command, env=env, capture_output=True, check=True).stdout
    times, same = [], True
    for _ in range(5):
        started = time.perf_counter()
        warm = subprocess.run(command, env=env, capture_output=True, check=True).stdout
        times.append(time.perf_counter() - started)
        same = same and warm == cold
    return statistics.median(times), same


def small_sweeps(workers: int) -> None:
    """Whole cold processes, 1 worker against ``workers`` (median of 3, alternated)."""
    env = {**os.environ, "MBPROF_NO_CACHE": "1"}
    for count, options in SMALL.items():
        command = [sys.executable, "-m", "mbprof", "compare", "--no-latency", *options]
        times: dict[int, list[float]] = {1: [], workers: []}
        for _ in range(3):
            for n in times:
                started = time.perf_counter()
                subprocess.run(
                    [*command, "--workers", str(n)], env=env, capture_output=True, check=True
                )
                times[n].append(time.perf_counter() - started)
        one, many = statistics.median(times[1]), statistics.median(times[workers])
        print(
            f"{count:3d} configurations, whole process, cold: 1 worker {one:5.2f} s, "
            f"{workers} workers {many:5.2f} s ({one / many:.2f}x)"
        )


def growth(marks: dict[int, float]) -> str:
    base = marks[MARKS[0]] / MARKS[0]
    return ", ".join(f"{n}: {t:.1f} s ({t / n / base:.2f}x per config)" for n, t in marks.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=available_cores())
    parser.add_argument("--configs", type=int, default=234)
    args = parser.parse_args()
    specs = make_specs(
        "mobilenet_v2",
        parse_float_list("0.25:1.5:0.05", "--widths"),
        resolutions=parse_resolution_list("96:224:16"),
    )
    random.Random(13).shuffle(specs)
    specs = specs[: args.configs]
    print(f"{len(specs)} MobileNetV2 configurations, counts and memory; load {os.getloadavg()}")
    list(prepare_compare(specs[:1], accuracy=False).rows())  # torch imported, first call made

    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
        serial, serial_marks, serial_rows = sweep(specs, 1, Path(one))
        print(f"cold, 1 worker:  {serial:7.1f} s  {len(specs) / serial:8.2f} configs/s")
        print(f"  growth: {growth(serial_marks)}")
        pooled, pooled_marks, pooled_rows = sweep(specs, args.workers, Path(many))
        print(
            f"cold, {args.workers} workers: {pooled:7.1f} s  {len(specs) / pooled:8.2f} configs/s"
            f"  ({serial / pooled:.2f}x one worker)"
        )
        print(f"  growth: {growth(pooled_marks)}")
        warm, _, warm_rows = sweep(specs, args.workers, Path(many))
        print(
            f"warm:            {warm:7.3f} s  {len(specs) / warm:8.0f} configs/s"
            f"  ({serial / warm:.0f}x one worker cold)"
        )
        assert serial_rows == pooled_rows == warm_rows, "the runs disagree"
        print("the three runs give the same rows")
        seconds, same = whole_process(Path(many))
        print(
            f"mbprof compare --no-latency {' '.join(MISSION)}, warm, whole process: "
            f"{seconds:.2f} s (median of 5), CSV byte-identical: {same}; load {os.getloadavg()}"
        )
    small_sweeps(args.workers)
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
