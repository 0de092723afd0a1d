"""``max_model_size``: the bytes of the file a backend runs, limited in a budget file
(parsing, matching rows, sharing the run of a latency limit) and checked end to end."""

from __future__ import annotations

import json

import pytest

from mbprof.checks.budget_file import BudgetFileError, parse_budgets
from mbprof.checks.limits import EXCEEDED, HELD
from mbprof.checks.matching import check_rows, latency_kwargs, requests_for
from tests.support.rows import config_row
from tests.support.tiny_models import tiny_models  # noqa: F401  (a fixture)

HEAD = '[[budget]]\nmodel = "mobilenet_v2"\n'


def test_a_size_alone_limits_the_executorch_fp32_file():
    (budget,) = parse_budgets(HEAD + 'max_model_size = "4 MB"\n', "b.toml").budgets
    (size,) = budget.limits
    assert (size.key, size.value, size.line, size.column) == (
        "max_model_size", 4_000_000, 3, "deployed_bytes"
    )  # fmt: skip
    assert size.setting("backend") == "executorch" and size.setting("quantize") == "none"
    assert size.conditions == "executorch, fp32" and size.tolerance_pct == 0.0


def test_a_table_names_backend_and_quantization():
    text = (
        HEAD
        + 'max_model_size = { limit = "1.5 MiB", backend = "onnxruntime", quantize = "int8" }\n'
    )
    (size,) = parse_budgets(text).budgets[0].limits
    assert size.value == 1.5 * 2**20 and size.conditions == "onnxruntime, int8"
    assert latency_kwargs(size.settings) == {
        "device": "cpu", "backend": "onnxruntime", "threads": None, "batch": 1,
        "dtype": "fp32", "channels_last": False, "fuse_bn": False, "quantize": "int8",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "pieces"),
    [
        ('{ limit = "4 MB", backend = "eager" }', ["backend", "executorch, onnxruntime"]),
        ('{ limit = "4 MB", quantize = "int4" }', ["quantize", "none, int8"]),
        ('{ limit = "4 MB", threads = 2 }', ["threads"]),
        ('{ backend = "executorch" }', ["no 'limit'"]),
        ('"4 ms"', ["max_model_size"]),
    ],
)
def test_bad_size_limits_name_file_line_and_key(entry, pieces):
    with pytest.raises(BudgetFileError) as info:
        parse_budgets(HEAD + f"max_model_size = {entry}\n", "b.toml")
    assert str(info.value).startswith("b.toml:3: "), str(info.value)
    for piece in pieces:
        assert piece in str(info.value)


def test_a_latency_limit_under_the_same_settings_shares_the_run():
    text = (
        HEAD + 'max_latency = { limit = "5 ms", backend = "executorch" }\nmax_model_size = "4 MB"\n'
    )
    (request,) = requests_for(parse_budgets(text).budgets)  # one export and timing for both
    assert dict(request.latency)["backend"] == "executorch"
    int8 = HEAD + 'max_latency = { limit = "5 ms", backend = "executorch" }\n'
    int8 += 'max_model_size = { limit = "1 MB", quantize = "int8" }\n'
    assert len(requests_for(parse_budgets(int8).budgets)) == 2


def test_size_limits_read_the_row_of_their_backend_and_quantization():
    text = HEAD + (
        'max_model_size = [ { limit = "4 MB" }, { limit = "1 MB", quantize = "int8" } ]\n'
    )
    common = dict(device="cpu", batch=1, dtype="fp32", memory_format="contiguous", fuse_bn=False)
    rows = [
        config_row(backend="onnxruntime", quantize="none", deployed_bytes=1, **common),
        config_row(backend="executorch", quantize="none", deployed_bytes=3_900_000, **common),
        config_row(backend="executorch", quantize="int8", deployed_bytes=1_050_000, **common),
    ]
    fp32, int8 = check_rows(parse_budgets(text), rows)
    assert fp32.measured == 3_900_000 and fp32.status == HELD
    assert int8.measured == 1_050_000 and int8.status == EXCEEDED  # sizes take no tolerance
    assert "executorch, int8" in int8.message and "1.05 MB" in int8.message


@pytest.mark.slow  # an ONNX export (seconds)
@pytest.mark.usefixtures("tiny_models")
def test_check_measures_a_size_limit(run, tmp_path):
    pytest.importorskip("onnxruntime")
    budgets = tmp_path / "budgets.toml"
    # test_tiny: 111 weights, 444 bytes of fp32 inside an .onnx file of a few hundred more
    limits = '{ limit = "100 KB", backend = "onnxruntime" }, { limit = "100 B", backend = "onnxruntime" }'
    budgets.write_text(
        f'[[budget]]\nmodel = "test_tiny"\nresolution = 32\nmax_model_size = [{limits}]\n'
    )
    result = run("check", str(budgets), "--format", "json")
    assert result.exit_code == 1, result.output  # the second limit is exceeded
    held, exceeded = json.loads(result.stdout)["tables"]["limits"]
    assert held["status"] == "held" and exceeded["status"] == "exceeded"
    assert 444 < held["measured"] < 100_000
