"""A folder mbprof writes into without losing what the user keeps there: the files it wrote
are listed with their SHA-256 in ``.mbprof-manifest.json`` and only those, unchanged, are
ever replaced or removed; new files are staged inside the folder and renamed into place."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mbprof.core.errors import MbprofError

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = ".mbprof-manifest.json"

Owned = dict[str, list[str]]  # relative path -> the SHA-256 of each content mbprof wrote there


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(out: Path, known: Collection[str], option: str = "--out") -> Owned | None:
    """The files the manifest says mbprof wrote (None: no manifest); refused if untrusted."""
    path = out / MANIFEST
    if not os.path.lexists(path):
        return None
    payload = None
    if path.is_file() and not path.is_symlink():
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    ours = isinstance(payload, dict) and payload.get("written_by") == "mbprof"
    files = payload.get("files") if ours else None
    if not isinstance(files, dict) or any(
        name not in known or not isinstance(hashes, list) for name, hashes in files.items()
    ):
        raise MbprofError(
            f"{option}: {str(path)!r} is not a manifest that mbprof wrote; move it away or give "
            "another folder"
        )
    return {name: [h for h in hashes if isinstance(h, str)] for name, hashes in files.items()}


def _holds_what_mbprof_wrote(path: Path, hashes: list[str] | None) -> bool:
    """Whether ``path`` is a regular file with content mbprof wrote (None: any content)."""
    return stat.S_ISREG(os.lstat(path).st_mode) and (hashes is None or sha256(path) in hashes)


def check_folder(
    out: Path,
    planned: Collection[str],
    known: Collection[str],
    *,
    option: str = "--out",
    legacy: Callable[[Path], bool] | None = None,
) -> dict[str, list[str] | None]:
    """Refuse, before any work, a folder mbprof cannot write ``planned`` into safely."""
    if os.path.lexists(out) and not out.is_dir():
        raise MbprofError(f"{option}: {str(out)!r} is a file; give a folder")
    if not out.exists():
        parent = Path(os.path.realpath(out)).parent
        if not parent.is_dir():
            raise MbprofError(f"{option}: folder {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK):
            raise MbprofError(f"{option}: cannot write in {str(parent)!r}: permission denied")
        return {}
    if not os.access(out, os.W_OK | os.X_OK):
        raise MbprofError(f"{option}: cannot write in {str(out)!r}: permission denied")
    owned: dict[str, list[str] | None] | None = read_manifest(out, known, option)
    if owned is None and not any(out.iterdir()):
        owned = {}
    elif owned is None and legacy is not None and legacy(out):
        owned = {name: None for name in known if (out / name).is_file()}
    elif owned is None:
        raise MbprofError(
            f"{option}: {str(out)!r} already holds files that mbprof did not write (it has no "
            f"{MANIFEST}); give a new or empty folder"
        )
    for folder in sorted({str(PurePosixPath(name).parent) for name in planned} - {"."}):
        path = out / folder
        if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
            raise MbprofError(f"{option}: {str(path)!r} is not a folder mbprof made; move it away")
    for name in sorted(planned):
        path = out / name
        if not os.path.lexists(path):
            continue
        if name not in owned:
            raise MbprofError(
                f"{option}: {str(out / name)!r} is not a file mbprof wrote, and this run "
                "would replace it; move it away or give another folder"
            )
        if not _holds_what_mbprof_wrote(path, owned[name]):
            raise MbprofError(
                f"{option}: {str(out / name)!r} was changed since mbprof wrote it, and this "
                "run would replace it; move it away (or delete it) to regenerate it"
            )
    return owned


def _write_manifest(out: Path, files: Owned) -> None:
    from mbprof.core.files import write_atomic

    payload = {"written_by": "mbprof", "files": dict(sorted(files.items()))}
    write_atomic(out / MANIFEST, json.dumps(payload, indent=1) + "\n")


def install(staged: Path, out: Path, owned: dict[str, list[str] | None]) -> None:
    """Move the staged files into place and remove a previous run's leftovers it still owns."""
    fresh = {
        path.relative_to(staged).as_posix(): path
        for path in sorted(staged.rglob("*"))
        if path.is_file()
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
        if name in fresh or not os.path.lexists(path):
            continue
        if old is not None and _holds_what_mbprof_wrote(path, old):
            path.unlink()
            folder = path.parent
            while folder != out and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                folder = folder.parent
    _write_manifest(out, {name: [digest] for name, digest in hashes.items()})


@contextlib.contextmanager
def staged(out: Path, owned: dict[str, list[str] | None]) -> Iterator[Path]:
    """A fresh folder inside ``out`` (made with the user's umask if missing) for the new files,
    installed when the block ends; on an error nothing changes (and a new ``out`` goes)."""
    try:
        out.mkdir()
        created = True
    except FileExistsError:
        created = False
    stage = Path(tempfile.mkdtemp(prefix=".mbprof-stage-", dir=out))
    try:
        yield stage
        install(stage, out, owned)
        created = False  # written: out stays even if removing the stage fails below
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()


@dataclass
class ReproduceResult:
    """What ``reproduce`` wrote and what it had to leave out."""

    out: Path
    files: list[tuple[str, str]] = field(default_factory=list)  # (relative path, what it holds)
    left_out: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # measured conclusions for the README


def write_file(root: Path, relative: str, text: str, result: ReproduceResult, what: str) -> None:
    """Write ``root/relative`` and list it in ``result`` as holding ``what``."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    result.files.append((relative, what))


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as the report's CSV files hold it: no index, one LF a line."""
    import io

    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()
