"""Measure what depends on the machine (latency, speeds) and write it, with the machine it
came from, into ``docs/measured/NAME.md``, which the pages include (``docs.measured``).

    python tools/measure.py              # every measurement, one after the other
    python tools/measure.py bench sweep  # only these
    python tools/measure.py --list

These files are never edited by hand and never re-measured by ``cog --check`` (another
machine would give other figures): run this script on the machine you want to show, on a
machine as quiet as you can get, then ``cog -r -I tools -p "import docs" README.md docs/*.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runner import ROOT, output_of, tidy  # noqa: E402

MEASURED = ROOT / "docs" / "measured"
FENCE = "```"


@dataclass(frozen=True)
class Measurement:
    line: str  # the command, as a user types it (run from the repository root)
    what: str  # one line: what it shows
    expect: tuple[int, ...] = (0,)  # exit codes it may end with
    markdown: bool = False  # it prints Markdown: part of the page, so its tables render
    stderr: bool = True  # False: stdout only (a script's library warnings are not its output)
    timeout: int = 1800  # seconds


MEASUREMENTS = {
    "mission": Measurement(
        "mbprof compare --widths 0.35,0.5,1.0,1.4 --res 96,224 --format markdown",
        "the main job: the width x resolution sweep, timed interleaved, with each timing's verdict",
        markdown=True,
    ),
    "stability": Measurement(
        "python tools/compare_stability.py --widths 0.35,1.0 --res 96,224 --threads 2",
        "a sweep's stability columns from compare's CSV: spread, runs, rounds, verdict, why",
        markdown=True,
    ),
    "bench": Measurement(
        "mbprof bench mobilenet_v2 --width 1.0 --res 224 --threads 2",
        "one configuration's latency, its spread and its verdict",
    ),
    "bench_deployed": Measurement(
        "mbprof bench mobilenet_v2 --width 1.0 --res 224 --threads 2 --fuse-bn --channels-last",
        "the deployed form: batch norm folded, channels-last",
    ),
    "bench_layers": Measurement(
        "mbprof bench mobilenet_v2 --res 224 --layers --roofline docs/img/roofline.png",
        "where the time goes, layer by layer, and the roofline figure",
    ),
    "bare_loop": Measurement(
        "python benchmarks/bare_loop.py --rounds 4",
        "mbprof's latency against a bare perf_counter loop of the same backend",
        expect=(0, 1),  # 1 when a backend is not within 10% of the bare loop
        stderr=False,
    ),
    "under_load": Measurement(
        "python benchmarks/under_load.py --busy 1 --pattern bursts",
        "every latency under a competing load: within 25% of the quiet figure, or marked unstable",
        expect=(0, 1),  # 1 when a loaded figure is neither close nor marked
        stderr=False,
    ),
    # Needs torchvision, which does not import beside this project's CPU torch: run this one
    # with the Python of the environment benchmarks/zoo.py's docstring describes, e.g.
    # `PYTHONPATH=. /path/to/tv/.venv/bin/python tools/measure.py zoo`.
    "zoo": Measurement(
        "python benchmarks/zoo.py",
        "every torchvision classification model against its published MAdds and parameters",
        stderr=False,
    ),
    # Needs timm (benchmarks/timm_zoo.py's docstring): run with that environment's Python.
    "timm_zoo": Measurement(
        "python benchmarks/timm_zoo.py --band benchmarks/timm_band.json",
        "every timm model up to 1 GMAC, as built and --reparam, against timm's convention",
        markdown=True,
        stderr=False,
        timeout=4 * 3600,  # about 190 models, twice each, on 2 busy cores
    ),
    "latency_budget": Measurement(
        "mbprof check docs/examples/latency.toml --format markdown",
        "latency limits in a budget file, with the verdict of each timing",
        expect=(0, 1),  # 1 when a limit is exceeded or a timing unstable
        markdown=True,
    ),
    "counting_speed": Measurement(
        "python benchmarks/counting_speed.py --rounds 5",
        "counting's CPU time: mbprof's two engines against bare fvcore, FlopCounterMode and peers",
        stderr=False,
    ),
    "memory_speed": Measurement(
        "python benchmarks/memory_speed.py --repeats 20",
        "how long the activation-memory analysis takes",
        stderr=False,
    ),
    "sweep_scale": Measurement(
        # all of the script's 234 configurations: about a minute and a half on a quiet
        # 2-core machine (a busy one stretches it to a quarter of an hour)
        "python benchmarks/sweep_scale.py",
        "the 234-configuration sweep: cold with one worker, cold with every core, warm",
        stderr=False,
    ),
    # The phone runtimes (docs/phone.md): one thread, as a phone's large core; each run
    # lowers its program (seconds to a minute: the measurements' cache folder is private).
    "phone_bench": Measurement(
        "mbprof bench mobilenet_v2 --width 1.0 --res 224 --backend executorch --threads 1",
        "ExecuTorch (XNNPACK) fp32: latency, deployed size, the delegation",
    ),
    "phone_int8": Measurement(
        "mbprof bench mobilenet_v2 --width 1.0 --res 224 --backend executorch --quantize int8"
        " --threads 1",
        "ExecuTorch int8: speed-up over fp32, closeness to fp32, both files' sizes",
    ),
    "phone_delegation": Measurement(
        "mbprof bench mobilenet_v3_small --backend executorch --threads 1 --min-time 0.3",
        "operators left to ExecuTorch's portable kernels, named with their modules",
    ),
    "phone_layers": Measurement(
        "mbprof bench mobilenet_v2 --width 0.35 --res 96 --backend executorch --layers"
        " --threads 1 --min-time 0.3 --format markdown",
        "per-layer time from ExecuTorch's ETDump",
        markdown=True,
    ),
    "phone_budget": Measurement(
        "mbprof check docs/examples/phone.toml",
        "max_model_size: the deployed file's bytes against a limit, int8 and fp32",
        expect=(1,),  # the fp32 file is over the limit
    ),
    "phone_bare_loop": Measurement(
        "python benchmarks/bare_loop.py --backends executorch --threads 1 --rounds 8",
        "mbprof's ExecuTorch latency against a bare loop over the same program",
        expect=(0, 1),
        stderr=False,
    ),
}


def _cpu_model() -> str:
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_version() -> str:
    code, text = output_of("python -c 'import torch; print(torch.__version__)'")
    return text.strip() if code == 0 else "not importable"


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def measure(name: str, item: Measurement) -> Path:
    started, load_before = time.perf_counter(), _load()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    code, text = output_of(item.line, stderr=item.stderr, timeout=item.timeout)
    seconds = time.perf_counter() - started
    if code not in item.expect:
        raise SystemExit(f"{item.line!r} exited {code}, expected {item.expect}:\n{text}")
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    header = (
        f"<!-- written by `python tools/measure.py {name}`: do not edit; measure again -->\n"
        f"Measured on {when}: {_cpu_model()}, {cpus} logical CPUs usable, "
        f"load average {load_before} before and {_load()} after (1 minute), "
        f"torch {_torch_version()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; the command took {seconds:.0f} s.\n"
    )
    if item.markdown:
        body = [f"{FENCE}console", f"$ {item.line}", FENCE, "", *tidy(text)]
    else:
        body = [f"{FENCE}console", f"$ {item.line}", *tidy(text), FENCE]
    path = MEASURED / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(body) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="measurements to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the measurements and exit")
    args = parser.parse_args()
    if args.list:
        for name, item in MEASUREMENTS.items():
            print(f"{name:16} {item.what}\n{'':16} $ {item.line}")
        return
    unknown = [n for n in args.names if n not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown measurement {', '.join(unknown)}; see --list")
    for name in args.names or list(MEASUREMENTS):
        print(f"measuring {name}: {MEASUREMENTS[name].line}", flush=True)
        print(f"  wrote {measure(name, MEASUREMENTS[name]).relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    main()
