"""Command-line values and units."""

from __future__ import annotations

import pytest

from mbprof.core.errors import MbprofError
from mbprof.core.parsing import (
    parse_float_list,
    parse_int,
    parse_kwargs,
    parse_resolution,
    parse_resolution_list,
)
from mbprof.core.units import format_value, parse_bytes, parse_count, parse_ms


def test_lists():
    assert parse_float_list("0.35, 0.5,1.0,0.5", "--widths") == [0.35, 0.5, 1.0]
    assert parse_resolution_list("96,160x224", "--res") == [(96, 96), (160, 224)]
    assert parse_resolution("224") == (224, 224)


def _widths(text):
    return parse_float_list(text, "--widths")


@pytest.mark.parametrize(
    ("parse", "text", "fragment"),
    [
        *((_widths, text, fragment) for text, fragment in [
            ("0", "'0' is not allowed"), ("-1", "'-1'"), ("nan", "'nan'"), ("inf", "'inf'"),
            ("abc", "'abc' is not a number"), ("0.5,,1", "empty item"), ("", "empty item"),
        ]),
        *((parse_resolution, text, fragment) for text, fragment in [
            ("31", "too small"), ("0", "too small"), ("22.5", "not a resolution"),
            ("abc", "not a resolution"), ("224x", "not a resolution"), ("1x224", "too small"),
        ]),
    ],
)  # fmt: skip
def test_bad_widths_and_resolutions(parse, text, fragment):
    with pytest.raises(MbprofError, match=fragment):
        parse(text)


def test_ints_and_kwargs():
    assert parse_int("12", "--classes") == 12
    with pytest.raises(MbprofError, match="not an integer"):
        parse_int("1.5", "--classes")
    assert parse_kwargs(["b=true", "a=0.1", "c=x", "d=3"]) == (
        ("a", 0.1),
        ("b", True),
        ("c", "x"),
        ("d", 3),
    )
    with pytest.raises(MbprofError, match="key=value"):
        parse_kwargs(["novalue"])


def test_units_round_trip():
    assert parse_count("300M") == 300_000_000
    assert parse_count("3.5M") == 3_500_000
    assert parse_bytes("1.2 MB") == 1_200_000
    assert parse_bytes("1 MiB") == 1_048_576
    assert parse_ms("25 ms") == 25.0 and parse_ms("0.5s") == 500.0
    assert format_value(300_774_272, "count") == "300.77M"
    assert format_value(401_408, "bytes") == "401.4 KB"  # KB = 1000 bytes
    with pytest.raises(MbprofError, match="unknown unit"):
        parse_bytes("3 parsecs")


# --- grid ranges: start:stop:step ----------------------------------------------------


def test_a_range_is_exact_in_decimal_and_includes_its_stop():
    widths = parse_float_list("0.25:1.5:0.05", "--widths")
    assert len(widths) == 26 and widths[0] == 0.25 and widths[-1] == 1.5
    # each value is the float of its decimal text: as if typed by hand, no drift
    assert widths == [float(f"{25 + 5 * i}e-2") for i in range(26)]
    assert 0.3 in widths and 0.7 in widths and 1.15 in widths
    assert parse_resolution_list("96:256:16") == [(r, r) for r in range(96, 257, 16)]
    assert parse_float_list("0.25:1.0:0.3", "--widths") == [0.25, 0.55, 0.85]  # 1.0 is off the grid
    assert parse_float_list("0.5:0.5:0.1,1.0,0.5", "--widths") == [0.5, 1.0]
    assert parse_resolution_list("96,128:160:32,160x224") == [
        (96, 96),
        (128, 128),
        (160, 160),
        (160, 224),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1:2:0", "step must be > 0"),
        ("1:2:-0.5", "step must be > 0"),
        ("2:1:0.5", "yields no value"),
        ("0.00001:1.00001:0.00001", "100,001 values; give at most 100,000"),
        ("1:1e40:1e-20", "more than 100,000 values"),
        ("1:inf:1", "finite"),
        ("1:2:3:4", "start:stop:step"),
        (":2:1", "not a range"),
    ],
)
def test_bad_ranges(text, fragment):
    with pytest.raises(MbprofError, match="--widths") as caught:
        parse_float_list(text, "--widths")
    assert fragment in str(caught.value)


def test_too_many_values_in_all():
    assert len(parse_float_list("0.00001:1:0.00001", "--widths")) == 100_000  # the most allowed
    with pytest.raises(MbprofError, match="more than 100,000 values"):
        parse_float_list("1:60000:1,100000:160000:1", "--widths")


def test_one_formatter_writes_every_kind():
    # By hand: 300,774,272 = 300.77 x 1e6; 1,200,000 bytes = 1.20 MB (KB = 1000 bytes).
    assert format_value(300_774_272, "millions") == "300.77"
    assert format_value(1_200_000, "size") == "1.20 MB"
    assert format_value(25, "duration") == "25.00 ms"
    assert format_value(12.345, "percent") == "12.3%"
    assert format_value(1, "float") == "1.0" and format_value(0.35, "float") == "0.35"
    assert format_value(-1500, "delta") == "-1,500"
    assert format_value(float("nan"), "count") == "-" and format_value(None, "int") == "-"
