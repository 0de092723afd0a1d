"""Where the time of counting goes: mbprof's two engines against fvcore and its peers.

For the issue's eight MobileNetV2 configurations (widths 0.35, 0.5, 1.0, 1.4 at 96 and
224), one intra-op thread, construction included, in one process:

  bare fvcore        create_model + FlopCountAnalysis(model, x).total() and the parameter
                     sum: the few lines a user would write
  count, fvcore      create_model + mbprof.analysis.counting.count (per-layer rows, output
                     sizes, params_used, fvcore's other figures), fvcore's engine
  count, dispatch    the same with engine="dispatch": fvcore's rules on the aten ops of a
                     meta-device trace (no TorchScript, no arithmetic)
  profile, no mem    mbprof.profile(..., with_memory=False): inputs checked, the model built
                     once with its parameters and activations sized, counted, FLOPs
  profile, memory    mbprof.profile(...): the same and the activation memory analysis
  FlopCounterMode    torch.utils.flop_counter on a real forward pass (torch's own counter)
  ptflops, thop      their MAC counters (real forward passes with hooks), where installed

Each round runs the ways in a rotating order, so that a shared machine's load hits all
alike. Each way's time is the process's CPU time (one thread: the work done, which a busy
machine's other processes do not stretch as they stretch wall time); reported are the
minimum and the median over rounds of the eight configurations' total, and each way's
ratio (of minima) to bare fvcore. The issue's targets, PASS or FAIL each: counting within
1.2x of bare fvcore (fvcore's engine and profile without memory), memory within 0.3x of
counting, the dispatch engine within 0.5x of bare fvcore and faster than FlopCounterMode.

    python benchmarks/counting_speed.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from importlib.util import find_spec
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis  # noqa: E402

import mbprof  # noqa: E402
from mbprof.analysis.counting import count  # noqa: E402
from mbprof.models import create_model  # noqa: E402

CONFIGS = [(w, r) for w in (0.35, 0.5, 1.0, 1.4) for r in (96, 224)]
COUNTING_TARGET, MEMORY_TARGET, DISPATCH_TARGET = 1.2, 0.3, 0.5


def bare(width: float, res: int) -> int:
    model = create_model("mobilenet_v2", width=width)
    analysis = FlopCountAnalysis(model, torch.randn(1, 3, res, res))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.total()
    sum(p.numel() for p in model.parameters())
    # the conv and fully connected part of what the trace counted (no second trace): MAdds
    return sum(n for op, n in analysis.by_operator().items() if op in ("conv", "linear"))


def counted(width: float, res: int, engine: str = "fvcore") -> int:
    return count(create_model("mobilenet_v2", width=width), (1, 3, res, res), engine=engine).madds


def dispatched(width: float, res: int) -> int:
    return counted(width, res, "dispatch")


def profiled(width: float, res: int) -> int:
    return mbprof.profile("mobilenet_v2", width, resolution=res, with_memory=False).counts.madds


def profiled_memory(width: float, res: int) -> int:
    return mbprof.profile("mobilenet_v2", width, resolution=res).counts.madds


def flop_counter(width: float, res: int) -> int:
    model = create_model("mobilenet_v2", width=width).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, res, res))
    return counter.get_total_flops() // 2  # 2 per multiply-add: conv and linear, as MAdds


def ptflops(width: float, res: int) -> int:
    from ptflops import get_model_complexity_info

    model = create_model("mobilenet_v2", width=width)
    macs, _ = get_model_complexity_info(
        model, (3, res, res), as_strings=False, print_per_layer_stat=False, verbose=False
    )
    return int(macs)


def thop(width: float, res: int) -> int:
    from thop import profile as thop_profile

    model = create_model("mobilenet_v2", width=width)
    macs, _ = thop_profile(model, inputs=(torch.zeros(1, 3, res, res),), verbose=False)
    return int(macs)


MBPROF = {
    "bare fvcore": bare,
    "count, fvcore": counted,
    "count, dispatch": dispatched,
    "profile, no memory": profiled,
    "profile, memory": profiled_memory,
}
# Peers: timed beside, their own conventions (ptflops and thop add batch norm and more).
PEERS = {"FlopCounterMode": flop_counter}
PEERS.update({name: way for name, way in (("ptflops", ptflops), ("thop", thop)) if find_spec(name)})
WAYS = {**MBPROF, **PEERS}


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
    for width, res in CONFIGS:  # mbprof's ways and FlopCounterMode count alike, or the
        # comparison means nothing
        assert len({way(width, res) for way in (*MBPROF.values(), flop_counter)}) == 1
    names = list(WAYS)
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            started = time.process_time()
            for width, res in CONFIGS:
                WAYS[name](width, res)
            cpu[name].append(time.process_time() - started)
        print(f"round {round_ + 1}: load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    best = {name: min(values) for name, values in cpu.items()}
    base = best["bare fvcore"]
    print(
        f"{len(CONFIGS)} MobileNetV2 configurations, 1 thread, CPU time over {args.rounds} "
        "rounds: minimum (median)"
    )
    for name in names:
        print(
            f"  {name:20} {best[name]:6.2f} s ({statistics.median(cpu[name]):5.2f} s)  "
            f"{best[name] / base:5.2f}x bare fvcore"
        )
    memory = best["profile, memory"] - best["profile, no memory"]
    counting = best["profile, no memory"]
    print(f"  memory analysis      {memory:6.2f} s  {memory / counting:5.2f}x counting")
    for name in ("count, fvcore", "profile, no memory"):
        ratio = best[name] / base
        print(
            f"{verdict(ratio, COUNTING_TARGET)}: {name} {ratio:.2f}x bare fvcore "
            f"(target <= {COUNTING_TARGET}x)"
        )
    ratio = memory / counting
    print(
        f"{verdict(ratio, MEMORY_TARGET)}: memory analysis {ratio:.2f}x counting "
        f"(target <= {MEMORY_TARGET}x)"
    )
    ratio = best["count, dispatch"] / base
    print(
        f"{verdict(ratio, DISPATCH_TARGET)}: count, dispatch {ratio:.2f}x bare fvcore "
        f"(target <= {DISPATCH_TARGET}x)"
    )
    ratio = best["count, dispatch"] / best["FlopCounterMode"]
    print(f"{verdict(ratio, 1.0)}: count, dispatch {ratio:.2f}x FlopCounterMode (target < 1x)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
