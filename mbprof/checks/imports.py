"""Which code a file may import: a budget, baseline or results file is data, so an import
path in it is refused, before anything is imported, unless its module is allowed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from mbprof.checks.limits import Budget
from mbprof.core.errors import MbprofError
from mbprof.core.records import is_import_path

ANY_MODULE = "*"
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def parse_allow_import(
    items: Iterable[str] | None, option: str = "--allow-import"
) -> tuple[str, ...]:
    """['mypkg.models', 'a,b.c'] -> ('mypkg.models', 'a', 'b.c'); ``"*"`` allows any."""
    allowed: list[str] = []
    for item in [items] if isinstance(items, str) else items or []:
        for name in str(item).split(","):
            name = name.strip()
            if name != ANY_MODULE and not _MODULE_NAME.fullmatch(name):
                raise MbprofError(
                    f"{option}: {name!r} is not a module or package name (such as "
                    "mypkg.models), nor '*' (any module)"
                )
            allowed.append(name)
    return tuple(dict.fromkeys(allowed))


def import_allowed(module: str, allow_import: Iterable[str]) -> bool:
    """Whether ``module`` is or is inside one of ``allow_import`` (not ``mypkgevil``)."""
    return any(
        name == ANY_MODULE or module == name or module.startswith(name + ".")
        for name in parse_allow_import(allow_import)
    )


def import_refusal(model: str, kind: str, allow_import: Iterable[str] = ()) -> str | None:
    """Why ``model``, written in a ``kind`` of file, may not be imported; None when it may."""
    module = model.partition(":")[0]
    # is_import_path: the very test by which the model lookup decides to import.
    if not is_import_path(model) or import_allowed(module, allow_import):
        return None
    flag = f"--allow-import {module}" if _MODULE_NAME.fullmatch(module) else "--allow-import"
    return (
        f"{model!r} is an import path; a {kind} may name registered models only (see mbprof "
        f"models); to let it import code, pass {flag}"
    )


def refuse_imports(budgets: Iterable[Budget], allow_import: Iterable[str] = ()) -> None:
    """Refuse the first budget whose model is an import path outside ``allow_import``."""
    allowed = parse_allow_import(allow_import)
    for budget in budgets:
        kind = "results file" if budget.from_rows else "budget file"
        if reason := import_refusal(budget.spec.model, kind, allowed):
            raise budget.error(f"model {reason}" if budget.from_rows else reason, "model")


def refuse_row_imports(
    rows: Iterable[Mapping[str, Any]], source: str, allow_import: Iterable[str] = ()
) -> None:
    """The same for the rows of a results file read as figures (``check --results``)."""
    allowed = parse_allow_import(allow_import)
    for number, row in enumerate(rows, start=1):
        model = row.get("model")
        if isinstance(model, str) and (reason := import_refusal(model, "results file", allowed)):
            raise MbprofError(f"{source} row {number}: model {reason}")
