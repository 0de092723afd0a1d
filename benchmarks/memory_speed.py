"""How long the activation memory analysis takes (not a test: timings depend on the machine).

    python benchmarks/memory_speed.py [--repeats 10]

Times ``mbprof.analysis.memory.analyze_memory`` on MobileNetV2 and MobileNetV1 at 224,
fp16, one channel per chunk: the first call in a fresh process (it also loads torch's meta
kernels) apart from the following ones (what each configuration of a sweep costs). The
model is built beforehand and is not timed. Prints the machine's load, since a shared
machine slows every figure.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    import torch

    from mbprof.analysis.memory import analyze_memory
    from mbprof.models import create_model

    load = os.getloadavg()
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} threads, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    for name in ("mobilenet_v2", "mobilenet_v1"):
        model = create_model(name)
        start = time.perf_counter()
        report = analyze_memory(model, (1, 3, 224, 224))
        first = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            analyze_memory(model, (1, 3, 224, 224))
            times.append(time.perf_counter() - start)
        print(
            f"{name} 1.0@224 fp16: first call {first * 1e3:.0f} ms, then median "
            f"{statistics.median(times) * 1e3:.0f} ms, min {min(times) * 1e3:.0f} ms over "
            f"{args.repeats} calls ({len(report.curve)} ops; peak {report.peak.live_bytes:,} B, "
            f"memory-efficient {report.peak_efficient.live_bytes:,} B)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
