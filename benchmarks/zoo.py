"""mbprof against torchvision's published figures, for every classification model.

For each model of ``torchvision.models`` (classification only), at the crop size of its
DEFAULT weights: mbprof's MAdds and parameters (``mbprof.profile("torchvision.models:NAME",
resolution=CROP)``, built without weights, as a user profiling an architecture would)
beside the figures torchvision publishes with the weights (``meta["_ops"]``, GFLOPS in
torchvision's convention = GMACs, three decimals; ``meta["num_params"]``), the
differences, and a second, independent count: torch's FlopCounterMode on a meta-device
model, halved. mbprof counts with both of its engines (fvcore's, and ``engine="dispatch"``:
fvcore's rules on PyTorch's dispatcher): the dispatch engine's MAdds, and whether its
per-layer rows, other FLOPs and params_used are identical to fvcore's. Models above ``--max-gflops`` are left out (their fvcore trace takes
minutes and gigabytes).

Parameters match when the published count equals ``params`` or ``params_used``: the
conventions differ between torchvision's own models (googlenet's published count leaves
out its auxiliary classifiers, which its builder keeps without weights; inception_v3's
includes its auxiliary head).

    python benchmarks/zoo.py                       # every model up to 30 GFLOPS
    python benchmarks/zoo.py --only vit_b_16 regnet_y_400mf --memory --bench
    python benchmarks/zoo.py --markdown zoo.md     # the table as Markdown too

Each model runs in its own process (``--one NAME``, one JSON line), so that one model's
memory or failure does not touch the next. Needs torchvision, which PyPI builds only for
the torch it was released with (``pip install torch==2.14.1 torchvision==0.29.1`` in a
separate virtual environment, then ``pip install --no-deps -e .``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def published(name: str) -> dict:
    """Crop size, GMACs, params and the builder arguments of ``name``'s DEFAULT weights."""
    from torchvision import models

    weights = models.get_model_weights(name).DEFAULT
    crop = weights.transforms().crop_size[0]
    kwargs = {}
    # ViT-H/14's SWAG weights are for 518x518: its builder must be told (its default is 224).
    min_size = weights.meta.get("min_size", (0, 0))[0]
    if name.startswith("vit_") and min_size > 224:
        kwargs["image_size"] = min_size
    return {
        "model": name,
        "crop": crop,
        "published_gmacs": weights.meta["_ops"],
        "published_params": weights.meta["num_params"],
        "kwargs": kwargs,
    }


