"""Budget files: parsing (every error path) and checking rows (pure, no models built)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbprof.checks.budget_file import (
    BudgetFileError,
    key_lines,
    load_budgets,
    nearest_line,
    parse_budgets,
)
from mbprof.checks.limits import ERROR, EXCEEDED, HELD, TOLERATED, Limit
from mbprof.checks.matching import (
    check_rows,
    find_row,
    same_setting,
    settings_match,
)
from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec
from mbprof.core.units import parse_percent
from mbprof.frame.rows import identity_row
from tests.support.rows import MNV2_MADDS, MNV2_PARAMS, config_row

ISSUE_FORM = """\
# the form in the issue
[[budget]]
model = "mobilenet_v2"
width = 1.0
resolution = 224
max_madds = "310M"
max_params = "3.6M"
"""

# MobileNetV2 1.0 at 224: torchvision's counts (shared/reference/architectures.md).


def mnv2_row(**extra):
    return config_row(**{"madds": MNV2_MADDS, "params": MNV2_PARAMS, **extra})


# --- parsing -------------------------------------------------------------------------------


def test_issue_form_parses_with_lines_and_defaults():
    (budget,) = parse_budgets(ISSUE_FORM, "b.toml").budgets
    assert budget.spec.model == "mobilenet_v2"
    assert budget.spec.resolution == (224, 224)
    assert (budget.spec.width, budget.spec.depth, budget.spec.num_classes) == (1.0, 1.0, 1000)
    madds, params = budget.limits
    assert (madds.key, madds.value, madds.line) == ("max_madds", 310_000_000, 6)
    assert (params.key, params.value, params.line) == ("max_params", 3_600_000, 7)
    assert budget.line == 2 and budget.source == "b.toml"


def test_full_form_memory_latency_tables_arrays_and_subtables():
    text = """\
[[budget]]
name = "phone"
model = "mobilenet_v2"
width = 0.5
depth = 1.0
resolution = "160x224"
classes = 10
args = { dropout = 0.1 }
max_peak_memory = [
  { limit = "1.2 MB" },
  { limit = "400 KiB", dtype = "int8", mode = "efficient", chunks = 4 },
]
max_latency = { limit = "25 ms", device = "cpu", backend = "onnxruntime", threads = 2, batch = 4, tolerance = "12.5%", min_time = "0.2 s", warmup = 3 }

[[budget]]
model = "mobilenet_v1"
max_madds = 600000000

