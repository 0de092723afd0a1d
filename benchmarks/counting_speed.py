"""Where the time of counting goes: mbprof against the engine underneath, side by side.

For the issue's eight MobileNetV2 configurations (widths 0.35, 0.5, 1.0, 1.4 at 96 and
224), one intra-op thread, construction included, four ways in one process:

  bare fvcore        create_model + FlopCountAnalysis(model, x).total() and the parameter
                     sum: the few lines a user would write
  counting.count     create_model + mbprof.analysis.counting.count (per-layer rows, output
                     sizes, params_used, fvcore's other figures)
  profile, no mem    mbprof.profile(..., with_memory=False): inputs checked, the model built
                     once with its parameters and activations sized, counted, FLOPs
  profile, memory    mbprof.profile(...): the same and the activation memory analysis

Each round runs the four ways in a rotating order, so that a shared machine's load hits
all alike. Each way's time is the process's CPU time (one thread: the work done, which a
busy machine's other processes do not stretch as they stretch wall time; wall time is
printed beside it); reported are the medians over rounds of the eight configurations'
total, each way's ratio to bare fvcore, and the memory analysis's cost (profile with memory
less profile without) as a share of counting. The issue's targets, PASS or FAIL each:
counting within 1.2x of bare fvcore (``counting.count`` and ``profile`` without memory),
memory within 0.3x of counting.

    python benchmarks/counting_speed.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis  # noqa: E402

import mbprof  # noqa: E402
from mbprof.analysis.counting import count  # noqa: E402
from mbprof.models import create_model  # noqa: E402

CONFIGS = [(w, r) for w in (0.35, 0.5, 1.0, 1.4) for r in (96, 224)]
COUNTING_TARGET, MEMORY_TARGET = 1.2, 0.3


def bare(width: float, res: int) -> int:
    model = create_model("mobilenet_v2", width=width)
    analysis = FlopCountAnalysis(model, torch.randn(1, 3, res, res))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.total()
    sum(p.numel() for p in model.parameters())
    # the conv and fully connected part of what the trace counted (no second trace): MAdds
    return sum(n for op, n in analysis.by_operator().items() if op in ("conv", "linear"))


def counted(width: float, res: int) -> int:
    return count(create_model("mobilenet_v2", width=width), (1, 3, res, res)).madds


def profiled(width: float, res: int) -> int:
    return mbprof.profile("mobilenet_v2", width, resolution=res, with_memory=False).counts.madds


def profiled_memory(width: float, res: int) -> int:
    return mbprof.profile("mobilenet_v2", width, resolution=res).counts.madds


WAYS = {
    "bare fvcore": bare,
    "counting.count": counted,
    "profile, no memory": profiled,
    "profile, memory": profiled_memory,
}


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for way in WAYS.values():  # first calls (imports, caches) out of the timing
        way(0.35, 96)
    for width, res in CONFIGS:  # the four ways count alike, or the comparison means nothing
        assert len({way(width, res) for way in WAYS.values()}) == 1, (width, res)
    names = list(WAYS)
    cpu: dict[str, list[float]] = {name: [] for name in names}
    wall: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            started, started_cpu = time.perf_counter(), time.process_time()
            for width, res in CONFIGS:
                WAYS[name](width, res)
            cpu[name].append(time.process_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
        print(f"round {round_ + 1}: load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    med = {name: statistics.median(values) for name, values in cpu.items()}
    med_wall = {name: statistics.median(values) for name, values in wall.items()}
    base, base_wall = med["bare fvcore"], med_wall["bare fvcore"]
    print(
        f"{len(CONFIGS)} MobileNetV2 configurations, 1 thread, median of {args.rounds} rounds "
        "(CPU time; wall time beside it)"
    )
    for name in names:
        print(
            f"  {name:20} {med[name]:6.2f} s  {med[name] / base:5.2f}x bare fvcore   "
            f"(wall {med_wall[name]:6.2f} s  {med_wall[name] / base_wall:5.2f}x)"
        )
    memory = med["profile, memory"] - med["profile, no memory"]
    counting = med["profile, no memory"]
    print(f"  memory analysis      {memory:6.2f} s  {memory / counting:5.2f}x counting")
    for name in ("counting.count", "profile, no memory"):
        ratio = med[name] / base
        print(
            f"{verdict(ratio, COUNTING_TARGET)}: {name} {ratio:.2f}x bare fvcore "
            f"(target <= {COUNTING_TARGET}x)"
        )
    ratio = memory / counting
    print(
        f"{verdict(ratio, MEMORY_TARGET)}: memory analysis {ratio:.2f}x counting "
        f"(target <= {MEMORY_TARGET}x)"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
