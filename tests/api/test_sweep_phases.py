"""A sweep's two phases, in this process: the analysis phase puts rows back in the sweep's
order whatever order the executor finishes them in, fills the row of a failed task and
goes on, keeps the finished rows on Ctrl-C; the latency phase starts only after every
configuration is analysed, and reads timings back from the cache only with cache_latency.

Executors here are stand-ins that finish tasks in a chosen order (the real pools are
tests/api/test_workers.py and tests/api/test_dask.py). Figures: MobileNetV1 by hand.
"""

from __future__ import annotations

import pytest

import mbprof.api.sweep as timing_room
from mbprof.api import make_latency_settings, make_specs, prepare_compare
from mbprof.api.cache import ResultCache, analysis_key
from mbprof.api.sweep import analysed_rows
from tests.cli.test_check import mobilenet_v1_by_hand
from tests.support.tiny_models import tiny_madds, tiny_models  # noqa: F401  (a fixture)

SPECS = make_specs("mobilenet_v1", [0.25, 0.5, 0.75, 1.0], resolutions=[32], num_classes=10)


class Shuffled:
    """Runs each task in this process and hands the outcomes over in ``order``; ``fail``
    turns a task's outcome into that exception; ``stop`` raises KeyboardInterrupt after
    so many outcomes."""

    name = "a stand-in"

    def __init__(self, order, fail=None, stop=None, versions=None):
        self.order, self.fail, self.stop, self.versions = order, fail or {}, stop, versions
        self.closed = False

    def run(self, fn, tasks):
        for count, index in enumerate(self.order):
            if count == self.stop:
                raise KeyboardInterrupt
            if index in self.fail:
                yield index, self.fail[index]
                continue
            row, versions = fn(tasks[index])
            yield index, (row, self.versions or versions)

    def close(self):
        self.closed = True


def _hand(row):
    return (row["madds"], row["params"]) == mobilenet_v1_by_hand(row["width"], 32, 10)


def _rows(executor, cache=None, warn=lambda _text: None):
    keys = [analysis_key(s, None) if cache is not None else None for s in SPECS]
    return analysed_rows(SPECS, None, keys, executor=executor, cache=cache, warn=warn)


def test_rows_come_back_in_the_sweep_s_order_and_a_failure_fills_its_row(tmp_path):
    cache = ResultCache(tmp_path)
    executor = Shuffled([2, 0, 3, 1], fail={3: OSError("the worker vanished")})
    rows = list(_rows(executor, cache))
    assert [r["width"] for r in rows] == [0.25, 0.5, 0.75, 1.0]
    assert all(_hand(r) for r in rows[:3])
    assert rows[3]["error"] == "OSError: the worker vanished" and "madds" not in rows[3]
    assert rows[3]["model"] == "mobilenet_v1" and rows[3]["num_classes"] == 10
    assert cache.info().entries == 3 and executor.closed  # the failed row is not kept


def test_ctrl_c_keeps_every_finished_row_in_order(tmp_path):
    executor = Shuffled([1, 3, 0, 2], stop=2)  # 1 and 3 done, 0 and 2 not
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for row in _rows(executor):
            seen.append(row)
    assert [r["width"] for r in seen] == [0.5, 1.0] and all(_hand(r) for r in seen)
    assert executor.closed


def test_rows_of_workers_that_run_other_code_are_not_cached(tmp_path):
    said = []
    cache = ResultCache(tmp_path)
    executor = Shuffled([0, 1, 2, 3], versions={"mbprof": "0.0.1", "torch": "1.0"})
    rows = list(_rows(executor, cache, said.append))
    assert all(_hand(r) for r in rows) and cache.info().entries == 0
    assert len(set(said)) == 1 and "mbprof 0.0.1" in said[0] and "not cached" in said[0]


FAST = dict(min_time_s=0.001, warmup=1, threads=1)


@pytest.fixture
def events(monkeypatch):
    """The order in which models are counted and timed."""
    import mbprof.analysis.counting as counting

    seen = []
    count, interleaved = counting.count, timing_room.interleaved_latency

    def counted(model, shape, *trace, **options):
        seen.append("count")
        return count(model, shape, *trace, **options)

    def timed(jobs, settings, **kw):
        seen.extend("time" for _ in jobs)  # one per configuration, timed interleaved
        return interleaved(jobs, settings, **kw)

    monkeypatch.setattr(counting, "count", counted)
    monkeypatch.setattr(timing_room, "interleaved_latency", timed)
    return seen


def _timed_sweep(tiny_models, folder, cache_latency=True, **fast):  # noqa: F811
    specs = make_specs(tiny_models, resolutions=[32])
    run = prepare_compare(
        specs,
        with_memory=False,
        latency=make_latency_settings(**{**FAST, **fast}),
        accuracy=False,
        cache=folder,
        cache_latency=cache_latency,
    )
    return list(run.rows())


def test_latency_comes_after_every_analysis_and_is_cached_only_when_asked(
    tiny_models,  # noqa: F811
    tmp_path,
    events,
):
    rows = _timed_sweep(tiny_models, tmp_path, cache_latency=False)
    assert events == ["count", "count", "time", "time"]  # analysis first, then timings
    ok, batch_one = rows
    assert ok["madds"] == batch_one["madds"] == tiny_madds(32) and ok["latency_ms"] > 0
    events.clear()
    assert _timed_sweep(tiny_models, tmp_path, cache_latency=False)[0]["madds"] == tiny_madds(32)
    assert events == ["time", "time"]  # counts cached, timings not

    first = _timed_sweep(tiny_models, tmp_path)
    events.clear()
    again = _timed_sweep(tiny_models, tmp_path)
    assert events == [] and again == first  # both timings read back
    _timed_sweep(tiny_models, tmp_path, batch=2)
    assert events == ["time", "time"]  # other settings: timed afresh


def test_a_sweep_is_timed_interleaved_a_group_at_a_time(tiny_models, monkeypatch):  # noqa: F811
    import mbprof.api.sweep as sweep
    from mbprof.analysis.latency.harness import ROUNDS

    groups, interleaved = [], timing_room.interleaved_latency

    def recorded(jobs, settings, **kw):
        groups.append([spec.label for spec, _model, _madds in jobs])
        return interleaved(jobs, settings, **kw)

    monkeypatch.setattr(timing_room, "interleaved_latency", recorded)
    specs = make_specs("test_tiny", resolutions=[32, 48, 64])
    run = prepare_compare(
        specs, with_memory=False, latency=make_latency_settings(**FAST), accuracy=False
    )
    rows = list(run.rows())
    assert groups == [[spec.label for spec in specs]]  # one group, every row in it
    assert [row["rounds"] for row in rows] == [ROUNDS] * 3
    groups.clear()
    monkeypatch.setattr(sweep, "TIMING_GROUP", 2)
    assert [row["resolution"] for row in run.rows()] == ["32", "48", "64"]  # in order
    assert [len(group) for group in groups] == [2, 1]
