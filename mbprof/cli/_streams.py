"""Standard output and error that never end a command in a traceback: a closed stdout
(``mbprof models >&-``) is one line of error, and an ASCII locale (``LANG=C``,
``PYTHONIOENCODING=ascii``) prints ASCII look-alikes instead of a UnicodeEncodeError.
Nothing here imports torch."""

from __future__ import annotations

import codecs
import io
import os
import sys
import unicodedata

from mbprof.core.errors import MbprofError

# What a terminal that cannot show Unicode (LANG=C, PYTHONIOENCODING=ascii) gets instead of
# the characters mbprof and rich print: readable ASCII, never a UnicodeEncodeError. What can
# sit in a table cell (rich's truncation ellipsis, a header's delta, box lines) keeps one
# character, so that columns stay aligned.
_ASCII = {"≤": "<=", "≥": ">=", "×": "x", "…": "~", "–": "-", "—": "-", "→": "->"}
_ASCII.update({"←": "<-", "µ": "u", "±": "+-", "·": ".", "•": "*", "≈": "~", "Δ": "D"})
_ASCII.update({"‘": "'", "’": "'", "“": '"', "”": '"', "\u00a0": " "})


def _ascii_for(char: str) -> str:
    if char in _ASCII:
        return _ASCII[char]
    name = unicodedata.name(char, "")
    if name.startswith("BOX DRAWINGS"):
        return "-" if "HORIZONTAL" in name else "|" if "VERTICAL" in name else "+"
    if name.startswith(("FULL BLOCK", "LEFT ", "RIGHT ", "UPPER ", "LOWER ")) and "BLOCK" in name:
        return "#"
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or "?"


def _ascii_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    return "".join(_ascii_for(char) for char in text), error.end


codecs.register_error("mbprof-ascii", _ascii_fallback)


def _degrade_streams() -> None:
    """Let stdout and stderr print what their encoding lacks as ASCII look-alikes (an
    ASCII locale would otherwise end a normal command in UnicodeEncodeError)."""
    for stream in (sys.stdout, sys.stderr):
        if not isinstance(stream, io.TextIOWrapper) or stream.errors != "strict":
            continue
        try:
            "≤×…─".encode(stream.encoding)
        except UnicodeEncodeError:
            stream.reconfigure(errors="mbprof-ascii")
        except LookupError:
            pass


class _ClosedStdout(io.TextIOBase):
    """Stands in for a closed standard output (``mbprof models >&-``: Python then sets
    sys.stdout to None): writing to it is one line of error, not an AttributeError.
    Commands that write to --output files still work."""

    encoding = "utf-8"
    errors = "strict"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not text:
            return 0
        raise MbprofError(
            "standard output is closed, so the results cannot be printed; redirect it to a "
            "file, or give --output FILE"
        )

    def flush(self) -> None:
        pass


def prepare_streams() -> None:
    """Make stdout and stderr safe to print to before a command runs."""
    if sys.stdout is None:
        sys.stdout = _ClosedStdout()
    if sys.stderr is None:  # nowhere to say anything: the exit code has to do
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    _degrade_streams()
