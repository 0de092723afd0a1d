"""Checked limits as a document (table, CSV, JSON, Markdown), as GitHub workflow
annotations with a step summary, and as JUnit XML (one testcase per limit)."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.checks.limits import ERROR, EXCEEDED, HELD, TOLERATED, UNSTABLE, Result, failing
from mbprof.core.units import format_value
from mbprof.frame.columns import METRICS
from mbprof.frame.rows import cell
from mbprof.render.document import Document, Table, data_frame, md_text, safe_text, to_markdown

if TYPE_CHECKING:
    import pandas as pd

STATUS_ORDER = (HELD, TOLERATED, UNSTABLE, EXCEEDED, ERROR)
RAW = ("source", "line", "model", "unit", "limit", "measured", "headroom", "error")


def _figures(r: Result) -> dict[str, str]:
    """Limit, measured and headroom as text in the metric's unit."""
    values = {"limit": r.limit.value, "measured": r.measured, "headroom": r.headroom}
    return {k: format_value(v, r.limit.metric.shown) for k, v in values.items()}


def results_frame(results: Sequence[Result]) -> pd.DataFrame:
    """One row per limit: raw numbers beside their text (for terminal and Markdown)."""
    rows = []
    for r in results:
        row = {"where": r.where, "configuration": r.configuration, "metric": r.limit.name}
        row.update({f"{k}_text": v for k, v in _figures(r).items()})
        row.update(headroom_pct=r.headroom_pct, tolerance_pct=r.limit.tolerance_pct)
        row.update(status=r.status, source=r.budget.source, line=r.limit.line or r.budget.line)
        row.update(model=r.budget.spec.model, unit=r.limit.metric.kind, limit=r.limit.value)
        row.update(measured=r.measured, headroom=r.headroom, error=r.error or r.reasons or None)
        rows.append(row)
    return data_frame(rows)


def check_title(budgets: str | Path | None, baseline: str | Path | None) -> str:
    pairs = (("budgets", budgets), ("baseline", baseline))
    return "Limits: " + "; ".join(f"{name} {path}" for name, path in pairs if path is not None)


def environment_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where latencies were measured, from the rows' environment columns (each said once)."""
    seen: dict[str, None] = {}
    for row in (r for r in rows if cell(r, "latency_ms") is not None):
        if (where := cell(row, "cpu_model")) is not None:
            gpu = cell(row, "device") == "cuda"
            where = f"{cell(row, 'device_name')} (host CPU {where})" if gpu else f"CPU {where}"
            said = f"Latency measured on this machine's {where}, torch {cell(row, 'torch_version')}"
            seen[said + "; timings vary with the machine and its load."] = None
    return list(seen)


def failure_lines(results: Sequence[Result], allow_unstable: bool = False) -> list[str]:
    """The recap for stderr, each line starting with ``mbprof:``, its text made safe."""
    failed = failing(results, allow_unstable)
    lines = [f"mbprof: {len(failed)} of {len(results)} limits not met"] if failed else []
    lines += [f"mbprof: {safe_text(f'{r.where}: {r.message}')}" for r in failed]
    tolerated = [r for r in results if allow_unstable and r.status == UNSTABLE]
    warning = "mbprof: warning: {} (tolerated: --allow-unstable)"
    return lines + [warning.format(safe_text(f"{r.where}: {r.message}")) for r in tolerated]


def check_document(
    results: Sequence[Result], title: str, extra_notes: Sequence[str] = ()
) -> Document:
    counts = Counter(r.status for r in results)
    used = dict.fromkeys(r.limit.key for r in results)
    notes = [f"{METRICS[k].label} ({k}): {METRICS[k].what}." for k in used]
    notes += [
        "Headroom = limit - measured, and as a percentage of the limit; negative when over.",
        "Status: held (measured <= limit), tolerated (over the limit by no more than its "
        "tolerance: passes with a warning), exceeded (fails), error (not measured: fails), "
        "unstable (a latency measured unstably, see why in the error column: neither held "
        "nor exceeded; fails unless tolerated).",
        "Counts and bytes use decimal prefixes: M = 1e6, MB = 1e6 bytes.",
    ]
    if any(r.limit.origin == "baseline" for r in results):
        notes.append(
            "Baseline rows: the limit is the saved figure; a fresh figure passes while "
            "<= saved x (1 + tolerance)."
        )
    notes += list(extra_notes)
    parts = [f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s]]
    notes.append(f"{len(results)} limits checked: " + ", ".join(parts))
    hidden = RAW + (() if any(r.limit.tolerance_pct for r in results) else ("tolerance_pct",))
    secondary = ("tolerance_pct", "headroom_pct", "where", "headroom_text", "limit_text")
    table = Table("limits", results_frame(results), hidden_in_text=hidden, secondary=secondary)
    meta = {"passed": all(r.passed for r in results)}
    meta["summary"] = {"checked": len(results), **{s: counts[s] for s in STATUS_ORDER}}
    return Document(title, tables=[table], notes=notes, meta=meta, kind="check")


