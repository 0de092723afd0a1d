"""The row owner: a configuration written as a row reads back as the same configuration,
also after the CSV and JSON files that mbprof writes and reads."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec
from mbprof.frame.rows import (
    args_text,
    cell,
    failure_text,
    identity_row,
    is_missing,
    parse_args_text,
    row_measures,
    spec_from_row,
)

names = st.from_regex(
    r"[a-z][a-z0-9_]{0,12}(\.[a-z][a-z0-9_]{0,6})?(:[A-Za-z_][A-Za-z0-9_]{0,8})?", fullmatch=True
)
multipliers = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
sides = st.integers(min_value=32, max_value=4096)
values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
    st.sampled_from(["1", "true", "None", "a b", "x=y", '"q"', "1e3", "inf", ""]),
)
kwargs = st.dictionaries(
    st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), values, max_size=4
)
specs = st.builds(
    ModelSpec,
    model=names,
    width=multipliers,
    depth=multipliers,
    resolution=st.tuples(sides, sides),
    num_classes=st.integers(min_value=1, max_value=10**9),
    kwargs=kwargs.map(lambda d: tuple(sorted(d.items()))),
)


def _same_values(a: tuple, b: tuple) -> bool:
    """Builder arguments equal, with -0.0 == 0.0 and types kept (True is not 1)."""
    return len(a) == len(b) and all(
        ka == kb and type(va) is type(vb) and va == vb
        for (ka, va), (kb, vb) in zip(a, b, strict=True)
    )


@settings(max_examples=100, deadline=None)
@given(specs)
def test_a_spec_round_trips_through_its_row(spec):
    back = spec_from_row(identity_row(spec))
    assert back == spec and _same_values(back.kwargs, spec.kwargs)
    assert row_measures(identity_row(spec), spec)


@settings(max_examples=30, deadline=None)
@given(st.lists(specs, min_size=1, max_size=4))
def test_specs_round_trip_through_csv_and_json(many):
    frame = pd.DataFrame([identity_row(s) for s in many])
    from_csv = pd.read_csv(io.StringIO(frame.to_csv(index=False)), keep_default_na=True)
    for spec, row in zip(many, from_csv.to_dict(orient="records"), strict=True):
        assert spec_from_row(row) == spec
    from_json = json.loads(json.dumps(frame.to_dict(orient="records")))
    for spec, row in zip(many, from_json, strict=True):
        assert spec_from_row(row) == spec


def test_args_text_is_the_cli_form_and_reads_back():
    assert args_text({"fix_stem_head": True, "dropout": 0.2}) == "dropout=0.2 fix_stem_head=True"
    assert parse_args_text("fix_stem_head=true dropout=0.2") == (
        ("dropout", 0.2),
        ("fix_stem_head", True),
    )
    assert parse_args_text('name="a b" n="1"') == (("n", "1"), ("name", "a b"))
    with pytest.raises(MbprofError, match="given twice"):
        parse_args_text("a=1 a=2")


def test_missing_cells():
    assert all(is_missing(v) for v in (None, math.nan, pd.NA, float("nan")))
    assert not any(is_missing(v) for v in (0, "", "x", False))
    row = {"a": math.nan, "b": "", "c": 3}
    assert cell(row, "a", 1) == 1 and cell(row, "b", "d") == "d" and cell(row, "c") == 3
    assert cell(row, "zzz") is None


def test_rows_that_name_no_configuration_are_refused_with_where():
    with pytest.raises(MbprofError, match=r"^r.csv row 2: no 'model' column"):
        spec_from_row({"width": 1.0}, "r.csv row 2")
    with pytest.raises(MbprofError, match="width 'wide' is not a number"):
        spec_from_row({"model": "m", "width": "wide", "resolution": 224})
    with pytest.raises(MbprofError, match="num_classes 2.5 is not allowed"):
        spec_from_row({"model": "m", "resolution": 224, "num_classes": 2.5})
    assert not row_measures({"model": "m"}, ModelSpec("m"))


def test_failure_text_is_one_line_and_bounded():
    assert failure_text(ValueError("first\nsecond")) == "ValueError: first"
    assert len(failure_text(RuntimeError("x" * 1000))) == 300


def test_axes_and_budget_metrics_are_entries_of_the_one_table():
    from mbprof.frame.columns import AXES, COLUMNS, METRICS

    assert all(AXES[key] is not None and key in COLUMNS for key in AXES)
    assert list(METRICS) == [
        "max_madds", "max_params", "max_peak_memory", "max_latency", "max_model_size"
    ]  # fmt: skip
    assert {m.key: (m.column, m.kind) for m in METRICS.values()} == {
        "max_madds": ("madds", "count"),
        "max_params": ("params", "count"),
        "max_peak_memory": ("peak_act_bytes", "bytes"),
        "max_latency": ("latency_ms", "ms"),
        "max_model_size": ("deployed_bytes", "bytes"),
    }
