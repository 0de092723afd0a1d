"""Where the time of counting goes: mbprof against the engine underneath, side by side.

For the mission's eight MobileNetV2 configurations (widths 0.35, 0.5, 1.0, 1.4 at 96 and
224), one intra-op thread, construction included, four ways in one process:

  bare fvcore        create_model + FlopCountAnalysis(model, x).total() and the parameter
                     sum: the few lines a user would write
  counting.count     create_model + mbprof.analysis.counting.count (per-layer rows, the
                     output-size hooks, fvcore's other figures)
  profile, no mem    mbprof.profile(..., with_memory=False): inputs checked, the model sized
                     on the meta device and built once for real, then counted
  profile, memory    mbprof.profile(...): the same and the activation memory analysis

Each round runs the four ways in a rotating order, so that a shared machine's load hits
all alike; reported are the medians over rounds of the eight configurations' total, each
way's ratio to bare fvcore, and the memory analysis's cost as a share of counting. The
issue's targets: counting within 1.2x of bare fvcore, memory within 0.3x of counting.

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


def bare(width: float, res: int) -> int:
    model = create_model("mobilenet_v2", width=width)
    analysis = FlopCountAnalysis(model, torch.randn(1, 3, res, res))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    total = analysis.total()
    sum(p.numel() for p in model.parameters())
    return total


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for way in WAYS.values():  # first calls (imports, caches) out of the timing
        way(0.35, 96)
    names = list(WAYS)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            started = time.perf_counter()
            for width, res in CONFIGS:
                WAYS[name](width, res)
            seconds[name].append(time.perf_counter() - started)
        print(f"round {round_ + 1}: load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    base = medians["bare fvcore"]
    print(f"{len(CONFIGS)} MobileNetV2 configurations, 1 thread, median of {args.rounds} rounds")
    for name in names:
        print(f"  {name:20} {medians[name]:6.2f} s  {medians[name] / base:5.2f}x bare fvcore")
    memory = medians["profile, memory"] - medians["profile, no memory"]
    print(
        f"  memory analysis      {memory:6.2f} s  {memory / medians['profile, no memory']:5.2f}x counting"
    )


if __name__ == "__main__":
    main()
