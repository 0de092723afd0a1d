"""The result cache (docs/sweeps.md): each row on disk as JSON under the SHA-256 of a key of
everything that can change it (the code's versions included); an entry that does not read
back whole is a miss, a row with an error is never kept. Torch-free."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import platform
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mbprof.core.errors import MbprofError
from mbprof.core.files import cache_dir, write_atomic
from mbprof.core.records import ModelSpec, is_import_path
from mbprof.core.settings import MemorySettings, ResolvedLatency
from mbprof.models import HELD, get_model_info, hub_library

FORMAT = 1  # of an entry; part of every key, so a new format never reads an old entry
RESULTS = "results"  # the folder under cache_dir() that holds mbprof's entries, and only them
_ENTRY = re.compile(r"[0-9a-f]{64}\.json")
_LEFTOVER = re.compile(r"\.[0-9a-f]{64}\.json\.\w+\.tmp")  # write_atomic's, after a kill
_PLAIN = (str, int, float, bool, type(None))
# A model's package larger than this is an installed library (``torch.nn:Identity``): its
# module's own file is read, its version is in the key already.
PACKAGE_FILES_MAX = 500


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
    """What computes a row in this process: mbprof (and a digest of its source), torch, fvcore
    and Python, read without importing torch."""
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
    """The digest of ``module``'s package (its layers often live beside it), None without a file."""
    loaded = sys.modules.get(module)
    origin = getattr(loaded, "__file__", None)
    if origin is None:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        origin = getattr(found, "origin", None)
    if not origin or not Path(origin).is_file():
        return None
    folders = getattr(sys.modules.get(module.partition(".")[0]), "__path__", None)
    if "." in module and folders:
        root = Path(list(folders)[0])
        files = [p for p in root.rglob("*.py") if p.is_file()]
        if len(files) <= PACKAGE_FILES_MAX:
            return _digest(files, root.parent)
    path = Path(origin)
    return _digest([path], path.parent)


def _model_code(spec: ModelSpec) -> dict[str, Any] | None:
    """What builds the model of ``spec``, for its key; None when it cannot be read (not cached)."""
    if spec.model in HELD:  # its forward's code and weights have no file to key it by
        return None
    library = hub_library(spec.model)
    if library is not None:  # timm/mobileone_s0: the library's release builds it
        return {"builder": spec.model, "library": _distribution(library)}
    factory = spec.model if is_import_path(spec.model) else get_model_info(spec.model).factory
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


def analysis_key(
    spec: ModelSpec,
    memory: MemorySettings | None,
    weights: str | Path | None = None,
    engine: str = "fvcore",
) -> dict[str, Any] | None:
    """The key of a configuration's counts and memory figures, or None: not to be cached."""
    code = _model_code(spec) if all(isinstance(v, _PLAIN) for _, v in spec.kwargs) else None
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
            **{k: getattr(spec, k) for k in ("model", "width", "depth", "num_classes", "reparam")},
            "resolution": list(spec.resolution),
            "kwargs": [[key, value] for key, value in spec.kwargs],
        },
        "memory": None if memory is None else {"dtype": memory.dtype, "chunks": memory.chunks},
        "weights": weights_key,
        "engine": engine,
        "model_code": code,
        "versions": code_versions(),
    }


def latency_key(base: dict[str, Any], latency: ResolvedLatency) -> dict[str, Any]:
    """The analysis key ``base`` with the latency settings and the run's whole environment."""
    from mbprof.analysis.latency.machine import environment

    return {
        **base,
        "kind": "latency",
        "latency": asdict(latency),
        "environment": asdict(environment(latency)),
        "machine": [platform.node(), platform.machine(), platform.platform()],
    }


def key_name(key: dict[str, Any]) -> str:
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(row: Any) -> bool:
    return isinstance(row, dict) and all(isinstance(v, _PLAIN) for v in row.values())


@dataclass(frozen=True)
class CacheInfo:
    """What ``mbprof cache info`` says."""

    folder: Path
    entries: int
    bytes: int


class ResultCache:
    """Rows on disk, read and written by the sweep's process; ``warn`` gets one warning."""

    def __init__(
        self,
        folder: str | Path | None = None,
        *,
        latency: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = (Path(folder) if folder is not None else cache_dir()) / RESULTS
        self.latency = latency
        self._warn = warn or functools.partial(warnings.warn, category=RuntimeWarning)
        self._writable = True

    def get(self, key: dict[str, Any] | None) -> dict[str, Any] | None:
        """The row stored under ``key``; None when there is none or it does not read back."""
        if key is None:
            return None
        try:
            entry = json.loads((self.folder / f"{key_name(key)}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # (a UnicodeDecodeError is a ValueError)
            return None
        row = entry.get("row") if isinstance(entry, dict) and entry.get("key") == key else None
        return row if _plain(row) else None

    def put(self, key: dict[str, Any] | None, row: dict[str, Any]) -> None:
        """Store ``row`` under ``key`` (not a row with an error, nor one JSON cannot hold)."""
        if key is None or not self._writable or row.get("error") or not _plain(row):
            return
        text = json.dumps({"key": key, "row": row}, allow_nan=True)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.folder / f"{key_name(key)}.json", text)
        except (OSError, MbprofError) as exc:
            self._writable = False
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._warn(
                f"cannot write the result cache in {str(self.folder)!r} ({reason}); "
                "the sweep runs on without it"
            )

    def info(self, clear: bool = False) -> CacheInfo:
        """mbprof's entries and leftovers (removed with ``clear``); nothing else in the folder
        is counted or removed."""
        try:
            names = list(self.folder.iterdir())
        except OSError:
            names = []
        count, size = 0, 0
        for path in names:
            if not (_ENTRY.fullmatch(path.name) or _LEFTOVER.fullmatch(path.name)):
                continue
            try:
                bytes_ = path.stat().st_size
                if clear:
                    path.unlink()
            except OSError as exc:
                if not clear or isinstance(exc, FileNotFoundError):
                    continue
                raise MbprofError(
                    f"cannot remove {str(path)!r}: {(exc.strerror or str(exc)).lower()}"
                ) from None
            count, size = count + 1, size + bytes_
        if clear:
            try:
                self.folder.rmdir()  # only when empty: a file of anyone else's keeps it
            except OSError:
                pass
        return CacheInfo(self.folder, count, size)


def cache_info(folder: str | Path | None = None) -> CacheInfo:
    return ResultCache(folder).info()


def clear_cache(folder: str | Path | None = None) -> CacheInfo:
    return ResultCache(folder).info(clear=True)
