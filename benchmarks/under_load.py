"""Is every latency under a competing load either close to the quiet figure or marked
unstable?

For a few MobileNetV2 configurations (default 0.35@96, 1.0@96, 0.35@224, 1.0@224), this
script measures their latency the way a sweep does (``mbprof.api.sweep.interleaved_latency``:
interleaved round-robin rounds, outlier rounds measured again, a verdict on each figure)
twice: once on the machine as it is ("quiet"), then while busy processes compete for the
CPUs ("loaded"): ``--busy N`` processes spinning all the time (``--pattern steady``), or
spinning one second in three (``--pattern bursts``: a burst hits some rounds, not all).

A loaded figure passes when it is within ``--within`` (25%) of its quiet figure, or when
it is marked unstable (the mark says: do not trust this number). The script also reports
how the figures would have looked timed one configuration after another without the
verdict's reasons (``--serial``), for comparison. Exit status 1 when a loaded figure
is neither close nor marked.

    python benchmarks/under_load.py [--threads 2] [--busy 1] [--pattern steady] [--min-time 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = ((0.35, 96), (1.0, 96), (0.35, 224), (1.0, 224))


def spin(stop, pattern: str) -> None:
    """A busy process: spins (steady), or spins one second in three (bursts)."""
    while not stop.is_set():
        if pattern == "bursts" and int(time.time()) % 3:
            time.sleep(0.05)
            continue
        end = time.perf_counter() + 0.05
        while time.perf_counter() < end:
            pass


def measure(jobs, settings):
    from mbprof.api.sweep import interleaved_latency

    return interleaved_latency(jobs, settings)


def serial(jobs, settings):
    """Each configuration timed on its own, one after another (no rounds)."""
    from mbprof.analysis.latency.harness import time_model

    return [time_model(model, spec.input_shape(), settings, madds=madds) for spec, model, madds in jobs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--busy", type=int, default=1, help="competing busy processes")
    parser.add_argument("--pattern", choices=("steady", "bursts"), default="steady")
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--within", type=float, default=25.0, help="percent of the quiet figure")
    parser.add_argument("--serial", action="store_true", help="also time them one by one")
    args = parser.parse_args()

    import mbprof
    from mbprof.api import build_sized
    from mbprof.api.building import timing_ready

    settings = mbprof.make_latency_settings(
        device="cpu", threads=args.threads, min_time_s=args.min_time
    )
    jobs = []
    for width, res in CONFIGS:
        spec = mbprof.make_spec("mobilenet_v2", width=width, resolution=res)
        madds = mbprof.profile_spec(spec, with_memory=False).counts.madds
        jobs.append((spec, timing_ready(spec, build_sized(spec).model), madds))
    print(
        f"{len(jobs)} configurations, {args.threads} threads, {os.cpu_count()} logical CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; competing: {args.busy} busy process(es), "
        f"{args.pattern}"
    )
    quiet = measure(jobs, settings)
    quiet_serial = serial(jobs, settings) if args.serial else None
    stop = multiprocessing.Event()
    busy = [multiprocessing.Process(target=spin, args=(stop, args.pattern)) for _ in range(args.busy)]
    for process in busy:
        process.start()
    time.sleep(1.0)  # let the load settle
    try:
        loaded = measure(jobs, settings)
        loaded_serial = serial(jobs, settings) if args.serial else None
    finally:
        stop.set()
        for process in busy:
            process.join()

    print()
    header = f"{'configuration':24s} {'quiet ms':>9s} {'verdict':9s} {'loaded ms':>10s} {'verdict':9s} {'diff':>7s}  printed figure"
    print(header)
    ok = True
    for (spec, _, _), q, ld in zip(jobs, quiet, loaded, strict=True):
        diff = 100 * (ld["latency_ms"] - q["latency_ms"]) / q["latency_ms"]
        close = abs(diff) <= args.within
        marked = ld["latency_verdict"] == "unstable"
        good = close or marked
        ok &= good
        state = "close" if close else ("marked unstable" if marked else "WRONG and unmarked")
        print(
            f"{spec.label:24s} {q['latency_ms']:9.2f} {q['latency_verdict']:9s} "
            f"{ld['latency_ms']:10.2f} {ld['latency_verdict']:9s} {diff:+6.1f}%  {state}"
        )
        if marked:
            print(f"{'':24s} why: {ld['latency_reasons']}")
    if args.serial:
        print("\none by one, for comparison:")
        for (spec, _, _), q, ld in zip(jobs, quiet_serial, loaded_serial, strict=True):
            diff = 100 * (ld.latency_ms - q.latency_ms) / q.latency_ms
            print(f"{spec.label:24s} {q.latency_ms:9.2f} {q.verdict:9s} {ld.latency_ms:10.2f} {ld.verdict:9s} {diff:+6.1f}%")
    print(
        f"\n(every loaded figure within {args.within:g}% of the quiet one or marked unstable: "
        f"{'yes' if ok else 'NO'}; load average at the end {os.getloadavg()[0]:.2f})"
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
