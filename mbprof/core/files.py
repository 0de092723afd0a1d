"""Files that mbprof writes: whole or not at all, and never over what is not a regular file
(a device, a FIFO, ``/dev/stdout``: written through)."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

from mbprof.core.errors import MbprofError

_DESCRIPTOR = re.compile(r"/(proc/(self|thread-self|\d+)/fd|dev/fd)/\d+")


def _found(path: Path) -> tuple[os.stat_result | None, bool]:
    """``path``'s status (None: none yet; its folder is checked by the caller) and whether it
    is written through rather than replaced: a device, a FIFO, a socket, or (a link to) an
    open file descriptor such as ``/dev/stdout``."""
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None, False
    if not stat.S_ISREG(found.st_mode):
        return found, True
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if _DESCRIPTOR.fullmatch(current):
            return found, True
        if not os.path.islink(current):
            break
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    return found, False


def check_writable(path: str | Path, option: str = "--output") -> Path:
    """Refuse, before any work, a path that cannot be written."""
    path = Path(path)
    found, streamed = _found(path)
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise MbprofError(f"{option}: {str(path)!r} is a directory; give a file path")
    if streamed:
        if not os.access(path, os.W_OK):
            raise MbprofError(f"{option}: cannot write {str(path)!r}: permission denied")
        return path
    target = Path(os.path.realpath(path))  # a link's target is written, never the link
    parent = target.parent
    if not parent.is_dir():
        shown = path.parent if str(path.parent) else Path(".")
        raise MbprofError(
            f"{option}: cannot write {str(path)!r}: folder {str(shown)!r} does not exist"
        )
    if not os.access(parent, os.W_OK) or (found is not None and not os.access(path, os.W_OK)):
        raise MbprofError(f"{option}: cannot write {str(path)!r}: permission denied")
    return path


def _umask() -> int:
    try:  # Linux says it without changing it (no window for other threads)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the portable way to read it is to set it
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` whole or not at all (a temporary file renamed into place, keeping the
    old file's permissions); a device, FIFO or open descriptor is written through."""
    path = Path(path)
    payload = data if isinstance(data, bytes) else data.encode("utf-8")
    found, streamed = _found(path)
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise MbprofError(f"cannot write {str(path)!r}: it is a directory")
    tmp = None
    try:
        if streamed:  # appending: a descriptor redirected with >> keeps what it holds
            with open(path, "ab") as handle:
                handle.write(payload)
            return path
        target = Path(os.path.realpath(path))
        mode = stat.S_IMODE(found.st_mode) if found is not None else 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            error = (exc.strerror or str(exc)).lower()
            raise MbprofError(f"cannot write {str(path)!r}: {error}") from None
        raise
    return path


def cache_dir() -> Path:
    """``$MBPROF_CACHE_DIR``, else ``$XDG_CACHE_HOME/mbprof``, else ``~/.cache/mbprof``."""
    if os.environ.get("MBPROF_CACHE_DIR"):
        return Path(os.environ["MBPROF_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mbprof"
