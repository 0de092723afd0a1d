"""The memory analysis of a configuration against its counting, side by side.

    python benchmarks/memory_speed.py [--rounds 5]   (--repeats N: the same)

For the issue's eight MobileNetV2 configurations (widths 0.35, 0.5, 1.0, 1.4 at 96 and
224) and MobileNetV1 1.0@224, one thread, each model built beforehand (not timed), three
ways in one process, in a rotating order each round:

  counting         mbprof.analysis.counting.count(model, shape): fvcore's trace and the rows
  memory           mbprof.analysis.memory.analyze(model, shape): its own meta-device trace,
                   three schedules, the report (fp16, one channel a chunk)
  memory, shared   analyze(model, shape, graph=trace): what ``mbprof.profile`` adds for the
                   memory analysis, the trace being the one that sized the activations

Times are the process's CPU time (one thread: the work, which other processes on a shared
machine do not stretch as they stretch wall time), medians over rounds of the nine
configurations' total. The issue's target: memory within 0.3x of counting (PASS or FAIL).
The first analysis in a fresh process (first-use imports and caches) is printed apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = [("mobilenet_v2", w, r) for w in (0.35, 0.5, 1.0, 1.4) for r in (96, 224)]
CONFIGS.append(("mobilenet_v1", 1.0, 224))
TARGET = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # --repeats: its name before (main's tools/measure.py runs it so)
    parser.add_argument("--rounds", "--repeats", dest="rounds", type=int, default=5)
    args = parser.parse_args()

    import torch

    from mbprof.analysis.counting import count
    from mbprof.analysis.memory import analyze
    from mbprof.analysis.memory.trace import trace
    from mbprof.models import create_model

    torch.set_num_threads(1)
    load = os.getloadavg()
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, 1 thread, load average before {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}"
    )
    models = {c: create_model(c[0], width=c[1]).eval() for c in CONFIGS}
    shapes = {c: (1, 3, c[2], c[2]) for c in CONFIGS}
    first = CONFIGS[-1]
    start = time.process_time()
    report = analyze(models[first], shapes[first]).report
    print(
        f"first analysis in this process ({first[0]} {first[1]}@{first[2]}): "
        f"{(time.process_time() - start) * 1e3:.0f} ms ({len(report.curve)} ops; peak "
        f"{report.peak.live_bytes:,} B, memory-efficient {report.peak_efficient.live_bytes:,} B)"
    )
    graphs = {c: trace(models[c], shapes[c]) for c in CONFIGS}
    ways = {
        "counting": lambda c: count(models[c], shapes[c]),
        "memory": lambda c: analyze(models[c], shapes[c]),
        "memory, shared": lambda c: analyze(models[c], shapes[c], graph=graphs[c]),
    }
    for way in ways.values():
        way(CONFIGS[0])
    names = list(ways)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            started = time.process_time()
            for config in CONFIGS:
                ways[name](config)
            seconds[name].append(time.process_time() - started)
        print(f"round {round_ + 1}: load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    med = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"{len(CONFIGS)} configurations, median of {args.rounds} rounds (CPU time)")
    for name in names:
        share = med[name] / med["counting"]
        print(f"  {name:16} {med[name]:6.2f} s  {share:5.2f}x counting")
    for name in ("memory", "memory, shared"):
        ratio = med[name] / med["counting"]
        verdict = "PASS" if ratio <= TARGET else "FAIL"
        print(f"{verdict}: {name} {ratio:.2f}x counting (target <= {TARGET}x)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
