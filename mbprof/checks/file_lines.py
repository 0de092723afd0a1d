"""Where things are written in a budget file (tomllib gives values, not positions: a light
scan of the text points at lines), and typed values read from its tables, each refusal
naming file, line and key."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mbprof.core.errors import MbprofError
from mbprof.core.settings import CHUNKS_PER_CHANNEL, parse_chunks


class BudgetFileError(MbprofError):
    """A budget file that cannot be read: the message starts with ``file:line:``."""

    def __init__(self, message: str, source: str = "", line: int | None = None) -> None:
        where = f"{source}:{line}: " if line else (f"{source}: " if source else "")
        super().__init__(where + message)
        self.source = source
        self.line = line
        self.reason = message


_HEADER = re.compile(r"\s*(\[\[|\[)\s*([A-Za-z0-9_.\"' -]+?)\s*(\]\]|\])")
_KEY = re.compile(r"\s*([A-Za-z0-9_.-]+|\"[^\"]*\"|'[^']*')\s*=")


class KeyLines:
    """Where table headers and keys are written (it only points at a line)."""

    def __init__(self, text: str) -> None:
        self.top: dict[str, int] = {}
        self.budgets: list[dict[str, int]] = []
        current: dict[str, int] | None = self.top
        prefix = ""
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                name = header.group(2).replace('"', "").replace("'", "").replace(" ", "")
                if header.group(1) == "[[" and name == "budget":
                    current, prefix = {"": number}, ""
                    self.budgets.append(current)
                elif name.startswith("budget.") and self.budgets:
                    current, prefix = self.budgets[-1], name.removeprefix("budget.") + "."
                    current.setdefault(prefix[:-1], number)
                else:
                    current, prefix = self.top, name + "."
                    self.top.setdefault(name, number)
                continue
            key = _KEY.match(line)
            if key and current is not None:
                current.setdefault(prefix + key.group(1).strip("\"'"), number)

    def budget(self, index: int, key: str = "") -> int | None:
        """The line of ``key`` in the ``index``-th budget (0-based), or of its nearest parent."""
        if index >= len(self.budgets):
            return None
        return nearest_line(self.budgets[index], key)


def nearest_line(lines: Mapping[str, int], key: str) -> int | None:
    """The line of ``key``, else of its nearest written parent, else of the header."""
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return lines.get("")


def toml_error_line(message: str, text: str) -> tuple[int | None, str]:
    """The line of a tomllib error and its reason in words ("at column 7")."""
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        reason = message[: match.start()].strip()
        return int(match.group(1)), f"{reason} at column {match.group(2)}"
    if "(at end of document)" in message:
        return max(1, len(text.splitlines())), message.replace(
            "(at end of document)", "at the end of the file"
        ).strip()
    return None, message


def deep_line(text: str, depth: int = 100) -> int | None:
    """The line where brackets and braces first nest ``depth`` deep (a rough count)."""
    level, quote = 0, ""
    for number, line in enumerate(text.splitlines(), start=1):
        escaped = False
        for char in line:
            if quote:
                if escaped:
                    escaped = False
                elif char == "\\" and quote == '"':
                    escaped = True
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "#":
                break
            elif char in "[{":
                level += 1
                if level >= depth:
                    return number
            elif char in "]}":
                level = max(0, level - 1)
    return None


def closest(word: str, allowed: Iterable[str]) -> str:
    """'; did you mean 'max_madds'?' for a close word, else ''."""
    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class TableReader:
    """Reads the values of one budget file's tables (``index``: a budget's place, 0-based)."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = KeyLines(text)

    def fail(self, message: str, index: int | None = None, key: str = "") -> BudgetFileError:
        line = self.lines.budget(index, key) if index is not None else self.lines.top.get(key)
        where = f"budget {index + 1}" if index is not None else ""
        if index is not None and key:
            where += f", {key}"
        return BudgetFileError(f"{where}: {message}" if where else message, self.source, line)

    def expect(self, ok: bool, index: int, key: str, value: Any, expected: str) -> None:
        if not ok:
            raise self.fail(f"expected {expected}, got {type_name(value)} {value!r}", index, key)

    def wrap(self, index: int, key: str, parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except MbprofError as exc:
            message = str(exc)
            for prefix in (f"{key}: ", f"{key.rpartition('.')[2]}: "):
                message = message.removeprefix(prefix)
            raise self.fail(message, index, key) from None

    def unknown_keys(
        self, table: Mapping[str, Any], allowed: tuple[str, ...], index: int, where: str
    ):
        for key in table:
            if key not in allowed:
                full = f"{where}.{key}" if where else key
                raise self.fail(
                    f"unknown key {key!r}{closest(key, allowed)} (allowed: {', '.join(allowed)})",
                    index,
                    full,
                )

    def number(self, table: Mapping[str, Any], key: str, index: int, default: float) -> float:
        value = table.get(key, default)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        self.expect(ok and math.isfinite(value) and value > 0, index, key, value, "a number > 0")
        return float(value)

    def integer(
        self,
        table: Mapping[str, Any],
        key: str,
        index: int,
        minimum: int,
        where: str = "",
        maximum: int | None = None,
    ):
        value = table.get(key)
        if value is None:
            return None
        full = f"{where}.{key}" if where else key
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        self.expect(ok, index, full, value, f"an integer >= {minimum}")
        if maximum is not None and value > maximum:
            raise self.fail(f"{value} is too large; give at most {maximum:,}", index, full)
        return value

    def choice(self, table: Mapping[str, Any], key: str, index: int, where: str, allowed: tuple):
        value = table.get(key)
        if value is None:
            return None
        if value not in allowed:
            raise self.fail(
                f"{value!r} is not allowed; expected one of {', '.join(allowed)}"
                f"{closest(str(value), allowed) if isinstance(value, str) else ''}",
                index,
                f"{where}.{key}",
            )
        return value

    def chunks(self, table: Mapping[str, Any], index: int, where: str) -> int | None:
        value = table.get("chunks")
        if value is None:
            return None
        ok = isinstance(value, (int, str)) and not isinstance(value, bool)
        self.expect(
            ok, index, f"{where}.chunks", value, f'an integer >= 1 or "{CHUNKS_PER_CHANNEL}"'
        )
        return self.wrap(index, f"{where}.chunks", parse_chunks, value, "chunks")

    def boolean(self, table: Mapping[str, Any], key: str, index: int, where: str) -> bool | None:
        value = table.get(key)
        if value is None:
            return None
        self.expect(isinstance(value, bool), index, f"{where}.{key}", value, "true or false")
        return value