# --- GitHub Actions ------------------------------------------------------------------------
# The runner reads workflow commands on stdout and stderr, a line at a time: everything
# printed here is either one of mbprof's own commands, whose data and properties are
# escaped as the runner unescapes them, or Markdown whose lines start with mbprof's text.


def _escaped(text: str, *, value: bool = False) -> str:
    """A command's data as the runner decodes it (a property ``value``: ``:`` and ``,`` too)."""
    text = safe_text(text, keep_newlines=True)
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if value else text


def annotation(
    level: str, message: str, file: str = "", line: int | None = None, title: str = ""
) -> str:
    """One workflow command: ``::error file=F,line=L,title=T::message``."""
    path = Path(file)
    if file and path.is_absolute():  # GitHub matches paths relative to the repository
        with contextlib.suppress(ValueError):
            path = path.relative_to(Path.cwd().resolve())
    props = [f"file={_escaped(path.as_posix(), value=True)}"] if file else []
    props += [f"line={int(line)}"] if line else []
    props += [f"title={_escaped(title, value=True)}"] if title else []
    head = f"::{level} " + ",".join(props) if props else f"::{level}"
    return f"{head}::{_escaped(message)}"


def github_annotations(results: Sequence[Result], allow_unstable: bool = False) -> str:
    """An error for each failing limit, a warning for each tolerated one."""
    lines = ""
    for r in (r for r in results if r.status != HELD):
        tolerated = r.status == TOLERATED or (allow_unstable and r.status == UNSTABLE)
        title = f"mbprof {r.limit.origin}: {r.limit.name} {r.status}"
        where = (r.budget.source, r.limit.line or r.budget.line, title)
        lines += annotation("warning" if tolerated else "error", r.message, *where) + "\n"
    return lines


def github_summary(doc: Document, results: Sequence[Result], allow_unstable: bool = False) -> str:
    """A Markdown step summary: a verdict line, then the document."""
    failed = failing(results, allow_unstable)
    verdict = f"**mbprof check passed**: all {len(results)} limits met."
    if failed:
        verdict = f"**mbprof check failed**: {len(failed)} of {len(results)} limits not met."
    lines = [verdict, ""] + [f"- {md_text(f'{r.message} ({r.where})')}" for r in failed]
    return "\n".join(lines).rstrip() + "\n\n" + to_markdown(doc)


# --- JUnit XML -------------------------------------------------------------------------------


def _counts(results: Sequence[Result], allow_unstable: bool) -> dict[str, str]:
    counts = Counter(r.status for r in results)
    errors = counts[ERROR] + (0 if allow_unstable else counts[UNSTABLE])
    return {"tests": str(len(results)), "failures": str(counts[EXCEEDED]), "errors": str(errors)}


def junit_xml(results: Sequence[Result], seconds: float = 0.0, allow_unstable: bool = False) -> str:
    """JUnit XML: a testsuite per file, a testcase per limit, text through ``safe_text``."""
    counts = _counts(results, allow_unstable)
    root = ET.Element("testsuites", name="mbprof check", **counts, time=f"{seconds:.3f}")
    for source in dict.fromkeys(r.budget.source for r in results):
        mine = [r for r in results if r.budget.source == source]
        skipped = str(Counter(r.status for r in mine)[UNSTABLE] if allow_unstable else 0)
        counts = _counts(mine, allow_unstable)
        file = safe_text(source)
        suite = ET.SubElement(root, "testsuite", name=file, **counts, skipped=skipped)
        for r in mine:
            cond = f" [{r.limit.conditions}]" if r.limit.conditions else ""
            name, label = safe_text(f"{r.limit.name}{cond}"), safe_text(r.budget.label)
            case = ET.SubElement(suite, "testcase", classname=label, name=name, file=file, time="0")
            if line := r.limit.line or r.budget.line:
                case.set("line", str(line))
            props = ET.SubElement(case, "properties")
            pcts = {"headroom_pct": r.headroom_pct, "tolerance_pct": r.limit.tolerance_pct}
            figures = {**_figures(r), **{k: format_value(v, "percent") for k, v in pcts.items()}}
            for key, value in {**figures, "status": r.status}.items():
                ET.SubElement(props, "property", name=key, value=value)
            message = safe_text(r.message)
            if r.status == TOLERATED:
                ET.SubElement(case, "system-out").text = message
            elif r.status == UNSTABLE and allow_unstable:
                ET.SubElement(case, "skipped", message=message)
            elif r.status in (EXCEEDED, ERROR, UNSTABLE):
                tag = "failure" if r.status == EXCEEDED else "error"
                text = safe_text(r.error if r.status == ERROR else r.reasons)
                text = f"{message}\n{safe_text(r.where)}" if r.status == EXCEEDED else text
                ET.SubElement(case, tag, message=message, type=r.status).text = text
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