def flop_counter_madds(spec) -> int:
    """torch's FlopCounterMode over one forward pass of a meta-device model, halved."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mbprof.analysis.footprint import meta_state, size_parameters
    from mbprof.models import create_from_spec

    model = size_parameters(lambda: create_from_spec(spec), 2**63 - 1).model.eval()
    example = torch.zeros(spec.input_shape(), device="meta")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), torch.device("meta"), counter:
        torch.func.functional_call(model, meta_state(model), (example,), strict=False)
    return counter.get_total_flops() // 2


def one(name: str, memory: bool, bench: bool) -> dict:
    """Profile one model (in this process) and return its row."""
    warnings.simplefilter("ignore")
    import torch

    import mbprof
    from mbprof.api import bench_spec, memory_spec, profile_spec

    torch.set_num_threads(1)
    row = published(name)
    spec = mbprof.make_spec(
        f"torchvision.models:{name}", resolution=row["crop"], kwargs=row["kwargs"] or None
    )
    started = time.perf_counter()
    try:
        result = profile_spec(spec, with_memory=False)
    except Exception as exc:  # noqa: BLE001 - the row says why
        row["error"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"
        return row
    counts = result.counts
    row.update(
        madds=counts.madds,
        params=counts.params,
        params_used=counts.params_used,
        notes=list(result.notes),
        seconds=round(time.perf_counter() - started, 1),
    )
    row["flop_counter_madds"] = flop_counter_madds(spec)
    try:
        dispatched = profile_spec(spec, with_memory=False, engine="dispatch").counts
        row["dispatch_madds"] = dispatched.madds
        own = {"uncounted_ops": {}, "notes": (), "engine": ""}  # each engine's own op names
        row["engines_agree"] = replace(dispatched, **own) == replace(counts, **own)
    except Exception as exc:  # noqa: BLE001 - the row says why
        row["dispatch_error"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    if memory:
        try:
            report = memory_spec(spec)
            row["peak_act_bytes"] = report.peak.live_bytes
        except Exception as exc:  # noqa: BLE001
            row["memory_error"] = (
                f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
            )
    if bench:
        settings = mbprof.make_latency_settings(min_time_s=0.2, warmup=1, threads=1)
        try:
            row["latency_ms"] = bench_spec(spec, settings).timing.latency_ms
        except Exception as exc:  # noqa: BLE001
            row["bench_error"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    return row


def classification_models() -> list[str]:
    from torchvision import models

    return sorted(models.list_models(module=models))


def run_all(names: list[str], args: argparse.Namespace) -> list[dict]:
    rows = []
    for name in names:
        command = [sys.executable, __file__, "--one", name]
        command += ["--memory"] * args.memory + ["--bench"] * args.bench
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            row = json.loads(lines[-1]) if lines else {"model": name, "error": done.stderr[-300:]}
        except subprocess.TimeoutExpired:
            row = {"model": name, "error": f"timed out after {args.timeout} s"}
        rows.append(row)
        print(f"{name}: {verdict(row)}", file=sys.stderr, flush=True)
    return rows


def madds_match(row: dict) -> bool:
    return "madds" in row and round(row["madds"] / 1e9, 3) == row["published_gmacs"]


def params_match(row: dict) -> str:
    """'params', 'params_used' (which of mbprof's figures equals the published one) or ''."""
    if row.get("params") == row.get("published_params"):
        return "params"
    if row.get("params_used") == row.get("published_params"):
        return "params_used"
    return ""


def verdict(row: dict) -> str:
    if "error" in row:
        return "ERROR " + row["error"]
    parts = ["MAdds ok" if madds_match(row) else "MAdds differ"]
    which = params_match(row)
    parts.append(f"params ok ({which})" if which else "params differ")
    if "dispatch_error" in row:
        parts.append("dispatch engine ERROR " + row["dispatch_error"])
    else:
        parts.append("engines' rows " + ("identical" if row.get("engines_agree") else "differ"))
    return ", ".join(parts)


def table(rows: list[dict]) -> list[str]:
    head = (
        "| model | crop | published GMACs | mbprof GMACs | diff | dispatch GMACs | "
        "FlopCounterMode GMACs | "
        "published params | params | params_used | params diff | verdict |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        if "error" in row:
            lines.append(
                f"| {row['model']} | {row.get('crop', '')} | {row.get('published_gmacs', '')} "
                f"| — | — | — | — | {row.get('published_params', '')} | — | — | — "
                f"| {verdict(row)} |"
            )
            continue
        gmacs = round(row["madds"] / 1e9, 3)
        which = params_match(row) or "params"
        dispatch = f"{row['dispatch_madds'] / 1e9:.3f}" if "dispatch_madds" in row else "—"
        lines.append(
            f"| {row['model']} | {row['crop']} | {row['published_gmacs']:.3f} | {gmacs:.3f} "
            f"| {gmacs - row['published_gmacs']:+.3f} | {dispatch} "
            f"| {row['flop_counter_madds'] / 1e9:.3f} "
            f"| {row['published_params']:,} | {row['params']:,} | {row['params_used']:,} "
            f"| {row[which] - row['published_params']:+,} | {verdict(row)} |"
        )
    return lines


def extras(rows: list[dict]) -> list[str]:
    """Memory (fp16, materialized peak) and latency (1 thread, eager), or why not."""
    lines = ["| model | peak activations (fp16 bytes) | latency (ms, 1 thread) |", "|---|---|---|"]
    for row in rows:
        memory = (
            f"{row['peak_act_bytes']:,}"
            if "peak_act_bytes" in row
            else row.get("memory_error", "—")
        )
        latency = f"{row['latency_ms']:.1f}" if "latency_ms" in row else row.get("bench_error", "—")
        lines.append(f"| {row['model']} | {memory} | {latency} |")
    return lines


def summary(rows: list[dict], skipped: int) -> str:
    import torch
    import torchvision

    done = [r for r in rows if "error" not in r]
    madds = sum(madds_match(r) for r in done)
    params = sum(bool(params_match(r)) for r in done)
    used = [r["model"] for r in done if params_match(r) == "params_used"]
    counter = sum(round(r["flop_counter_madds"] / 1e9, 3) == r["published_gmacs"] for r in done)
    text = (
        f"torchvision {torchvision.__version__} (torch {torch.__version__}): {len(done)} of "
        f"{len(rows)} classification models profiled ({skipped} above the GFLOPS limit left "
        f"out); MAdds match the published figure for {madds}, params for {params}"
    )
    if used:
        text += f" ({', '.join(used)} by params_used)"
    agree = sum(bool(r.get("engines_agree")) for r in done)
    return text + (
        f"; FlopCounterMode agrees with the published MAdds for {counter}; mbprof's dispatch "
        f"engine gives fvcore's per-layer rows exactly for {agree} of {len(done)}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="these models only")
    parser.add_argument("--max-gflops", type=float, default=30.0)
    parser.add_argument("--memory", action="store_true", help="also mbprof.memory's peak")
    parser.add_argument("--bench", action="store_true", help="also a short latency run")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per model")
    parser.add_argument("--json", type=Path, help="write the rows here (JSON lines)")
    parser.add_argument("--markdown", type=Path, help="write the table and summary here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.memory, args.bench)), flush=True)
        return
    names = args.only or classification_models()
    kept = [n for n in names if published(n)["published_gmacs"] <= args.max_gflops]
    rows = run_all(kept, args)
    lines = [*table(rows), "", summary(rows, len(names) - len(kept))]
    noted = [r for r in rows if r.get("notes")]
    if noted:
        lines += ["", "Notes:"] + [f"- {r['model']}: {'; '.join(r['notes'])}" for r in noted]
    if args.memory or args.bench:
        lines += ["", *extras(rows)]
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
