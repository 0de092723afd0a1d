"""mbprof check"""

from __future__ import annotations

import os
import time
from enum import Enum
from pathlib import Path

import typer

from mbprof.cli._app import app, results_stream
from mbprof.cli._common import OUTPUT_OPTION, OutputFormat, check_output, check_outputs
from mbprof.core.errors import MbprofError

EXIT_EXCEEDED = 1


class CheckFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"
    github = "github"


def _fail_lines(results: list) -> None:
    """The recap on stderr: one line per failure, each starting with ``mbprof:`` (CI
    runners read workflow commands on stderr too, so the files' text is made safe)."""
    from mbprof.render.safe_text import safe_text

    failed = [r for r in results if not r.passed]
    typer.echo(f"mbprof: {len(failed)} of {len(results)} limits not met", err=True)
    for r in failed:
        typer.echo(f"mbprof: {safe_text(f'{r.where}: {r.message}')}", err=True)


@app.command("check")
def check_command(
    budgets: Path | None = typer.Argument(
        None, help="A TOML budget file (see examples/budgets.toml).", dir_okay=False
    ),
    baseline: Path | None = typer.Option(
        None,
        "--baseline",
        help="A saved result (mbprof compare --json FILE) to guard against regressions.",
        dir_okay=False,
    ),
    update_baseline: bool = typer.Option(
        False,
        "--update-baseline",
        help="Rewrite the baseline with the fresh figures (its regressions then do not fail).",
    ),
    tolerance: list[str] | None = typer.Option(
        None,
        "--tolerance",
        help="Baseline tolerance GROUP=PERCENT, GROUP one of madds, params, memory, latency "
        "(defaults: 0%, 0%, 0%, 15%). Repeatable.",
    ),
    results: Path | None = typer.Option(
        None,
        "--results",
        help="Check figures saved by mbprof compare (JSON or CSV) instead of measuring.",
        dir_okay=False,
    ),
    junit: Path | None = typer.Option(
        None, "--junit", help="Also write JUnit XML, one testcase per limit.", dir_okay=False
    ),
    fmt: CheckFormat = typer.Option(
        CheckFormat.table,
        "--format",
        "-f",
        help="table, csv, json, markdown, or github (workflow annotations and a step "
        "summary, written to $GITHUB_STEP_SUMMARY when set).",
    ),
    allow_import: list[str] | None = typer.Option(
        None,
        "--allow-import",
        metavar="MODULE",
        help="Let the files name models by import path (MODULE:build) from MODULE or its "
        "submodules, whose code is then imported and run; without it they may name "
        "registered models only. Repeatable, or comma-separated; '*' allows any module, "
        "so any code the files name.",
    ),
    output: Path | None = OUTPUT_OPTION,
) -> None:
    """Check limits on MAdds, params, peak memory and latency; exit 1 when one is exceeded.

    Prints every limit with its measured figure and headroom. Exit 0: all hold; 1: a limit is exceeded or could not be measured; 2: bad input.

    Example: mbprof check examples/budgets.toml --format github --junit budgets.xml
    """
    from mbprof.checks.baseline import parse_tolerances
    from mbprof.checks.measuring import parse_allow_import

    if budgets is None and baseline is None:
        raise MbprofError("give a budget file, --baseline FILE, or both")
    if update_baseline and baseline is None:
        raise MbprofError("--update-baseline needs --baseline FILE: the file to rewrite")
    tolerances = parse_tolerances(tolerance)
    allowed = parse_allow_import(allow_import)
    check_output(output)
    check_output(junit, "--junit")
    if update_baseline:
        check_output(baseline, "--baseline")
    written = {"--output": output, "--junit": junit}
    read = {"BUDGETS": budgets, "--results": results}
    (written if update_baseline else read)["--baseline"] = baseline
    check_outputs(written, read)

    from mbprof.checks.budgets import BudgetFileError, load_budgets

    budget_list: list = []
    try:
        if budgets is not None:
            budget_list += load_budgets(budgets).budgets
        guarded = _load_baseline(baseline, tolerances, update_baseline, budgets)
        budget_list += guarded

        from mbprof.checks.measuring import check_specs, resolve_latency

        check_specs(budget_list, allowed)
        latency = resolve_latency(budget_list) if results is None else {}
    except BudgetFileError as exc:
        if fmt is CheckFormat.github:
            from mbprof.render.checks_view import annotation

            line = annotation("error", exc.reason, exc.source, exc.line, "mbprof budget file")
            results_stream().write(line + "\n")
        raise

    from mbprof.checks.budgets import check
    from mbprof.checks.measuring import measure, requests_for

    started = time.perf_counter()
    requests = requests_for(budget_list)
    if results is not None:
        from mbprof.checks.measuring import refuse_row_imports
        from mbprof.render.export import read_frame

        saved = read_frame(results).to_dict(orient="records")
        refuse_row_imports(saved, str(results), allowed)
        fresh_of = None
        rows = saved
    else:
        from mbprof.cli._progress import sweep_progress

        with sweep_progress(len(requests)) as advance:
            fresh_of = measure(requests, on_start=advance, latency=latency, allow_import=allowed)
        rows = list(fresh_of.values())
    seconds = time.perf_counter() - started

    checked = check(budget_list, rows)
    title = _title(budgets, baseline)
    _emit(checked, title, fmt, output, junit, seconds, rows)

    if update_baseline:
        # The baseline's own configurations, or, for a new baseline, the budget file's.
        targets = guarded or budget_list
        if fresh_of is not None:
            new_rows = [fresh_of[request] for request in requests_for(targets)]
        else:
            new_rows = _covering_rows(targets, rows)
        _write_baseline(baseline, new_rows)
        checked = [r for r in checked if r.limit.origin != "baseline"]

    if not all(r.passed for r in checked):
        _fail_lines(checked)
        raise typer.Exit(EXIT_EXCEEDED)


