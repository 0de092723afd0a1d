"""Documents for latency: `mbprof bench` (and its per-layer table) and the latency notes of
`mbprof compare`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mbprof.core.records import BenchResult, LayerProfile
from mbprof.core.units import format_value
from mbprof.frame.columns import DEPLOYMENT_FIGURES, ENVIRONMENT, ENVIRONMENT_COLUMNS, text_table
from mbprof.frame.rows import identity_row, latency_columns
from mbprof.render.document import Document, Fact, Table, data_frame
from mbprof.render.profile_view import pair

if TYPE_CHECKING:
    import pandas as pd


LATENCY_NOTE = (
    "Latency: median wall time of one forward pass of a whole batch on this machine, warm, "
    "in torch.inference_mode (ONNX Runtime: one session.run), over blocks of runs timed "
    "for at least the minimum time; p10/p90 are the 10th/90th percentiles of the same runs."
)
STABILITY_NOTE = (
    "Timing: stable when (p90 - p10) / median <= 25%, >= 10 timed blocks, the two halves "
    "of the runs within 10%, no other process busy on the CPUs it needed, no steal time, "
    "as many usable CPUs as threads and a steady CPU clock; otherwise unstable, with why."
)


def gflops_note(machine: str | None) -> str:
    """The GFLOP/s footnote, with the machine share only where it is shown (``machine``)."""
    share = "that rate as a share of the best rate of a large matrix product on the same device"
    share = f"; {machine}: {share}, threads and dtype" if machine else ""
    return f"GFLOP/s: 2 x MAdds x batch / median latency{share}."


def _shared(reasons: list[str]) -> str:
    """One reason for several rows: numbers that differ as a range ("0.9-1.3")."""
    slots = zip(*(re.findall(_NUMBER, r) for r in reasons), strict=True)
    values = iter(
        v[0] if len(set(v)) == 1 else f"{min(v, key=float)}-{max(v, key=float)}" for v in slots
    )
    return re.sub(_NUMBER, lambda _: next(values), reasons[0])


_NUMBER = r"\d+(?:\.\d+)?"
_ROW_REASONS = ("spread", "drift", "only")


def remedy(reasons: list[str], threads: int | None) -> str:
    """What to do about the reasons seen (``threads``: the most any row asked for)."""
    said = " ".join(reasons)
    fixes = []
    if any(k in said for k in ("other processes", "load average", "hypervisor")):
        # steal time alone means other guests of the host, not processes on this machine
        alone = "hypervisor" in said and "other processes" not in said
        who = "the hypervisor's other guests" if alone else "other processes"
        leave = "--threads 1 leaves them a CPU, or " if (threads or 1) > 1 else ""
        fixes.append(f"{who} were busy: {leave}measure on a quiet machine")
    fixes += ["more threads than usable CPUs: a smaller --threads"] * ("CPUs usable" in said)
    fixes += ["too few timed blocks: a longer --min-time"] * ("timed block" in said)
    fixes = fixes or ["the runs varied: a quiet machine, or a longer --min-time"]
    return "Remedy: " + "; ".join(fixes) + "."


def stability_notes(frame: pd.DataFrame) -> list[str]:
    """Which rows' latency is unstable and why (a shared reason said once), and what to do."""
    if "latency_verdict" not in frame or frame["latency_verdict"].isna().all():
        return []
    unstable = frame[frame["latency_verdict"] == "unstable"]
    if unstable.empty:
        return [f"Timing: every latency is stable. {STABILITY_NOTE}"]
    rows = []
    for row in unstable.itertuples():
        depth = getattr(row, "depth", 1.0)
        extra = "" if depth in (None, 1.0) or depth != depth else f" depth {depth:g}"
        label = f"{row.model} {format_value(row.width, 'float')}@{row.resolution}{extra}"
        reasons = [r.strip() for r in str(row.latency_reasons or "").split(";") if r.strip()]
        rows.append((label, reasons))
    # The machine's reasons (other processes, steal, CPUs, clock) said once for the rows
    # that share them; a row's own figures (spread, drift, blocks) on its line.
    groups: dict[str, list[str]] = {}
    seen = [r for _, reasons in rows for r in reasons]
    for reason in (r for r in seen if not r.startswith(_ROW_REASONS)):
        groups.setdefault(re.sub(_NUMBER, "#", reason), []).append(reason)
    shared = {key: found for key, found in groups.items() if len(found) > 1}
    total = int(frame["latency_verdict"].notna().sum())
    head = f"UNSTABLE latency (marked in the Timing column) for {len(rows)} of {total} rows"
    if shared:
        head += ": " + "; ".join(
            _shared(found) + ("" if len(found) == len(rows) else f" ({len(found)} rows)")
            for found in shared.values()
        )
    lines = []
    for label, reasons in rows:
        own = [r for r in reasons if re.sub(_NUMBER, "#", r) not in shared]
        lines.append(f"{label}: {'; '.join(own) or ('as above' if reasons else 'no reason given')}")
    if len(lines) == 1:
        head, lines = f"{head}: {lines[0]}", []
    threads = frame["threads"].max() if "threads" in frame else None
    return [head + ".", *lines, remedy(seen, threads), STABILITY_NOTE]


