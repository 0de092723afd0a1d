"""Text from users' files, made safe to print: the one place that does it.

Budget files, results files and accuracy tables are data, yet their text (budget names,
model names and arguments, paths, error messages) reaches terminals, pipes and CI logs.
There it must not act:

- a terminal obeys control characters (ESC[2J clears the screen, colour codes, BEL) and
  bidi overrides reorder what is shown: they are shown escaped (``\\x1b``, ``\\u202e``);
- a newline would let the text start a line of its own: shown as ``\\n``, so each value
  stays on the line mbprof began;
- GitHub's runner reads workflow commands on stdout and stderr: ``::cmd::`` at the start of
  a line (after leading whitespace) and the legacy ``##[cmd]`` anywhere in a line. Both are
  broken with a backslash (``\\::``, ``##\\[``), which Markdown renders as the original.

Torch-free (the CLI's error line uses it).
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls, DEL, C1 controls, line/paragraph separators, and the bidi marks, embeddings,
# overrides and isolates (U+200E/F, U+061C, U+202A-E, U+2066-9).
_OTHERS = "\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_BUT_NEWLINES = re.compile(f"[\x00-\x09\x0b\x0c\x0e-\x1f{_OTHERS}]")  # LF, CR kept
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# `::` where a line (or a wrapped line) could start with it: at the start or after whitespace.
_COMMAND_START = re.compile(r"(^|\s)::")
LEGACY_COMMAND = "##["


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe_text(value: Any, keep_newlines: bool = False) -> str:
    """``value`` as text that cannot control a terminal or a CI log.

    ``keep_newlines`` leaves LF and CR as they are, for a caller that encodes them itself
    (GitHub annotations turn them into %0A and %0D).
    """
    text = str(value)
    text = (_UNSAFE_BUT_NEWLINES if keep_newlines else _UNSAFE).sub(_escaped, text)
    text = _COMMAND_START.sub(lambda m: m.group(1) + "\\::", text)
    return text.replace(LEGACY_COMMAND, "##\\[")


def safe_json(text: str) -> str:
    """JSON text whose strings cannot hold the legacy ``##[`` command. ``json.dumps``
    already escapes control characters; ``[`` written as ``\\u005b`` reads back as the
    same string, so the data are unchanged. (``#`` appears only inside JSON strings.)"""
    return text.replace(LEGACY_COMMAND, "##\\u005b")
