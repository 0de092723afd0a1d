"""The notes of an unstable sweep: the machine's reasons said once, one line per row, and
a remedy that fits what was seen."""

from __future__ import annotations

import pandas as pd

from mbprof.render.latency_view import remedy, stability_notes

BUSY = "other processes kept {} of 2 CPUs busy while it ran 2 threads"


def _frame(rows):
    return pd.DataFrame(
        [
            {"model": "mobilenet_v2", "width": w, "resolution": "96", "depth": 1.0,
             "threads": 2, "latency_verdict": "unstable" if why else "stable",
             "latency_reasons": why}
            for w, why in rows
        ]
    )  # fmt: skip


def test_a_shared_machine_reason_is_said_once_with_its_range():
    frame = _frame(
        [
            (0.35, f"spread 693% > 25% ((p90 - p10) / median); {BUSY.format('1.0')}"),
            (0.5, BUSY.format("1.3")),
            (1.0, BUSY.format("0.9")),
            (1.4, ""),
        ]
    )
    head, *rows, fix, _ = stability_notes(frame)
    assert head == (
        "UNSTABLE latency (marked in the Timing column) for 3 of 4 rows: "
        + BUSY.format("0.9-1.3")
        + "."
    )
    assert rows == [
        "mobilenet_v2 0.35@96: spread 693% > 25% ((p90 - p10) / median)",
        "mobilenet_v2 0.5@96: as above",
        "mobilenet_v2 1.0@96: as above",
    ]
    assert "--threads 1" in fix and "--min-time" not in fix


def test_remedies_fit_the_reasons():
    few = "only 5 timed blocks (fewer than 10): measure for longer"
    assert remedy([few], 1) == "Remedy: too few timed blocks: a longer --min-time."
    assert "--threads 1" not in remedy([BUSY.format("1.0")], 1)  # already one thread
    assert "smaller --threads" in remedy(["4 threads asked for, 2 CPUs usable"], 4)
    assert "quiet machine" in remedy(["drift +20% from the first to the second half"], 2)
    steal = "the hypervisor took 0.14 CPUs (steal time)"
    assert remedy([steal], 2).startswith("Remedy: the hypervisor's other guests were busy:")
    assert remedy([steal, BUSY.format("1.0")], 2).startswith("Remedy: other processes were busy:")


def test_runs_are_a_range_only_where_rows_differ():
    from mbprof.render.latency_view import latency_notes

    def runs_note(runs):
        frame = _frame([(0.35, ""), (1.0, "")]).assign(runs=runs, latency_ms=[1.0, 2.0])
        return [n for n in latency_notes(frame, list(frame.columns)) if n.startswith("Runs")]

    assert runs_note([15, 15]) == ["Runs per configuration: 15 (see the runs column in CSV/JSON)."]
    assert runs_note([71, 1308]) == [
        "Runs per configuration: 71 to 1,308 (see the runs column in CSV/JSON)."
    ]