def environment_text(frame: pd.DataFrame) -> str:
    """One sentence naming the environment shared by the rows of ``frame``."""
    found = {k: frame[k].dropna().unique() if k in frame else [] for k in ENVIRONMENT_COLUMNS}
    get = {key: values[0] if len(values) == 1 else None for key, values in found.items()}
    name = f" ({get['device_name']})" if get["device_name"] is not None else ""
    said = {  # each as the sentence says it, in order
        "device": lambda v: f"{v}{name}",
        "torch_version": "torch {}".format,
        "backend": "backend {}".format,
        "dtype": str,
        "memory_format": str,
        "batch": lambda v: f"batch {int(v)}",
        "threads": lambda v: f"{int(v)} thread{'' if int(v) == 1 else 's'}",
        "fuse_bn": lambda v: "batch norm folded" if bool(v) else "batch norm not folded",
    }
    parts = [say(get[key]) for key, say in said.items() if get[key] is not None]
    parts += ["quantized to int8 from fp32"] if get.get("quantize") == "int8" else []
    return "Measured on " + ", ".join(parts) + "." if parts else ""


def latency_notes(frame: pd.DataFrame, shown: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The latency notes of a comparison (the "Machine %" footnote only where it is shown)."""
    if "latency_ms" not in frame and "device" not in frame:
        return []
    notes = [LATENCY_NOTE, gflops_note("Machine %" if "machine_share_pct" in shown else None)]
    notes += stability_notes(frame)
    if "runs" in frame and frame["runs"].notna().any():
        low, high = int(frame["runs"].min()), int(frame["runs"].max())
        runs = f"{low:,}" if low == high else f"{low:,} to {high:,}"
        notes.append(f"Runs per configuration: {runs} (see the runs column in CSV/JSON).")
    return notes + [text] if (text := environment_text(frame)) else notes


def bench_frame(result: BenchResult) -> pd.DataFrame:
    """The one-row table of a bench result (the compare frame's columns)."""
    t = result.timing
    return data_frame([{**identity_row(result.spec), "madds": t.madds, **latency_columns(t)}])


# The facts of a bench, in order: key, label, kind, note (some notes are the run's own).
_BENCH_FACTS = text_table("""
model | Model | text |
input | Input | text | batch x channels x H x W
latency_ms | Latency | ms |
latency_ms_per_image | Per image | ms | ms
latency_p10_ms | p10 | ms | ms per batch
latency_p90_ms | p90 | ms | ms per batch
latency_spread_pct | Spread | percent | (p90 - p10) / median
runs | Runs | int |
latency_verdict | Timing | text |
throughput_ips | Throughput | rate | images/s
madds | MAdds | int | conv + fully connected, per image
achieved_gflops | Achieved | rate | GFLOP/s = 2 x MAdds x batch / median latency
machine_peak_gflops | Machine peak | rate | GFLOP/s, large matrix product,
    same device/threads/dtype (cached)
machine_share_pct | Machine share | percent |
compile_s | Compile | rate | s, not in latency
quantize | Quantize | text | post-training static, calibrated on random batches
fp32_latency_ms | fp32 latency | ms | same backend, fp32
int8_speedup | int8 speed-up | rate | x, over fp32
int8_cosine | int8 cosine | auto | logits against fp32, random inputs: not accuracy
int8_top1_agreement | int8 top-1 agree | auto | same arg-max as fp32, random inputs: not accuracy
deployed_bytes | Deployed size | bytes | the file it runs
fp32_deployed_bytes | fp32 size | bytes | same backend
delegated_ops | XNNPACK ops | int | operators delegated
portable_ops | Portable ops | int | operators outside XNNPACK
device | Device | text |
device_name | Device name | text |
cpu_model | CPU | text |
threads | Threads | int | intra-op
other_cpus | Other load | rate | CPUs busy with other processes
load_average | Load average | rate | 1 minute, at the end
cpu_mhz | CPU clock | rate | MHz, at the end
backend | Backend | text |
dtype | Dtype | text |
memory_format | Memory format | text |
fuse_bn | Fused BN | text |
torch_version | torch | text |
""")
# Shown only where the backend gave them: compile time, the deployed file, the delegation,
# int8 against fp32.
_WHERE_GIVEN = {"compile_s", "quantize", *DEPLOYMENT_FIGURES}


_LAYER_KEYS = (
    "path type kind kernel stride groups geometry output_shape layer_time_ms time_share_pct madds "
    "madds_share_pct bytes_moved intensity layer_gflops layer_gbs bound roof_pct mapped ops"
).split()
_FIELDS = {"layer_time_ms": "time_ms", "layer_gflops": "gflops", "layer_gbs": "gbs"}


def layers_frame(profile: LayerProfile) -> pd.DataFrame:
    """One row per layer, numbers raw (the columns of ``mbprof.frame.columns``)."""
    rows = []
    for r in profile.rows:
        row = {key: getattr(r, _FIELDS.get(key, key), None) for key in _LAYER_KEYS}
        row.update(kernel=pair(r.kernel), stride=pair(r.stride), output_shape=pair(r.out_shape))
        # '3x3 s2 g48': kernel, stride (when not 1) and groups (when not 1), for terminals
        geometry = row["kernel"]
        if geometry is not None and r.stride and max(r.stride) > 1:
            geometry += " s" + (str(r.stride[0]) if len(set(r.stride)) == 1 else row["stride"])
        if geometry is not None and r.groups and r.groups > 1:
            geometry += f" g{r.groups}"
        rows.append({**row, "geometry": geometry, "bound": r.bound or None})
    return data_frame(rows, ints=("groups",))


def layers_document(result: BenchResult) -> Document:
    """The bench document with the per-layer table first (so that CSV writes the layers)."""
    spec, t = result.spec, result.timing
    env = t.environment
    h, w = spec.resolution
    values = {"model": spec.label, "input": f"{env.batch}x3x{h}x{w}", "latency_verdict": t.verdict}
    values["quantize"] = env.quantize if env.quantize != "none" else None
    notes = {
        "latency_ms": "ms per batch, median" + ("" if t.stable else " - UNSTABLE, see Timing"),
        "runs": f"{t.blocks} blocks of {t.runs_per_block} run{'s' if t.runs_per_block > 1 else ''}"
        f", >= {t.min_time_s:g} s timed after {t.warmup} warm-up runs",
        "latency_verdict": "; ".join(t.reasons) or "every check passed (see the notes)",
        "cpu_model": f"{env.cpu_count} logical CPUs",
        "backend": env.backend_version,
    }
    facts = []
    for key, label, kind, note in _BENCH_FACTS:
        value = values[key] if key in values else getattr(env if key in ENVIRONMENT else t, key)
        if value is not None or key not in _WHERE_GIVEN:
            facts.append(Fact(key, label, value, kind, notes.get(key, note)))
    unstable = [f"UNSTABLE latency: {'; '.join(t.reasons)}.", remedy(t.reasons, env.threads)]
    frame = bench_frame(result)  # the facts say it all on a terminal
    table = Table("latency", frame, hidden_in_text=tuple(frame.columns))
    notes = [*([] if t.stable else unstable), LATENCY_NOTE, gflops_note("Machine share")]
    meta = {"backend_version": env.backend_version, "cpu_count": env.cpu_count}
    meta.update({k: getattr(t, k) for k in ("blocks", "runs_per_block", "warmup", "min_time_s")})
    title = f"{spec.label}: latency on this machine"
    doc = Document(title, facts, [table], [*notes, STABILITY_NOTE, *t.notes], meta, "bench")
    if result.layers is None:
        return doc
    doc.title = f"{result.spec.label}: latency and where it goes, per layer"
    frame = layers_frame(result.layers)
    # Terminals get the geometry in one column; CSV/JSON keep every figure apart; the
    # mapped column only when some op could not be mapped.
    hidden = ("kind", "ops", "kernel", "stride", "groups", "madds", "bytes_moved")
    hidden += ("mapped",) if frame["mapped"].all() else ()
    secondary = ("geometry", "output_shape", "type", "mapped", "bound", "layer_gbs")
    title = f"Per layer ({result.layers.backend}), slowest first"
    doc.tables.insert(0, Table("layers", frame, title, hidden_in_text=hidden, secondary=secondary))
    doc.notes += list(result.layers.notes)
    keys = ("backend", "passes", "profiled_ms", "latency_ms", "overhead_pct", "compute_gflops")
    doc.meta["layers"] = {k: getattr(result.layers, k) for k in (*keys, "bandwidth_gbs")}
    doc.meta["layers"]["ridge_flop_per_byte"] = result.layers.ridge
    return doc
