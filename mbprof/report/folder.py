"""The folder a run of ``reproduce`` writes: each part's files and the README index, staged
inside it and renamed into place; the files mbprof wrote are listed with their SHA-256 in
``.mbprof-manifest.json`` and only those, unchanged, are ever replaced or removed."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError
from mbprof.frame.rows import row_measures
from mbprof.render.document import markdown_grid
from mbprof.report import plan, tables
from mbprof.report.plan import ReproduceResult, fill, kilobytes, lines, millions, write_file

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.core.records import MemoryReport

MANIFEST = ".mbprof-manifest.json"

Owned = dict[str, list[str]]  # relative path -> the SHA-256 of each content mbprof wrote there


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(out: Path, known: Collection[str]) -> Owned | None:
    """The files the manifest says mbprof wrote (None: no manifest); refused if untrusted."""
    path = out / MANIFEST
    if not os.path.lexists(path):
        return None
    payload = None
    if path.is_file() and not path.is_symlink():
        with contextlib.suppress(OSError, ValueError):
            payload = json.loads(path.read_text(encoding="utf-8"))
    ours = isinstance(payload, dict) and payload.get("written_by") == "mbprof"
    files = payload.get("files") if ours else None
    if not isinstance(files, dict) or any(
        name not in known or not isinstance(hashes, list) for name, hashes in files.items()
    ):
        raise MbprofError(
            f"--out: {str(path)!r} is not a manifest that mbprof wrote; move it away or give "
            "another folder"
        )
    return {name: [h for h in hashes if isinstance(h, str)] for name, hashes in files.items()}


def _holds_what_mbprof_wrote(path: Path, hashes: list[str] | None) -> bool:
    """Whether ``path`` is a regular file with content mbprof wrote (None: any content)."""
    return stat.S_ISREG(os.lstat(path).st_mode) and (hashes is None or sha256(path) in hashes)


def check_folder(
    out: Path, planned: Collection[str], known: Collection[str]
) -> dict[str, list[str] | None]:
    """Refuse, before any work, a folder mbprof cannot write ``planned`` into safely."""
    if os.path.lexists(out) and not out.is_dir():
        raise MbprofError(f"--out: {str(out)!r} is a file; give a folder")
    if not out.exists():
        parent = Path(os.path.realpath(out)).parent
        if not parent.is_dir():
            raise MbprofError(f"--out: folder {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK):
            raise MbprofError(f"--out: cannot write in {str(parent)!r}: permission denied")
        return {}
    if not os.access(out, os.W_OK | os.X_OK):
        raise MbprofError(f"--out: cannot write in {str(out)!r}: permission denied")
    owned: dict[str, list[str] | None] | None = read_manifest(out, known)
    readme = out / "README.md"
    if owned is None and not any(out.iterdir()):
        owned = {}
    elif owned is None and readme.is_file() and plan.MARKER.encode() in readme.read_bytes():
        owned = {name: None for name in known if (out / name).is_file()}  # an older mbprof's
    elif owned is None:
        raise MbprofError(
            f"--out: {str(out)!r} already holds files that mbprof did not write (it has no "
            f"{MANIFEST}); give a new or empty folder"
        )
    for folder in sorted({str(PurePosixPath(name).parent) for name in planned} - {"."}):
        path = out / folder
        if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
            raise MbprofError(f"--out: {str(path)!r} is not a folder mbprof made; move it away")
    for name in sorted(name for name in planned if os.path.lexists(out / name)):
        if name not in owned:
            raise MbprofError(
                f"--out: {str(out / name)!r} is not a file mbprof wrote, and this run "
                "would replace it; move it away or give another folder"
            )
        if not _holds_what_mbprof_wrote(out / name, owned[name]):
            raise MbprofError(
                f"--out: {str(out / name)!r} was changed since mbprof wrote it, and this "
                "run would replace it; move it away (or delete it) to regenerate it"
            )
    return owned


def check_out(out: str | Path, parts: Sequence[str] = plan.PARTS) -> dict[str, list[str] | None]:
    """Refuse, before any measuring, a folder this run cannot write without losing a file."""
    return check_folder(Path(out), plan.planned_files(parts), plan.planned_files())


def _write_manifest(out: Path, files: Owned) -> None:
    from mbprof.core.files import write_atomic

    payload = {"written_by": "mbprof", "files": dict(sorted(files.items()))}
    write_atomic(out / MANIFEST, json.dumps(payload, indent=1) + "\n")


@contextlib.contextmanager
def staged(out: Path, owned: dict[str, list[str] | None]) -> Iterator[Path]:
    """A folder in ``out`` for the new files, installed at the end; an error changes nothing."""
    try:
        out.mkdir()
        created = True
    except FileExistsError:
        created = False
    stage = Path(tempfile.mkdtemp(prefix=".mbprof-stage-", dir=out))
    try:
        yield stage
        # the staged files moved into place, a previous run's leftovers it still owns removed
        fresh = {
            p.relative_to(stage).as_posix(): p for p in sorted(stage.rglob("*")) if p.is_file()
        }
        hashes = {name: sha256(path) for name, path in fresh.items()}
        during: Owned = {name: list(h or []) for name, h in owned.items()}
        for name, digest in hashes.items():
            during.setdefault(name, []).append(digest)
        _write_manifest(out, during)
        for name, path in fresh.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, out / name)
        for name, old in sorted(owned.items()):
            path = out / name
            gone = name in fresh or old is None or not os.path.lexists(path)
            if not gone and _holds_what_mbprof_wrote(path, old):
                path.unlink()
                folder = path.parent
                while folder != out and folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
                    folder = folder.parent
        _write_manifest(out, {name: [digest] for name, digest in hashes.items()})
        created = False  # written: out stays even if removing the stage fails below
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()


def write_report(
    result: ReproduceResult,
    parts: Sequence[str],
    frame: pd.DataFrame,
    *,
    memory_of: Callable[[str, float], MemoryReport],
    bn_params: Callable[[str, float], int],
    timm: Callable[[], Sequence[tuple[tables.TimmRow, Any, Any]]],
    phone: tuple[list[dict[str, Any]], Sequence[str]] | None = None,
    load_at_start: tuple[float, float] | None = None,
) -> None:
    """Write ``result.out``, staged; the callables give what the report cannot measure."""
    owned = check_out(result.out, parts)  # again: a file may have been edited meanwhile
    with staged(result.out, owned) as stage:
        write = functools.partial(write_file, stage, result)
        t4 = explained = None
        if "table4" in parts:
            t4 = tables.table4_frame(frame, bn_params)
            write("table4.md", tables.table4_markdown(t4, environment_text(frame)))
            write("table4.csv", t4)
        t3 = tables.table3_frame(result.left_out, memory_of) if "table3" in parts else None
        if t3 is not None and not t3.empty:
            write("table3.md", tables.table3_markdown(t3))
            write("table3.csv", t3)
            explained = tables.table3_explained(t3, memory_of)
        if {"sweep", "figures"} & set(parts):
            records, specs = frame.to_dict(orient="records"), plan.sweep_configs()
            sweep = frame[[any(row_measures(r, s) for s in specs) for r in records]]
        if "sweep" in parts:
            write("sweep.csv", sweep)
        if "figures" in parts:
            from mbprof.report.figures import write_figures

            write("pareto.md", write_figures(sweep, stage, result))
        if t4 is not None:
            write("inconsistencies.md", tables.inconsistencies_markdown(t4, explained, timm()))
        if phone is not None:
            import pandas as pd

            from mbprof.report.figures import write_phone

            write_phone(stage, phone[0], result, environment_text(pd.DataFrame(phone[0])), phone[1])
        text = readme_markdown(result, frame, t4, load_at_start)
        (stage / "README.md").write_text(text, encoding="utf-8")
        result.files.insert(0, ("README.md", "This index"))


# The environment columns the sentence names, in its order, each with its label.
_LABELS = {"cpu_model": "", "device_name": "", "backend": "backend ", "dtype": ""}
_LABELS |= {"batch": "batch ", "threads": "threads ", "torch_version": "torch "}


def environment_text(frame: pd.DataFrame) -> str:
    """Where latency was measured, from the frame's environment columns."""
    parts: list[str] = []
    for key in (k for k in _LABELS if k in frame.columns):
        # 1.0 as 1: a column with empty cells (a failed row) reads its integers as floats
        values = frame[key].dropna()
        values = values.map(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
        values = values.astype(str).unique()
        text = f"{_LABELS[key]}{values[0]}" if len(values) == 1 and values[0] else ""
        if text and text not in parts:
            parts.append(text)
    return ", ".join(parts) or "this machine"


def readme_markdown(
    result: ReproduceResult,
    frame: pd.DataFrame,
    t4: pd.DataFrame | None,
    load_at_start: tuple[float, float] | None,
) -> str:
    """The README: how the folder was made, its files, headline figures, what was left out."""
    from importlib.metadata import PackageNotFoundError, version

    from mbprof import __version__

    sections = []
    if t4 is not None and not t4.empty:
        keys = ("madds", "params")
        rows = [
            [r["network"]] + [f"{r[f'paper_{k}_m']:g}M / {millions(r[k])}" for k in keys]
            for r in t4.to_dict(orient="records")
        ]
        headers = ["Network", "MAdds: paper / mbprof", "Params: paper / mbprof"]
        table = markdown_grid(headers, rows, [False, True, True])
        sections.append(fill("readme", "table", table=table))
    v1, v2 = plan.v1_v2(frame)  # the paper's section 5.1 claim, in mbprof's figures
    if "peak_act_bytes_efficient" in frame.columns and v1 is not None and v2 is not None:
        a, b, c = v1["peak_act_bytes"], v2["peak_act_bytes"], v2["peak_act_bytes_efficient"]
        peaks = {"v1": kilobytes(a), "v2": kilobytes(b), "efficient": kilobytes(c)}
        sections.append(fill("readme", "peaks", **peaks, ratio=a / c))
    if any(plan.is_measured(c) and c.startswith("latency") for c in frame.columns):
        # the machine's load from the start to now: latency on a shared machine is slower
        end, start, load = machine_load(), load_at_start, ""
        if start is not None and end is not None:
            load = fill("readme", "load", start=start[0], end=end[0], cores=os.cpu_count() or 1)
        sections.append(fill("readme", "latency", environment=environment_text(frame), load=load))
    if result.findings:
        sections.append(fill("readme", "findings", findings=lines(result.findings)))
    if result.left_out:
        left_out = lines(f"- {item}" for item in result.left_out)
        sections.append(fill("readme", "left_out", left_out=left_out))
    files = [[f"[{p}]({p})", w] for p, w in result.files]
    files = markdown_grid(["File", "What it holds"], files, [False, False])
    versions = [f"mbprof {__version__}"]
    for package in ("torch", "fvcore"):
        with contextlib.suppress(PackageNotFoundError):
            versions.append(f"{package} {version(package)}")
    versions = ", ".join(versions)
    return fill("readme", "document", versions=versions, files=files, sections="".join(sections))


def machine_load() -> tuple[float, float] | None:
    """The 1- and 5-minute load averages (None where the system has none)."""
    with contextlib.suppress(OSError):
        return os.getloadavg()[:2]
    return None
