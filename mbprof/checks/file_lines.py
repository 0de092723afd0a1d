"""Where things are written in a budget file (tomllib gives values, not positions: a light
scan of the text points at lines), for refusals that name file, line and key."""

from __future__ import annotations

import re
from collections.abc import Mapping

from mbprof.core.errors import MbprofError


class BudgetFileError(MbprofError):
    """A budget file that cannot be read: the message starts with ``file:line:``."""

    def __init__(self, message: str, source: str = "", line: int | None = None) -> None:
        where = f"{source}:{line}: " if line else (f"{source}: " if source else "")
        super().__init__(where + message)
        self.source, self.line, self.reason = source, line, message


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
        return nearest_line(self.budgets[index], key) if index < len(self.budgets) else None


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
        reason = message.replace("(at end of document)", "at the end of the file").strip()
        return max(1, len(text.splitlines())), reason
    return None, message


def deep_line(text: str, depth: int = 100) -> int | None:
    """The line where brackets and braces first nest ``depth`` deep (a rough count)."""
    level, quote = 0, ""
    for number, line in enumerate(text.splitlines(), start=1):
        escaped = False
        for char in line:
            if quote:
                if not escaped and char == quote:
                    quote = ""
                escaped = not escaped and char == "\\" and quote == '"'
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
