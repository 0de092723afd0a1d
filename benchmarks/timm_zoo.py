"""mbprof against timm's own convention, for every timm model of a GMAC band.

For each model of ``timm.list_models()`` whose multiply-adds at its default input size fall
in the band (by torch's FlopCounterMode on a meta-device model in its deployed form,
halved: cheap, used to pick the band only; a forward pass that runs neither there nor on fake
tensors is sized by a real one, in a process of its own with its address space capped),
built without weights, as built and in its deployed form: mbprof's figures
(``mbprof.profile("timm/NAME", resolution=DEFAULT, reparam=...)``, memory included, so that
a refusal shows) beside timm's ``benchmark.py`` convention, computed here the way it does:
parameters ``sum(p.numel())`` and GMACs ``fvcore.nn.FlopCountAnalysis(model, x).total()``
(fvcore's default total: convolution, linear and matmul multiply-adds plus batch norm,
pooling and the other ops fvcore has a handle for), the deployed form by timm's own
``timm.utils.reparameterize_model`` (``benchmark.py --reparam``). mbprof's side is its
MAdds + other FLOPs (the same fvcore handles) less its fused attention (``attention_madds``:
the papers count it, fvcore has no handle for it, so timm's figures leave it out; shown in a
column of its own) and its own re-parameterization (``mbprof.analysis.deploy``), so the params
compare two independent deployments. Both of mbprof's engines count: the dispatch engine's
MAdds, and whether its per-layer rows (and other figures) are fvcore's exactly.

    python benchmarks/timm_zoo.py                        # models up to 1 GMAC: prints those
                                                         # with blocks merged or a difference
    python benchmarks/timm_zoo.py --max-gmacs 0.1 --markdown timm.md
    python benchmarks/timm_zoo.py --only mobileone_s0 efficientvit_b0 --bench

Needs timm, which does not import beside this project's CPU torch: in a separate virtual
environment, ``pip install torch==2.14.1 torchvision==0.29.1 timm==1.0.24 fvcore typer rich
pandas matplotlib loky``, then ``pip install --no-deps -e .``. Models are sized (for the band)
and measured in chunks, each in its own process (one JSON line a model), a chunk that crashes
run again model by model, so that one model's failure (a segfault included) touches no other:
it is a row that says so. ``--band FILE`` keeps the band (with the models that could not be
sized and why) for later runs, which then skip the selection.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
FORMS = (("built", False), ("reparam", True))


# A model whose forward pass runs on neither the meta device nor fake tensors is sized by a
# real one on the CPU, one process a model, its address space capped (a shared machine).
REAL_AS_BYTES = 6 << 30


def size(name: str, real: bool = False) -> dict:
    """One model's default input size and FlopCounterMode GMACs, deployed (as timm publishes
    them): built by mbprof's parameter sizing (on the meta device, else each parameter moved
    there as registered: builders that read a tensor back), run on the meta device, else on
    fake CPU tensors (autocast has no meta device); with ``real``, built and run for real.
    A model with more parameters than the band's MAdds (each weight multiplies at least once
    an image) is not run at all: ``params`` says it is above."""
    import resource

    import timm
    import torch
    from timm.utils.model import reparameterize_model
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    from mbprof.analysis.footprint import meta_state, size_parameters

    def deployed(model):
        try:  # the band is of the deployed form, as timm publishes it
            return reparameterize_model(model.eval())
        except Exception:  # noqa: BLE001 - its hooks need data: as built
            return model

    def sized():
        return size_parameters(lambda: timm.create_model(name), 1 << 30).model  # bytes, if real

    def on_meta(counter):
        model = sized()
        with torch.device("meta"):
            model = deployed(model)
            example = torch.zeros(1, *model.pretrained_cfg["input_size"])
            with counter:
                torch.func.functional_call(model, meta_state(model), (example,), strict=False)
        return model

    def faked(counter):
        with FakeTensorMode():
            model = deployed(timm.create_model(name))
            example = torch.empty(1, *model.pretrained_cfg["input_size"])
            with counter:
                model(example)
        return model

    def for_real(counter):
        resource.setrlimit(resource.RLIMIT_AS, (REAL_AS_BYTES, resource.RLIM_INFINITY))
        model = deployed(timm.create_model(name))
        with counter:
            model(torch.zeros(1, *model.pretrained_cfg["input_size"]))
        return model

    error = ""
    for way in (for_real,) if real else (on_meta, faked):
        counter = FlopCounterMode(display=False)
        try:
            with torch.no_grad():
                model = way(counter)
            res = model.pretrained_cfg["input_size"][1]
            gmacs = counter.get_total_flops() / 2e9
            return {"model": name, "res": res, "gmacs": gmacs, "how": way.__name__}
        except Exception as exc:  # noqa: BLE001 - the next way, then said
            error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    row = {"model": name, "error": error}
    if not real:  # how many parameters: too many for the band, else a real pass tells
        try:
            row["params"] = sum(p.numel() for p in sized().parameters())
        except Exception:  # noqa: BLE001, S110 - not even built: the error says why
            pass
    return row


def in_children(items: list[str], flag: str, chunk: int, timeout: int, extra=()) -> list[dict]:
    """The rows of ``--FLAG item...`` (one JSON line an item, keyed "model"), the items in
    chunks, each in its own process; the items of a chunk that crashed or timed out without
    their row run again one process each, and one that fails alone is a row {"model",
    "error"}: no model stops the run."""

    def run(part: list[str]) -> list[dict]:
        command = [sys.executable, __file__, flag, *part, *extra]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
            out, why = done.stdout, done.returncode and f"crashed (exit {done.returncode})"
        except subprocess.TimeoutExpired as exc:
            out, why = exc.stdout or "", f"timed out ({timeout} s)"
        out = out.decode() if isinstance(out, bytes) else out
        got = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        seen = {row["model"] for row in got}
        left = [item for item in part if item.partition("@")[0] not in seen]
        if why and len(part) == 1:
            return got or [{"model": part[0].partition("@")[0], "error": why}]
        return got + [row for item in left if why for row in run([item])]

    rows: list[dict] = []
    for start in range(0, len(items), chunk):
        rows += run(items[start : start + chunk])
        print(f"{flag[2:]}: {len(rows)} of {len(items)}", file=sys.stderr, flush=True)
    return rows


def timm_side(name: str, resolution: int) -> dict:
    """timm's benchmark.py convention: params and fvcore's total, as built and --reparam."""
    import timm
    import torch
    from fvcore.nn import FlopCountAnalysis
    from timm.utils.model import reparameterize_model

    model = timm.create_model(name).eval()
    x = torch.randn(1, 3, resolution, resolution)
    out = {}
    for form, reparam in FORMS:
        use = reparameterize_model(model) if reparam else model
        analysis = FlopCountAnalysis(use, x).unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        out[form] = {"params": sum(p.numel() for p in use.parameters()), "fv": analysis.total()}
    return out


def one(name: str, resolution: int, bench: bool) -> dict:
    import mbprof

    row: dict = {"model": name, "res": resolution}
    try:
        row["timm"] = timm_side(name, resolution)
    except Exception as exc:  # noqa: BLE001 - the row says why
        row["timm_error"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    for form, reparam in FORMS:
        try:
            result = mbprof.profile(f"timm/{name}", resolution=resolution, reparam=reparam)
        except Exception as exc:  # noqa: BLE001
            row[form] = {"error": f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"}
            continue
        counts = result.counts
        row[form] = {
            "madds": counts.madds,
            "fv": counts.madds + counts.other_flops - counts.attention_madds,
            "attention": counts.attention_madds,
            "params": counts.params,
            "peak": result.memory.peak.live_bytes if result.memory else None,
            "missing": list(result.missing),
            "notes": [n for n in result.notes if n.startswith("reparam")],
        }
        try:
            dispatched = mbprof.profile(
                f"timm/{name}",
                resolution=resolution,
                reparam=reparam,
                engine="dispatch",
                with_memory=False,
            ).counts
            row[form]["dispatch_madds"] = dispatched.madds
            own = {"uncounted_ops": {}, "notes": (), "engine": ""}  # each engine's own op names
            row[form]["engines_agree"] = replace(dispatched, **own) == replace(counts, **own)
        except Exception as exc:  # noqa: BLE001 - the row says why
            row[form]["dispatch_error"] = (
                f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            )
        if bench:
            settings = mbprof.make_latency_settings(min_time_s=0.2, warmup=1, threads=1)
            spec = mbprof.make_spec(f"timm/{name}", resolution=resolution, reparam=reparam)
            row[form]["latency_ms"] = mbprof.bench_spec(spec, settings).timing.latency_ms
    return row


def causes(row: dict) -> tuple[list[str], list[str]]:
    """(form: difference lines, form: causes) of one row."""
    diffs, why = [], []
    for form, _ in FORMS:
        ours, theirs = row.get(form, {}), row.get("timm", {}).get(form)
        if "error" in ours or theirs is None:
            diffs.append(f"{form}: {ours.get('error') or row.get('timm_error')}")
            continue
        if ours["params"] != theirs["params"]:
            diffs.append(f"{form} params {ours['params'] - theirs['params']:+,}")
        if ours["fv"] != theirs["fv"]:
            diffs.append(f"{form} fvcore total {ours['fv'] - theirs['fv']:+,}")
        why += ours["missing"]
    return diffs, why


def engines(ours: dict) -> str:
    return ours.get("dispatch_error") or ("identical" if ours.get("engines_agree") else "differ")


def notable(row: dict) -> bool:
    """A row worth printing: a difference, a part missing, blocks merged, or the engines'
    rows not identical."""
    deployed = row.get("reparam", {})
    return (
        bool(causes(row)[0] or causes(row)[1])
        or any("merged" in n for n in deployed.get("notes", []))
        or any(
            engines(row.get(f, {})) != "identical"
            for f, _ in FORMS
            if "error" not in row.get(f, {})
        )
    )


def report(rows: list[dict]) -> list[str]:
    lines = [
        "| model | res | form | params | timm params | GMACs (fvcore convention) | timm GMACs | "
        "MAdds (G) | of which attention (G) | dispatch MAdds (G) | engines' rows | "
        "peak act (fp16 B) | differences |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        diffs, _ = causes(row)
        for form, _ in FORMS:
            ours, theirs = row.get(form, {}), row.get("timm", {}).get(form, {})
            if "error" in ours:
                lines.append(f"| {row['model']} | {row['res']} | {form} | {ours['error']} |")
                continue
            peak = f"{ours['peak']:,}" if ours["peak"] is not None else "; ".join(ours["missing"])
            dispatch = f"{ours['dispatch_madds'] / 1e9:.3f}" if "dispatch_madds" in ours else "—"
            lines.append(
                f"| {row['model']} | {row['res']} | {form} | {ours['params']:,} | "
                f"{theirs.get('params', 0):,} | {ours['fv'] / 1e9:.3f} | "
                f"{theirs.get('fv', 0) / 1e9:.3f} | {ours['madds'] / 1e9:.3f} | "
                f"{ours['attention'] / 1e9:.3f} | "
                f"{dispatch} | "
                f"{engines(ours)} | {peak} | "
                f"{'; '.join(d for d in diffs if d.startswith(form)) or 'agree'} |"
            )
    return lines


def summary(rows: list[dict], chosen: dict, low: float, high: float) -> str:
    refused = sum(any("error" in row.get(f, {}) for f, _ in FORMS) for row in rows)
    crashed = [row["model"] for row in rows if "error" in row]
    missing = sum(any(row.get(f, {}).get("missing") for f, _ in FORMS) for row in rows)
    agree = {f: sum(not any(d.startswith(f) for d in causes(r)[0]) for r in rows) for f, _ in FORMS}
    merged = sum(
        any("merged" in n for n in row.get("reparam", {}).get("notes", [])) for row in rows
    )
    unsized = chosen["unsized"]
    formed = [row[f] for row in rows for f, _ in FORMS if "error" not in row.get(f, {})]
    same = sum(engines(ours) == "identical" for ours in formed)
    attention = sum(bool(row.get("reparam", {}).get("attention")) for row in rows)
    return (
        f"timm {chosen['timm']}: {len(rows)} of its {chosen['listed']} models of {low:g} < "
        f"GMACs <= {high:g} at their default input size ({len(unsized)} not sized"
        f"{': ' + ', '.join(unsized) if unsized else ''}; "
        f"{len(chosen.get('sized_for_real', []))} sized by a real forward pass, "
        f"{len(chosen.get('above_by_params', []))} above the band by their parameters alone); "
        f"{len(rows) - refused} profiled whole "
        f"by mbprof ({refused} refused, {len(crashed)} of them crashed or timed out"
        f"{': ' + ', '.join(crashed) if crashed else ''}; {missing} with a part missing); "
        f"params and fvcore total agree with timm's benchmark.py convention for "
        f"{agree['built']} as built and {agree['reparam']} deployed (--reparam; {merged} have "
        f"blocks to merge; fused attention, which timm's figures leave out, said apart for "
        f"{attention}); the dispatch engine's per-layer rows are fvcore's exactly for {same} "
        f"of {len(formed)} (model, form) pairs."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="these models only (band not applied)")
    parser.add_argument("--min-gmacs", type=float, default=0.0)
    parser.add_argument("--max-gmacs", type=float, default=1.0)
    parser.add_argument("--bench", action="store_true", help="also a short latency run")
    parser.add_argument("--chunk", type=int, default=8, help="models per process")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per chunk")
    parser.add_argument("--band", type=Path, help="read (or write) the band's models here")
    parser.add_argument("--json", type=Path, help="write the rows here (JSON lines)")
    parser.add_argument("--markdown", type=Path, help="write the table and summary here")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--size", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--real", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.one or args.size:
        for item in args.one or args.size:
            name, _, res = item.partition("@")
            row = one(name, int(res), args.bench) if args.one else size(name, args.real)
            print(json.dumps(row), flush=True)
        return
    import timm

    if args.band and args.band.exists():
        chosen = json.loads(args.band.read_text())
    else:
        low, high = (-1, 1e9) if args.only else (args.min_gmacs, args.max_gmacs)
        names = args.only or timm.list_models()
        sized = in_children(names, "--size", 64, args.timeout)
        above = [r["model"] for r in sized if r.get("params", 0) > high * 1e9]
        again = [r["model"] for r in sized if "error" in r and r["model"] not in above]
        real = {r["model"]: r for r in in_children(again, "--size", 1, args.timeout, ["--real"])}
        sized = [real.get(r["model"], r) for r in sized if r["model"] not in above]
        chosen = {
            "timm": timm.__version__,
            "listed": len(names),
            "models": [(r["model"], r["res"]) for r in sized if low < r.get("gmacs", -2) <= high],
            "unsized": {r["model"]: r["error"] for r in sized if "error" in r},
            "sized_for_real": sorted(name for name in real if "error" not in real[name]),
            "above_by_params": above,
        }
        if args.band:
            args.band.write_text(json.dumps(chosen, indent=0) + "\n")
    if chosen["unsized"]:
        print(f"not sized for the band: {chosen['unsized']}", file=sys.stderr)
    res = dict(chosen["models"])
    items = [f"{name}@{res}" for name, res in chosen["models"]]
    extra = ["--bench"] * args.bench
    rows = in_children(items, "--one", args.chunk, args.timeout, extra)
    for row in rows:  # a model whose process died: the row says how, both forms
        if "error" in row:
            row.update(res=res[row["model"]], built={"error": row["error"]})
            row["reparam"] = row["built"]
    last = summary(rows, chosen, args.min_gmacs, args.max_gmacs)
    # printed: the models with blocks merged, a difference or a missing part; every row: --markdown
    print("\n".join([*report([r for r in rows if notable(r)]), "", last]))
    if args.markdown:
        args.markdown.write_text("\n".join([*report(rows), "", last]) + "\n")
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
