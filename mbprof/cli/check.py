"""mbprof check"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mbprof.cli import _app
from mbprof.cli import _options as cli

CheckFormat = cli.choices("CheckFormat", "table", "csv", "json", "markdown", "github")


@_app.app.command("check")
def check_command(
    budgets: Path | None = typer.Argument(
        None, help="A TOML budget file (see examples/budgets.toml).", dir_okay=False
    ),
    baseline: Path | None = cli.file_option(
        "--baseline", "A saved result (mbprof compare --json FILE) to guard against regressions."
    ),
    update_baseline: bool = cli.flag(
        "--update-baseline",
        "Rewrite the baseline with the fresh figures (its regressions then do not fail).",
    ),
    tolerance: list[str] | None = cli.option(
        None,
        "--tolerance",
        "Baseline tolerance GROUP=PERCENT, GROUP one of madds, params, memory, latency "
        "(defaults: 0%, 0%, 0%, 15%). Repeatable.",
    ),
    results: Path | None = cli.file_option(
        "--results", "Check figures saved by mbprof compare (JSON or CSV) instead of measuring."
    ),
    junit: Path | None = cli.file_option(
        "--junit", "Also write JUnit XML, one testcase per limit."
    ),
    fmt: CheckFormat = cli.option(
        CheckFormat.table,
        "--format -f",
        "table, csv, json, markdown, or github (workflow annotations and a step "
        "summary, written to $GITHUB_STEP_SUMMARY when set).",
    ),
    allow_import: list[str] | None = cli.option(
        None,
        "--allow-import MODULE",
        "Let the files name models by import path (MODULE:build) from MODULE or its "
        "submodules, whose code is then imported and run; without it they may name "
        "registered models only. Repeatable, or comma-separated; '*' allows any module, "
        "so any code the files name.",
    ),
    allow_unstable: bool = cli.flag(
        "--allow-unstable",
        "Pass a latency limit whose measurement was unstable (a busy machine: it is "
        "neither held nor exceeded), with a warning, instead of failing.",
    ),
    reparam: bool = cli.REPARAM_OPTION,
    output: Path | None = cli.OUTPUT_OPTION,
    engine: cli.Engine = cli.ENGINE_OPTION,
) -> None:
    """Check limits on MAdds, params, peak memory and latency; exit 1 when one is exceeded.

    Prints every limit with its measured figure and headroom. A latency measured unstably (a busy machine) is neither held nor exceeded: its status is unstable. Exit 0: all hold; 1: a limit is exceeded, could not be measured or was measured unstably (unless --allow-unstable); 2: bad input.

    Example: mbprof check examples/budgets.toml --format github --junit budgets.xml
    """
    from mbprof.api.checking import CheckNames, check_inputs, prepare_check, write_baseline
    from mbprof.checks.baseline import parse_tolerance_items
    from mbprof.checks.limits import BudgetFileError, failing, parse_allow_import
    from mbprof.render import checks_view as view

    # Refusals about check's inputs name its flags.
    names = CheckNames("a budget file", "--baseline", "--baseline FILE", "--update-baseline")
    check_inputs(budgets, baseline, update_baseline, names)
    tolerances = parse_tolerance_items(tolerance)
    allowed = parse_allow_import(allow_import)
    written = {"--output": output, "--junit": junit}
    read = {"BUDGETS": budgets, "--results": results}
    (written if update_baseline else read)["--baseline"] = baseline
    cli.check_outputs(written, read)

    try:
        run = prepare_check(
            budgets,
            baseline=baseline,
            tolerances=tolerances,
            results=results,
            allow_import=allowed,
            update_baseline=update_baseline,
            names=names,
            engine=engine.value,
            reparam=reparam,
        )
    except BudgetFileError as exc:
        if fmt is CheckFormat.github:
            line = view.annotation("error", exc.reason, exc.source, exc.line, "mbprof budget file")
            _app.results_stream().write(line + "\n")
        raise
    if not run.configurations:  # saved results: nothing to measure
        outcome = run.run()
    else:
        with _app.sweep_progress(run.configurations) as progress:  # one step a configuration
            outcome = run.run(
                on_start=progress.start,
                on_phase=progress.phase,
                on_done=lambda rows: progress.done(rows[0]),
            )
    results = outcome.results
    notes = view.environment_notes(outcome.rows)
    doc = view.check_document(results, view.check_title(budgets, baseline), notes)
    if junit is not None:
        cli.write_file(junit, view.junit_xml(results, outcome.seconds, allow_unstable))
    if fmt is CheckFormat.github:
        text = view.github_annotations(results, allow_unstable)
        summary = view.github_summary(doc, results, allow_unstable)
        if step_summary := os.environ.get("GITHUB_STEP_SUMMARY", ""):
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(summary)
        else:
            text += summary
    cli.emit(text if fmt is CheckFormat.github else doc, fmt.value, output)
    if update_baseline:
        write_baseline(outcome, baseline)
        configurations = len(outcome.baseline_rows)
        typer.echo(f"wrote baseline {baseline} ({configurations} configurations)", err=True)
    for line in view.failure_lines(outcome.deciding, allow_unstable):
        typer.echo(line, err=True)
    if failing(outcome.deciding, allow_unstable):
        raise typer.Exit(cli.EXIT_FAILED)