def _load_baseline(baseline, tolerances, update: bool, budgets) -> list:
    if baseline is None:
        return []
    from mbprof.checks.baseline import baseline_budgets
    from mbprof.render.export import read_frame

    if not baseline.exists():
        if update and budgets is not None:
            return []  # written from the budget file's configurations
        raise MbprofError(
            f"--baseline: {str(baseline)!r} does not exist; create it with --update-baseline "
            "(and a budget file), or with mbprof compare --json FILE"
        )
    frame = read_frame(baseline)
    return baseline_budgets(frame.to_dict(orient="records"), str(baseline), tolerances)


def _covering_rows(budget_list: list, rows: list) -> list:
    """The saved rows that some budget's limits read (in the order of the budgets)."""
    from mbprof.checks.budgets import find_row

    chosen: list = []
    for budget in budget_list:
        for limit in budget.limits:
            row = find_row(rows, budget.spec, limit)
            if row is not None and not any(row is c for c in chosen):
                chosen.append(row)
    return chosen


def _write_baseline(path: Path, rows: list) -> None:
    from mbprof.api import rows_to_frame
    from mbprof.render.compare_view import compare_document
    from mbprof.render.export import to_json, write_atomic

    doc = compare_document(rows_to_frame(rows), title="Baseline")
    write_atomic(path, to_json(doc))
    typer.echo(f"wrote baseline {path} ({len(rows)} configurations)", err=True)


def _title(budgets: Path | None, baseline: Path | None) -> str:
    parts = []
    if budgets is not None:
        parts.append(f"budgets {budgets}")
    if baseline is not None:
        parts.append(f"baseline {baseline}")
    return "Limits: " + "; ".join(parts)


def _environment_notes(rows: list) -> list[str]:
    """Where latencies were measured, from the rows' environment columns."""
    from mbprof.checks.budgets import cell

    seen = []
    for row in rows:
        if cell(row, "latency_ms") is None or cell(row, "cpu_model") is None:
            continue
        where = f"CPU {cell(row, 'cpu_model')}"
        if cell(row, "device") == "cuda":
            where = f"{cell(row, 'device_name')} (host {where})"
        note = (
            f"Latency measured on this machine's {where}, torch {cell(row, 'torch_version')}; "
            "timings vary with the machine and its load."
        )
        if note not in seen:
            seen.append(note)
    return seen


def _emit(checked, title, fmt, output, junit, seconds, rows) -> None:
    from mbprof.render.checks_view import check_document, github_annotations, github_summary
    from mbprof.render.export import write_atomic
    from mbprof.render.safe_text import safe_text

    doc = check_document(checked, title, _environment_notes(rows))
    if junit is not None:
        from mbprof.render.checks_view import junit_xml

        write_atomic(junit, junit_xml(checked, seconds))
        typer.echo(f"wrote {safe_text(junit)}", err=True)
    if fmt is not CheckFormat.github:
        from mbprof.cli._common import emit

        emit(doc, OutputFormat(fmt.value), output)
        return
    text = github_annotations(checked)
    summary = github_summary(doc, checked)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY", "")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(summary)
    else:
        text += summary
    if output is not None:
        write_atomic(output, text)
        typer.echo(f"wrote {safe_text(output)}", err=True)
    else:
        results_stream().write(text)  # the real stdout: user code's prints go to stderr
