"""mbprof diff: per-layer deltas that sum to the totals' difference, matching by path then
structure, latency against the noise of both timings, settings that differ warned about,
result files read as data."""

from __future__ import annotations

import json
import sys

import pytest

from mbprof.api import make_spec
from mbprof.api.diff import diff
from tests.conftest import assert_one_line_error


@pytest.fixture(scope="module")
def widths_160(tmp_path_factory):
    """profile --format json of MobileNetV2 1.0 and 0.75 at 160, as files."""
    from typer.testing import CliRunner

    from mbprof.cli import app

    folder = tmp_path_factory.mktemp("diff")
    paths = []
    for width in ("1.0", "0.75"):
        path = folder / f"v2_{width}.json"
        args = ["profile", "mobilenet_v2", "--width", width, "--res", "160", "-f", "json"]
        assert CliRunner().invoke(app, [*args, "-o", str(path)]).exit_code == 0
        paths.append(path)
    return paths


def _total(result, figure):
    return result.totals.set_index("figure").loc[figure]


def test_diff_of_files_sums_per_layer_to_the_totals_and_matches_the_published_madds(widths_160):
    result = diff(*widths_160)
    assert set(result.layers["match"]) == {"path"}
    for figure in ("params", "madds", "other_flops"):
        total = _total(result, figure)  # the profiles' own totals, not a sum of rows
        assert (
            result.layers[f"{figure}_delta"].sum() == total["delta"] == total.after - total.before
        )
    # TF-Slim's checkpoint table: 154M MACs at 1.0@160, 107M at 0.75@160 (rounded to 1M).
    assert abs(_total(result, "madds")["delta"] / 1e6 - (107 - 154)) <= 1
    memory = result.memory.set_index("size")
    # The last 1x1 tensor is the 1280-channel head (kept at width < 1): no change.
    assert memory.loc["1x1", "tensor_bytes_delta"] == 0
    assert result.warnings == ()


def test_diff_of_configurations_equals_the_diff_of_their_files(widths_160, run):
    from_files = diff(*widths_160)
    cli = run("diff", "mobilenet_v2", "mobilenet_v2", "--res", "160", "--width-after", "0.75",
              "-f", "json")  # fmt: skip
    assert cli.exit_code == 0, cli.stderr
    payload = json.loads(cli.stdout)
    assert payload["kind"] == "diff"
    rows = payload["tables"]["layers"]
    assert rows == json.loads(from_files.layers.to_json(orient="records"))
    assert sum(r["madds_delta"] for r in rows) == _total(from_files, "madds")["delta"]


def test_rows_whose_paths_differ_are_matched_by_structure_and_still_sum():
    result = diff(
        make_spec("mobilenet_v1", resolution=64), make_spec("mobilenet_v2", resolution=64)
    )
    how = set(result.layers["match"])
    assert "structure" in how and "after only" in how  # v2 has more layers than v1
    structure = result.layers[result.layers["match"] == "structure"]
    assert (structure["after_path"].notna()).all()
    assert result.layers["madds_delta"].sum() == _total(result, "madds")["delta"]


def _bench(ms, p10, p90, threads=1, layer_ms=(1.0, 2.0)):
    """A bench --layers document as written (only the keys diff reads)."""
    row = {"model": "mobilenet_v2", "width": 1.0, "resolution": "96", "madds": 10,
           "latency_ms": ms, "latency_p10_ms": p10, "latency_p90_ms": p90,
           "device": "cpu", "backend": "eager", "dtype": "fp32", "threads": threads, "batch": 1}  # fmt: skip
    layers = [
        {"path": p, "type": "Conv2d", "layer_time_ms": t, "madds": 5, "output_shape": "1x8x4x4"}
        for p, t in zip(("a", "b"), layer_ms, strict=True)
    ]
    return {"kind": "bench", "tables": {"layers": layers, "latency": [row]},
            "layers": {"profiled_ms": sum(layer_ms)}}  # fmt: skip


def test_two_timings_are_within_noise_unless_their_ranges_part():
    # Noise bound: half of each p10-p90 spread, added: (11 - 9) / 2 + (11.6 - 9.5) / 2 = 2.05.
    same = diff(_bench(10.0, 9.0, 11.0), _bench(10.5, 9.5, 11.6))
    latency = _total(same, "latency_ms")
    assert latency["noise_ms"] == pytest.approx(2.05)
    assert latency["verdict"] == "within noise"
    # 14 - 10 = 4 > 1 + 0.5: slower. Layer b: 2 ms at 20% spread and 6 ms at 1/14: 0.2 + 0.214.
    slower = diff(_bench(10.0, 9.0, 11.0), _bench(14.0, 13.5, 14.5, layer_ms=(1.0, 6.0)))
    assert _total(slower, "latency_ms")["verdict"] == "slower"
    assert list(slower.layers["verdict"]) == ["within noise", "slower"]
    assert slower.layers["layer_time_ms_delta"].sum() == _total(slower, "profiled_ms")["delta"]
    assert slower.warnings == ()


def test_settings_that_differ_are_warned_about(tmp_path, run):
    before, after = tmp_path / "one.json", tmp_path / "two.json"
    before.write_text(json.dumps(_bench(10.0, 9.0, 11.0)))
    after.write_text(json.dumps(_bench(10.0, 9.0, 11.0, threads=4)))
    result = run("diff", str(before), str(after))
    assert result.exit_code == 0, result.stderr
    assert "mbprof: warning:" in result.stderr and "threads (1 against 4)" in result.stderr
    assert "threads (1 against 4)" in result.stdout  # the document says so too


def test_a_result_file_is_data_its_import_path_never_imported(tmp_path, run):
    payload = _bench(10.0, 9.0, 11.0)
    payload["tables"]["latency"][0]["model"] = "diff_never_imported:build"
    path = tmp_path / "user.json"
    path.write_text(json.dumps(payload))
    result = run("diff", str(path), str(path), "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    assert "diff_never_imported" in result.stdout and "diff_never_imported" not in sys.modules


def test_a_sweep_file_is_refused_in_one_line(tmp_path, run):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps({"tables": {"configurations": [{"model": "a"}, {"model": "b"}]}}))
    assert_one_line_error(run("diff", str(path), str(path)), "holds 2 configurations")
    assert_one_line_error(run("diff", str(tmp_path / "nothing.json"), "mobilenet_v2"),
                          "does not exist")  # fmt: skip


def test_notebook_display_and_dataframe(widths_160):
    result = diff(*widths_160)
    frame = result.to_dataframe()
    assert {"match", "path", "madds_delta"} <= set(frame.columns) and len(frame) == 106
    html = result._repr_html_()
    assert html.startswith("<div>") and "features.18.0" in html and "<script" not in html
