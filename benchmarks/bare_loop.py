"""Does mbprof's latency agree with a bare timing loop of the same backend?

For MobileNetV2 (default 1.0 @ 224, batch 1, 2 threads; batch-norm statistics calibrated
so that activations have a trained network's scale) and four backends (eager; eager with
batch norm folded and channels-last; ONNX Runtime; ExecuTorch with XNNPACK), this script
times the model two ways, interleaved so that contention on a shared machine hits both
alike:

  mbprof     mbprof.analysis.latency.time_model (warm-up, blocks, median)
  bare loop  the few lines a user would write: torch.set_num_threads, inference_mode,
             a perf_counter around each call, the median. Batch norm is folded with
             torch.fx.experimental.optimization.fuse (not mbprof's folding), the ONNX
             session is built here with the same thread count, and the ExecuTorch
             program is lowered here with ExecuTorch's own API (the same bytes as the
             program mbprof lowers and caches: checked) and run with the same thread pool.

Each round runs, per backend, mbprof then the bare loop (the order alternates every
round). Reported: the medians over rounds, and the median of the per-round ratios
(a paired comparison: both figures of a round saw about the same load). The load
average is printed per round; on a busy machine, give more rounds.

    python benchmarks/bare_loop.py [--rounds 6] [--min-time 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mbprof.analysis.latency.harness import time_model  # noqa: E402
from mbprof.analysis.latency.machine import resolve_settings  # noqa: E402
from mbprof.core.settings import LatencySettings  # noqa: E402
from mbprof.models import create_model  # noqa: E402
from mbprof.models.calibration import calibrate  # noqa: E402

BACKENDS = {
    "eager": dict(backend="eager"),
    "eager fused BN + channels-last": dict(backend="eager", fuse_bn=True, channels_last=True),
    "onnxruntime": dict(backend="onnxruntime"),
    # cached: mbprof lowers the program in the first round and reads it back afterwards
    "executorch": dict(backend="executorch", cache_programs=True),
}
PTE: list[bytes] = []  # the program the bare loop runs


def bare_executorch(model: torch.nn.Module, x: torch.Tensor, threads: int):
    """ExecuTorch as its documentation shows it: export, lower to XNNPACK, load, execute."""
    import executorch.extension.pybindings.portable_lib as portable
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    exported = torch.export.export(model, (x,))
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    PTE.append(bytes(program.to_executorch().buffer))
    portable._unsafe_reset_threadpool(threads)  # before the program is loaded
    method = Runtime.get().load_program(PTE[-1]).load_method("forward")
    inputs = [x]
    return lambda: method.execute(inputs)


def bare_runner(name: str, model: torch.nn.Module, x: torch.Tensor, threads: int, folder: str):
    """The bare loop's callable for one backend, prepared without mbprof's code."""
    if name == "onnxruntime":
        import onnxruntime as ort

        path = os.path.join(folder, "bare.onnx")
        torch.onnx.export(model, (x,), path, external_data=False, verbose=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy()}
        return lambda: session.run(None, feed)
    if name == "executorch":
        return bare_executorch(model, x, threads)
    if "fused" in name:
        from torch.fx.experimental.optimization import fuse

        model = fuse(model).to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return lambda: model(x)


def bare_loop(run, threads: int, warmup: int, seconds: float) -> float:
    """Median milliseconds of single timed calls for about ``seconds``."""
    torch.set_num_threads(threads)
    with torch.inference_mode():
        for _ in range(warmup):
            run()
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < seconds or len(times) < 5:
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _same_program(model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    """Say whether mbprof's cached program is the bare loop's, byte for byte."""
    from mbprof.analysis.latency import executorch as lowering

    exported = torch.export.export(model, (torch.randn(shape),))
    found = lowering.read_program(lowering.program_key(exported, shape, "none"))
    same = found is not None and PTE and found.pte == PTE[0]
    print(f"executorch: mbprof's program is the bare loop's, byte for byte: {bool(same)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--res", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    names = [n.strip() for n in args.backends.split(",")]

    shape = (1, 3, args.res, args.res)
    torch.manual_seed(0)
    model = calibrate(create_model("mobilenet_v2", width=args.width), (args.res, args.res))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    print(f"mobilenet_v2 {args.width:g}@{args.res}, batch 1, {args.threads} threads, "
          f"torch {torch.__version__}, {os.cpu_count()} logical CPUs")  # fmt: skip
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    ours: dict[str, list[float]] = {n: [] for n in names}
    bare: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as folder:
        runners = {n: bare_runner(n, model, x, args.threads, folder) for n in names}
        settings = {
            n: resolve_settings(
                LatencySettings(
                    device="cpu",
                    threads=args.threads,
                    min_time_s=args.min_time,
                    warmup=args.warmup,
                    **BACKENDS[n],
                )
            )
            for n in names
        }
        for r in range(args.rounds):
            load = os.getloadavg()[0]
            for n in names:
                steps = ["mbprof", "bare"] if r % 2 == 0 else ["bare", "mbprof"]
                for step in steps:
                    if step == "mbprof":
                        ours[n].append(time_model(model, shape, settings[n], madds=1).latency_ms)
                    else:
                        bare[n].append(
                            bare_loop(runners[n], args.threads, args.warmup, args.min_time)
                        )
                print(f"round {r + 1} (load {load:.2f}) {n:32s} mbprof {ours[n][-1]:8.2f} ms"
                      f"   bare loop {bare[n][-1]:8.2f} ms")  # fmt: skip
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if "executorch" in names:
        _same_program(model, shape)
    print()
    print(
        f"{'backend':32s} {'mbprof ms':>10s} {'bare ms':>10s} {'diff':>8s} {'paired':>8s}  within 10%"
    )
    ok = True
    for n in names:
        a, b = statistics.median(ours[n]), statistics.median(bare[n])
        diff = 100 * (a - b) / b
        paired = 100 * (
            statistics.median([x / y for x, y in zip(ours[n], bare[n], strict=True)]) - 1
        )
        good = abs(diff) <= 10 or abs(paired) <= 10
        ok &= good
        print(
            f"{n:32s} {a:10.2f} {b:10.2f} {diff:+7.1f}% {paired:+7.1f}%  {'yes' if good else 'NO'}"
        )
    print(f"(medians over {args.rounds} interleaved rounds of >= {args.min_time:g} s each; "
          "paired: median of the per-round ratios mbprof / bare)")  # fmt: skip
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