[budget.max_latency]
limit = 0.5
fuse_bn = true
channels_last = true
"""
    first, second = parse_budgets(text, "f.toml").budgets
    assert first.name == "phone" and first.label == "phone (mobilenet_v2 0.5@160x224)"
    assert first.spec.resolution == (160, 224) and first.spec.num_classes == 10
    assert first.spec.kwargs == (("dropout", 0.1),)
    mem1, mem2, lat = first.limits
    assert mem1.value == 1_200_000 and mem1.column == "peak_act_bytes"
    assert mem1.setting("dtype") == "fp16" and mem1.setting("mode") == "materialized"
    assert mem2.value == 400 * 1024 and mem2.column == "peak_act_bytes_efficient"
    assert (mem2.setting("dtype"), mem2.setting("chunks")) == ("int8", 4)
    assert mem1.line == mem2.line == 9
    assert lat.value == 25.0 and lat.tolerance_pct == 12.5 and lat.line == 13
    assert lat.setting("backend") == "onnxruntime" and lat.setting("threads") == 2
    assert lat.setting("batch") == 4 and lat.setting("min_time_ms") == 200.0
    assert lat.setting("warmup") == 3
    assert lat.allowed == pytest.approx(28.125)
    madds, lat2 = second.limits
    assert madds.value == 600_000_000 and second.line == 15
    assert lat2.value == 0.5 and lat2.line == 19 and lat2.tolerance_pct == 10.0  # default
    assert lat2.setting("fuse_bn") is True and lat2.setting("channels_last") is True
    assert lat2.setting("device") == "cpu" and lat2.setting("threads") is None


def _error(text: str) -> BudgetFileError:
    with pytest.raises(BudgetFileError) as info:
        parse_budgets(text, "b.toml")
    return info.value


HEAD = '[[budget]]\nmodel = "mobilenet_v2"\n'


@pytest.mark.parametrize(
    ("text", "line", "pieces"),
    [
        # malformed TOML: tomllib's reason, with the line
        (HEAD + "max_madds = 310M\n", 3, ["not valid TOML", "column"]),
        ('[[budget]]\nmodel = "x"\nmax_madds = [1,\n', 3, ["not valid TOML", "end of the file"]),
        (HEAD + 'max_madds = "1M"\nmax_madds = "2M"\n', 4, ["not valid TOML"]),
        # unknown keys, named, with the closest allowed key
        (HEAD + 'max_madd = "310M"\n', 3, ["unknown key 'max_madd'", "did you mean 'max_madds'"]),
        (HEAD + "num_classes = 10\nmax_params = 1\n", 3, ["'num_classes'", "'classes'"]),
        (
            HEAD + 'max_peak_memory = { limit = "1 MB", tolerance = "5%" }\n',
            3,
            ["max_peak_memory.tolerance", "unknown key 'tolerance'", "limit, dtype, mode, chunks"],
        ),
        (
            HEAD + '[budget.max_latency]\nlimit = "2 ms"\nthread = 2\n',
            5,
            ["max_latency.thread", "did you mean 'threads'"],
        ),
        ('[budgets]\nmodel = "x"\n', 1, ["unknown key 'budgets'", "did you mean 'budget'"]),
        # unknown units
        (HEAD + 'max_madds = "310X"\n', 3, ["max_madds", "unknown unit 'X'", "K, M or G"]),
        (HEAD + 'max_params = "3 MB"\n', 3, ["unknown unit 'MB'"]),
        (HEAD + 'max_peak_memory = "2 MiBs"\n', 3, ["unknown unit 'MiBs'", "KB, MB"]),
        (HEAD + 'max_latency = "25 sec"\n', 3, ["unknown unit 'sec'", "us, ms or s"]),
        (HEAD + 'max_madds = "lots"\n', 3, ["'lots' is not a number"]),
        # wrong types and values
        (HEAD + 'width = "wide"\nmax_params = 1\n', 3, ["width", "expected a number > 0"]),
        (HEAD + "width = 0\nmax_params = 1\n", 3, ["width", "a number > 0, got an integer 0"]),
        (HEAD + "depth = true\nmax_params = 1\n", 3, ["depth", "got a boolean"]),
        (HEAD + "resolution = 224.0\nmax_params = 1\n", 3, ["resolution", '"160x224"']),
        (HEAD + "resolution = 16\nmax_params = 1\n", 3, ["resolution", ">= 32"]),
        (HEAD + 'resolution = "big"\nmax_params = 1\n', 3, ["resolution", "HEIGHTxWIDTH"]),
        (HEAD + "classes = 0\nmax_params = 1\n", 3, ["classes", "an integer >= 1"]),
        (HEAD + "args = 3\nmax_params = 1\n", 3, ["args", "a table of builder arguments"]),
        (HEAD + "args = { d = [1] }\nmax_params = 1\n", 3, ["args.d", "a string, number"]),
        (HEAD + "name = 5\nmax_params = 1\n", 3, ["name", "expected a string"]),
        ('[[budget]]\nmodel = ""\nmax_params = 1\n', 2, ["model", "non-empty string"]),
        ("[[budget]]\nmax_params = 1\n", 1, ["no 'model'"]),
        (HEAD + "max_params = true\n", 3, ["max_params", "a limit such as"]),
        (HEAD + "max_params = -5\n", 3, ["-5 is not allowed", "> 0"]),
        (HEAD + "max_params = 0\n", 3, ["> 0"]),
        (HEAD + "max_params = nan\n", 3, ["not a finite limit"]),
        (HEAD + "max_params = inf\n", 3, ["not a finite limit"]),
        (HEAD + "max_latency = []\n", 3, ["empty array"]),
        (HEAD + "max_latency = { threads = 2 }\n", 3, ["no 'limit'"]),
        (HEAD + 'max_peak_memory = { dtype = "fp16" }\n', 3, ["no 'limit'"]),
        (
            HEAD + 'max_peak_memory = { limit = "1 MB", dtype = "fp64" }\n',
            3,
            ["max_peak_memory.dtype", "'fp64'", "fp16, bf16, fp32, int8"],
        ),
        (
            HEAD + 'max_peak_memory = { limit = "1 MB", mode = "lazy" }\n',
            3,
            ["max_peak_memory.mode", "materialized, efficient"],
        ),
        (HEAD + 'max_peak_memory = { limit = "1 MB", chunks = 0 }\n', 3, ["chunks", ">= 1"]),
        (
            HEAD + 'max_peak_memory = { limit = "1 MB", chunks = "all" }\n',
            3,
            ["chunks", "'channel'"],
        ),
        (HEAD + 'max_peak_memory = { limit = "1 MB", chunks = 2.5 }\n', 3, ["chunks", "integer"]),
        (HEAD + 'max_latency = { limit = "1 ms", device = "tpu" }\n', 3, ["auto, cpu, cuda"]),
        (HEAD + 'max_latency = { limit = "1 ms", backend = "tvm" }\n', 3, ["eager, compile"]),
        (HEAD + 'max_latency = { limit = "1 ms", threads = 1.5 }\n', 3, ["threads", "integer"]),
        (HEAD + 'max_latency = { limit = "1 ms", batch = 0 }\n', 3, ["batch", ">= 1"]),
        (HEAD + 'max_latency = { limit = "1 ms", fuse_bn = "yes" }\n', 3, ["true or false"]),
        (HEAD + 'max_latency = { limit = "1 ms", min_time = "0 s" }\n', 3, ["min_time", "> 0"]),
        (HEAD + 'max_latency = { limit = "1 ms", tolerance = 10 }\n', 3, ["'10%'"]),
        (HEAD + 'max_latency = { limit = "1 ms", tolerance = "ten%" }\n', 3, ["percentage"]),
        # structure
        (HEAD, 1, ["sets no limit", "max_madds, max_params, max_peak_memory, max_latency"]),
        ("budget = 1\n", 1, ["array of tables", "[[budget]]"]),
        ("budget = [1]\n", None, ["budget 1", "expected a table"]),
    ],
)
def test_bad_files_name_file_line_and_what_was_expected(text, line, pieces):
    error = _error(text)
    message = str(error)
    assert error.line == line
    prefix = f"b.toml:{line}: " if line else "b.toml: "
    assert message.startswith(prefix), message
    for piece in pieces:
        assert piece in message, (piece, message)
    assert "\n" not in message


def test_second_budget_is_named_by_number_and_line():
    error = _error(ISSUE_FORM + '\n[[budget]]\nmodel = "mobilenet_v1"\nmax_madds = "1Q"\n')
    assert error.line == 11 and "budget 2, max_madds" in str(error)


def test_no_budget_tables():
    assert "no [[budget]] tables" in str(_error("# nothing here\n"))


def test_load_budgets_file_errors(tmp_path):
    with pytest.raises(BudgetFileError, match="no such file"):
        load_budgets(tmp_path / "missing.toml")
    with pytest.raises(BudgetFileError, match="is not a file"):
        load_budgets(tmp_path)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[[budget]]")
    with pytest.raises(BudgetFileError, match="not UTF-8"):
        load_budgets(binary)
    good = tmp_path / "good.toml"
    good.write_text(ISSUE_FORM)
    assert load_budgets(good).budgets[0].source == str(good)


def test_the_file_is_data_only(tmp_path):
    # Strings that would do something if evaluated stay strings (and are refused as models
    # only later, by the registry).
    text = "[[budget]]\nmodel = \"__import__('os').system('false')\"\nmax_params = 1\n"
    (budget,) = parse_budgets(text).budgets
    assert budget.spec.model.startswith("__import__")


def test_parse_percent():
    assert parse_percent("10%") == 10.0
    assert parse_percent(" 2.5 % ") == 2.5
    assert parse_percent("0%") == 0.0
    for bad in ("10", "-5%", "%", "ten%"):
        with pytest.raises(MbprofError):
            parse_percent(bad)
    with pytest.raises(MbprofError, match="'10%'"):
        parse_percent(10)  # a bare number is ambiguous (0.1 or 10?)


# --- checking ------------------------------------------------------------------------------


def test_held_and_exceeded_with_headroom_by_hand():
    text = HEAD + 'max_madds = "310M"\nmax_params = "3.5M"\n'
    held, exceeded = check_rows(parse_budgets(text, "b.toml"), [mnv2_row()])
    # 310,000,000 - 300,774,272 = 9,225,728 -> 2.976...% of the limit
    assert held.status == HELD and held.measured == MNV2_MADDS
    assert held.headroom == 9_225_728
    assert held.headroom_pct == pytest.approx(100 * 9_225_728 / 310_000_000)
    assert round(held.headroom_pct, 3) == 2.976
    # 3,500,000 - 3,504,872 = -4,872 -> -0.1392% (over by 4,872 parameters)
    assert exceeded.status == EXCEEDED and exceeded.headroom == -4_872
    assert exceeded.headroom_pct == pytest.approx(-0.1392)
    assert "max_params exceeded" in exceeded.message
    assert "mobilenet_v2 1.0@224" in exceeded.message
    assert "3.50M" in exceeded.message and "4.87K" in exceeded.message
    assert exceeded.where == "b.toml:4"
    assert [r for r in (held, exceeded) if not r.passed] == [exceeded]


def test_limit_equal_to_measured_holds_with_zero_headroom():
    text = HEAD + f"max_madds = {MNV2_MADDS}\n"
    (result,) = check_rows(parse_budgets(text), [mnv2_row()])
    assert result.status == HELD and result.headroom == 0 and result.headroom_pct == 0.0


def test_latency_tolerance_boundaries():
    text = HEAD + 'max_latency = { limit = "25 ms", tolerance = "10%", threads = 2 }\n'
    budget_file = parse_budgets(text)

    def status(ms):
        row = mnv2_row(latency_ms=ms, device="cpu", backend="eager", threads=2, batch=1)
        (result,) = check_rows(budget_file, [row])
        return result

    assert status(24.0).status == HELD and status(24.0).headroom == 1.0
    assert status(25.0).status == HELD
    over = status(26.0)  # 4% over: within 10%
    assert over.status == TOLERATED and over.passed
    assert over.headroom == -1.0 and over.headroom_pct == pytest.approx(-4.0)
    assert "within tolerance" in over.message and "tolerance 10.0%" in over.message
    assert status(27.5).status == TOLERATED  # 25 x 1.1 exactly
    failed = status(27.6)
    assert failed.status == EXCEEDED and not failed.passed
    assert "cpu, eager, fp32, batch 1, 2 threads" in failed.message


def test_rows_are_matched_on_configuration_and_settings():
    text = HEAD + (
        'max_peak_memory = [ { limit = "3 MB", dtype = "fp32" }, '
        '{ limit = "1 MB", mode = "efficient" } ]\n'
        'max_latency = { limit = "10 ms", threads = 2 }\n'
    )
    rows = [
        mnv2_row(width=0.5, peak_act_bytes=1, peak_act_bytes_efficient=1, mem_dtype="fp16"),
        mnv2_row(peak_act_bytes=2_000_000, peak_act_bytes_efficient=800_000, mem_dtype="fp16"),
        mnv2_row(peak_act_bytes=4_000_000, peak_act_bytes_efficient=1_600_000, mem_dtype="fp32"),
        mnv2_row(latency_ms=50.0, threads=1, device="cpu", backend="eager"),
        mnv2_row(latency_ms=9.0, threads=2, device="cpu", backend="eager"),
    ]
    fp32, efficient, latency = check_rows(parse_budgets(text), rows)
    assert fp32.measured == 4_000_000 and fp32.status == EXCEEDED  # the fp32 row
    assert efficient.measured == 800_000 and efficient.status == HELD  # fp16 efficient column
    assert latency.measured == 9.0 and latency.status == HELD  # the 2-thread row


def test_args_and_classes_must_match():
    text = '[[budget]]\nmodel = "mobilenet_v2"\nargs = { dropout = 0.5 }\nmax_madds = "1G"\n'
    with pytest.raises(MbprofError, match="no measurement of madds"):
        check_rows(parse_budgets(text, "b.toml"), [mnv2_row()])
    (result,) = check_rows(parse_budgets(text), [mnv2_row(), mnv2_row(args="dropout=0.5", madds=7)])
    assert result.measured == 7
    text = HEAD + "classes = 10\nmax_madds = 1\n"
    with pytest.raises(MbprofError, match=r"b.toml:4: no measurement"):
        check_rows(parse_budgets(text, "b.toml"), [mnv2_row()])


def test_error_rows_become_error_results():
    text = HEAD + 'max_latency = "10 ms"\n'
    row = mnv2_row(latency_ms=math.nan, error="RuntimeError: out of memory")
    (result,) = check_rows(parse_budgets(text), [row])
    assert result.status == ERROR and not result.passed and result.headroom is None
    assert "out of memory" in result.message


def test_check_reads_a_frame_with_missing_values():
    frame = pd.DataFrame([mnv2_row(), mnv2_row(width=0.5, madds=97_000_000, args=None)])
    text = ISSUE_FORM + '\n[[budget]]\nmodel = "mobilenet_v2"\nwidth = 0.5\nmax_madds = "100M"\n'
    results = check_rows(parse_budgets(text), frame)
    assert [r.status for r in results] == [HELD, HELD, HELD]
    assert results[2].headroom == 3_000_000


def test_chunks_and_efficient_rows_match_on_t():
    text = HEAD + (
        'max_peak_memory = [ { limit = "1 MB", mode = "efficient", chunks = 4 }, '
        '{ limit = "1 MB", mode = "efficient", chunks = "channel" }, '
        '{ limit = "1 MB", mode = "efficient" }, "3 MB" ]\n'
    )
    limits = parse_budgets(text).budgets[0].limits
    assert [lim.setting("chunks") for lim in limits] == [4, None, None, None]
    assert limits[0].conditions == "fp16, efficient, T=4"
    assert limits[2].conditions == "fp16, efficient, T=channel"
    assert limits[3].conditions == "fp16, materialized"
    common = dict(mem_dtype="fp16", peak_act_bytes=3_010_560)
    rows = [
        mnv2_row(mem_chunks="channel", peak_act_bytes_efficient=577_024, **common),
        mnv2_row(mem_chunks=4, peak_act_bytes_efficient=1_154_048, **common),  # CSV: an int
    ]
    t4, channel, default, materialized = check_rows(parse_budgets(text), rows)
    assert t4.measured == 1_154_048 and t4.status == EXCEEDED
    assert channel.measured == default.measured == 577_024
    assert channel.headroom == 1_000_000 - 577_024
    assert materialized.measured == 3_010_560 and materialized.headroom == -10_560


# --- where keys are written, and which row a limit reads (properties) ---------------------

KEYS = ["model", "width", "resolution", "max_madds", "max_params", "name"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.permutations(KEYS), min_size=1, max_size=4), st.integers(0, 3))
def test_key_lines_point_at_the_line_each_key_is_written(orders, blank):
    # A file written line by line: the expected line of each key is counted here.
    lines, expected = ["# budgets"], []
    for keys in orders:
        lines += [""] * blank + ["[[budget]]"]
        where = {"": len(lines)}
        for key in keys:
            lines.append(f"{key} = 1")
            where[key] = len(lines)
        expected.append(where)
    found = key_lines("\n".join(lines) + "\n")[1]
    assert len(found) == len(expected)
    for budget, where in zip(found, expected, strict=True):
        for key, line in where.items():
            assert nearest_line(budget, key) == line
        # A nested key not written points at its parent; an unknown key at the header.
        assert nearest_line(budget, "width.limit") == where["width"]
        assert nearest_line(budget, "nothing") == where[""]


def test_nearest_line_walks_up_dotted_keys():
    lines = {"": 3, "max_latency": 7, "max_latency.limit": 8}
    assert nearest_line(lines, "max_latency.limit") == 8
    assert nearest_line(lines, "max_latency.threads") == 7
    assert nearest_line(lines, "max_madds") == 3
    assert nearest_line({}, "x") is None


SPECS = st.builds(
    ModelSpec,
    model=st.sampled_from(["mobilenet_v1", "mobilenet_v2", "mypkg.models:build"]),
    width=st.sampled_from([0.25, 0.35, 0.5, 0.75, 1.0, 1.4]),
    depth=st.sampled_from([0.5, 1.0]),
    resolution=st.tuples(st.integers(32, 320), st.integers(32, 320)),
    num_classes=st.integers(1, 2000),
    kwargs=st.sampled_from([(), (("dropout", 0.2),), (("fix_stem_head", True), ("x", "a b"))]),
)
MADDS_LIMIT = Limit("max_madds", 1e9)


@settings(max_examples=60, deadline=None)
@given(SPECS, SPECS)
def test_a_limit_reads_the_row_of_its_configuration(spec, other):
    row = {**identity_row(spec), "madds": 7}
    assert find_row([row], spec, MADDS_LIMIT) is row
    found = find_row([row], other, MADDS_LIMIT)
    assert (found is row) == (other == spec)
    # The same row as a CSV gives it back (numbers as text, no args column when empty).
    text_row = {key: str(value) for key, value in row.items()}
    assert find_row([text_row], spec, MADDS_LIMIT) is text_row


@given(st.integers(1, 64))
def test_same_setting_reads_numbers_as_numbers(n):
    assert same_setting(n, n) and same_setting(float(n), n) and same_setting(str(n), n)
    assert not same_setting(n + 1, n) and not same_setting("channel", n)
    assert same_setting(True, True) and not same_setting(False, True)


def test_memory_and_latency_rows_must_not_contradict_the_limit():
    memory = (("dtype", "fp16"), ("mode", "efficient"), ("chunks", 4))
    fp16_t4 = Limit("max_peak_memory", 1, settings=memory)
    assert settings_match({"mem_dtype": "fp16", "mem_chunks": "4"}, fp16_t4)
    assert settings_match({"mem_dtype": "fp16", "mem_chunks": 4.0}, fp16_t4)  # a CSV float
    assert settings_match({}, fp16_t4)  # a frame without the columns contradicts nothing
    assert not settings_match({"mem_dtype": "fp16", "mem_chunks": "channel"}, fp16_t4)
    assert not settings_match({"mem_dtype": "fp32"}, fp16_t4)
    latency = (("device", "auto"), ("threads", 2), ("channels_last", True))
    two = Limit("max_latency", 1, settings=latency)
    assert settings_match({"device": "cuda", "threads": 2.0, "memory_format": "channels_last"}, two)
    assert not settings_match({"threads": 1}, two)
    assert not settings_match({"memory_format": "contiguous"}, two)
