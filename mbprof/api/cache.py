"""The result cache: each configuration's row kept on disk under a key made of everything
that can change it, so that a repeated sweep answers without building a model.

Counts and memory figures are deterministic: their key is the configuration (model, width,
depth, resolution, classes, builder arguments), the memory settings, the weights file's
content, the counting engine, and the code that computes them (mbprof's version and a
digest of its source, torch's and fvcore's versions, Python's, and for a model outside
mbprof the content of the files of its module's package; an ``nn.Module`` instance given
from Python is never cached: no file holds its code). A latency is not deterministic: it
is cached only when asked (``latency=True``), under that key plus the latency settings and
the whole environment of the run (machine, CPU, device, threads, backend and its version).

Entries are JSON files in ``<cache_dir()>/results/`` named by the key's SHA-256, written
whole (``core.files.write_atomic``). An entry that does not read back as a row with the
same key (corrupt, truncated, another format) is ignored, and rewritten after the row is
measured again. Rows with an error are never cached (a model that did not fit may fit on
another day). A folder that cannot be written costs one warning, and the sweep runs on.

Torch-free: a sweep whose every row is cached imports no torch.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbprof.core.errors import MbprofError
from mbprof.core.files import cache_dir, write_atomic
from mbprof.core.records import ModelSpec, is_import_path
from mbprof.core.settings import MemorySettings, ResolvedLatency

FORMAT = 1  # of an entry; part of every key, so a new format never reads an old entry
RESULTS = "results"  # the folder under cache_dir() that holds mbprof's entries, and only them
_ENTRY = re.compile(r"[0-9a-f]{64}\.json")
_LEFTOVER = re.compile(r"\.[0-9a-f]{64}\.json\.\w+\.tmp")  # write_atomic's, after a kill
_PLAIN = (str, int, float, bool, type(None))
# A model's package larger than this is an installed library (``torch.nn:Identity``): its
# module's own file is read, its version is in the key already.
PACKAGE_FILES_MAX = 500


# --------------------------------------------------------------------------- the code's identity


def _digest(paths: list[Path], root: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(paths):
        sha.update(str(path.relative_to(root)).encode() + b"\0")
        sha.update(path.read_bytes() + b"\0")
    return sha.hexdigest()


def _distribution(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def code_versions() -> dict[str, Any]:
    """What computes a row in this process: mbprof (version and a digest of its source,
    so that an edited checkout never reads rows of its old code), torch, fvcore and Python.
    Read without importing torch."""
    import mbprof

    root = Path(mbprof.__file__).parent
    return {
        "mbprof": mbprof.__version__,
        "mbprof_source": _digest(list(root.rglob("*.py")), root),
        "torch": _distribution("torch"),
        "fvcore": _distribution("fvcore"),
        "python": "{}.{}".format(*sys.version_info[:2]),
    }


@functools.cache
def _module_digest(module: str) -> str | None:
    """The content of the code of ``module``: its file, and every Python file of the
    package it belongs to (a model's layers often live beside it). None when the module
    has no file to read (defined in a notebook, built in memory)."""
    loaded = sys.modules.get(module)
    origin = getattr(loaded, "__file__", None)
    if origin is None:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        origin = found.origin if found is not None else None
    if not origin or not Path(origin).is_file():
        return None
    top = module.partition(".")[0]
    package = sys.modules.get(top)
    folders = getattr(package, "__path__", None) if package is not None else None
    if "." in module and folders:
        root = Path(list(folders)[0])
        files = [p for p in root.rglob("*.py") if p.is_file()]
        if len(files) <= PACKAGE_FILES_MAX:
            return _digest(files, root.parent)
    path = Path(origin)
    return _digest([path], path.parent)


def _model_code(spec: ModelSpec) -> dict[str, Any] | None:
    """What builds the model of ``spec``, as part of its key: nothing more for mbprof's own
    models (the source digest covers them), the library's release for a library's
    (timm/mobileone_s0), the module's content for any other; None when
    that content cannot be read (the row is then not cached)."""
    from mbprof.models import HELD, get_model_info, hub_library

    if spec.model in HELD:  # its forward's code and weights have no file to key it by
        return None
    library = hub_library(spec.model)
    if library is not None:  # timm/mobileone_s0: the library's release builds it
        return {"builder": spec.model, "library": _distribution(library)}
    if is_import_path(spec.model):
        module, qualname = spec.model.partition(":")[::2]
    else:
        factory = get_model_info(spec.model).factory
        if isinstance(factory, str):
            module, qualname = factory.partition(":")[::2]
        else:
            module = getattr(factory, "__module__", None)
            qualname = getattr(factory, "__qualname__", None)
            if not isinstance(module, str) or not isinstance(qualname, str):
                return None
    if module == "mbprof" or module.startswith("mbprof."):
        return {"builder": f"{module}:{qualname}"}
    content = _module_digest(module)
    return None if content is None else {"builder": f"{module}:{qualname}", "code": content}


@functools.cache
def _file_digest(path: str) -> str:
    from mbprof.report.folder import sha256

    return sha256(Path(path))


# --------------------------------------------------------------------------- keys


def analysis_key(
    spec: ModelSpec,
    memory: MemorySettings | None,
    weights: str | Path | None = None,
    engine: str = "fvcore",
) -> dict[str, Any] | None:
    """The key of a configuration's counts (by ``engine``) and memory figures, or None
    when the row cannot be cached (builder arguments that are not plain values, a model
    whose code has no file, a weights file that cannot be read)."""
    if not all(isinstance(value, _PLAIN) for _, value in spec.kwargs):
        return None
    code = _model_code(spec)
    if code is None:
        return None
    weights_key = None
    if weights is not None:
        try:
            weights_key = _file_digest(str(Path(weights).resolve()))
        except OSError:
            return None
    return {
        "format": FORMAT,
        "kind": "analysis",
        "spec": {
            "model": spec.model,
            "width": spec.width,
            "depth": spec.depth,
            "resolution": list(spec.resolution),
            "num_classes": spec.num_classes,
            "kwargs": [[key, value] for key, value in spec.kwargs],
            "reparam": spec.reparam,
        },
        "memory": None if memory is None else {"dtype": memory.dtype, "chunks": memory.chunks},
        "weights": weights_key,
        "engine": engine,
        "model_code": code,
        "versions": code_versions(),
    }


def latency_key(base: dict[str, Any], latency: ResolvedLatency) -> dict[str, Any]:
    """The key of a configuration's latency: its analysis key (``base``), the resolved
    latency settings and the whole environment of the run (this machine, its CPU and
    device, torch and the backend's versions, threads)."""
    import dataclasses
    import platform

    from mbprof.analysis.latency.machine import environment

    return {
        **base,
        "kind": "latency",
        "latency": dataclasses.asdict(latency),
        "environment": dataclasses.asdict(environment(latency)),
        "machine": [platform.node(), platform.machine(), platform.platform()],
    }


def key_name(key: dict[str, Any]) -> str:
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class CacheInfo:
    """What ``mbprof cache info`` says: the folder, its entries and their bytes."""

    folder: Path
    entries: int
    bytes: int


def _say(text: str) -> None:
    warnings.warn(text, RuntimeWarning, stacklevel=3)


class ResultCache:
    """Rows on disk, read and written by the process that runs the sweep (workers only
    compute). ``warn`` receives the one warning about a folder that cannot be written."""

    def __init__(
        self,
        folder: str | Path | None = None,
        *,
        latency: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(folder) if folder is not None else cache_dir()
        self.latency = latency
        self._warn = warn or _say
        self._writable = True

    @property
    def folder(self) -> Path:
        return self.root / RESULTS

    def _path(self, key: dict[str, Any]) -> Path:
        return self.folder / f"{key_name(key)}.json"

    def get(self, key: dict[str, Any] | None) -> dict[str, Any] | None:
        """The row stored under ``key``; None when there is none or it does not read back
        whole (never trusted: a corrupt entry is a miss, rewritten by ``put``)."""
        if key is None:
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        row = entry.get("row")
        if not isinstance(row, dict) or not all(isinstance(v, _PLAIN) for v in row.values()):
            return None
        return row

    def put(self, key: dict[str, Any] | None, row: dict[str, Any]) -> None:
        """Store ``row`` under ``key`` (not a row with an error, nor one that JSON cannot
        hold exactly). A folder that cannot be written: one warning, then no more tries."""
        if key is None or not self._writable or row.get("error"):
            return
        if not all(isinstance(v, _PLAIN) for v in row.values()):
            return
        text = json.dumps({"key": key, "row": row}, allow_nan=True)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self._path(key), text)
        except (OSError, MbprofError) as exc:
            self._writable = False
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._warn(
                f"cannot write the result cache in {str(self.folder)!r} ({reason}); "
                "the sweep runs on without it"
            )

    def entries(self) -> list[Path]:
        """mbprof's entries (and half-written leftovers of its own); nothing else in the
        folder is ever counted or removed."""
        try:
            names = list(self.folder.iterdir())
        except OSError:
            return []
        return [p for p in names if (_ENTRY.fullmatch(p.name) or _LEFTOVER.fullmatch(p.name))]

    def info(self) -> CacheInfo:
        sizes = []
        for path in self.entries():
            try:
                sizes.append(path.stat().st_size)
            except OSError:
                continue
        return CacheInfo(self.folder, len(sizes), sum(sizes))

    def clear(self) -> CacheInfo:
        """Remove mbprof's entries (only them); returns what was removed."""
        removed, size = 0, 0
        for path in self.entries():
            try:
                bytes_ = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise MbprofError(
                    f"cannot remove {str(path)!r}: {(exc.strerror or str(exc)).lower()}"
                ) from None
            removed, size = removed + 1, size + bytes_
        try:
            self.folder.rmdir()  # only when empty: a file of anyone else's keeps it
        except OSError:
            pass
        return CacheInfo(self.folder, removed, size)


def cache_info(folder: str | Path | None = None) -> CacheInfo:
    """The result cache's folder, number of entries and bytes."""
    return ResultCache(folder).info()


def clear_cache(folder: str | Path | None = None) -> CacheInfo:
    """Empty the result cache (mbprof's entries only); returns what was removed."""
    return ResultCache(folder).clear()
