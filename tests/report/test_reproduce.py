"""`mbprof reproduce`: the committed reports/ is the command's output (counts and memory
regenerated here and compared), the paper's values are the paper's, and bad folders are
refused."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from mbprof.api import reproduce
from mbprof.core.errors import MbprofError
from mbprof.report.plan import MARKER, is_measured, read_data
from mbprof.report.tables import table3_paper_problems
from tests.conftest import assert_one_line_error
from tests.support import ROOT

REPORTS = ROOT / "reports"


def _counted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if not is_measured(c)]]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """Table 4 and Table 3 regenerated without latency (the quick, counted parts)."""
    out = tmp_path_factory.mktemp("fresh") / "reports"
    reproduce(out, parts=("table4", "table3"), latency=False)
    return out


@pytest.mark.slow  # Tables 4 and 3 regenerated
def test_committed_table4_matches_a_fresh_run(fresh):
    committed = pd.read_csv(REPORTS / "table4.csv")
    regenerated = pd.read_csv(fresh / "table4.csv")
    pd.testing.assert_frame_equal(_counted(regenerated), _counted(committed))


@pytest.mark.slow  # Tables 4 and 3 regenerated
def test_committed_table3_matches_a_fresh_run(fresh):
    if not (REPORTS / "table3.csv").exists():
        assert not (fresh / "table3.csv").exists()  # no memory analysis in either
        return
    pd.testing.assert_frame_equal(
        pd.read_csv(fresh / "table3.csv"), pd.read_csv(REPORTS / "table3.csv")
    )


@pytest.mark.slow  # Tables 4 and 3 regenerated
def test_committed_inconsistencies_are_what_reproduce_writes(fresh):
    # Counts only (no latency in its text): a run with latency writes the same bytes.
    committed = (REPORTS / "inconsistencies.md").read_text(encoding="utf-8")
    assert (fresh / "inconsistencies.md").read_text(encoding="utf-8") == committed
    assert "timm's model index" in committed and "to the digit, line by line" in committed


def test_committed_sweep_rows_match_fresh_counts():
    from mbprof.api import compare

    sweep = pd.read_csv(REPORTS / "sweep.csv")
    for model, width, res in (("mobilenet_v2", 0.35, 96), ("mobilenet_v1", 0.25, 128)):
        fresh = compare([model], [width], resolutions=[res], latency=False)
        fresh = pd.read_csv(io.StringIO(fresh.to_csv(index=False)))  # as the CSV stores it
        row = sweep[(sweep["model"] == model) & (sweep["width"] == width)]
        row = row[row["resolution"].astype(str) == str(res)].reset_index(drop=True)
        assert len(row) == 1
        counted = [c for c in _counted(fresh).columns if c in row.columns]
        for column in counted:
            assert str(row.loc[0, column]) == str(fresh.loc[0, column]), column


def test_committed_readme_lists_files_that_exist():
    text = (REPORTS / "README.md").read_text()
    assert text.startswith(MARKER)
    for name in ("table4.md", "table4.csv", "sweep.csv", "inconsistencies.md", "pareto.md"):
        assert f"]({name})" in text and (REPORTS / name).is_file()
    for png in REPORTS.glob("figures/*.png"):
        assert f"(figures/{png.name})" in text
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_table4_holds_the_paper_s_values():
    # Seed 002, Table 4, as printed.
    expected = {
        "MobileNetV1": (70.6, 4.2, 575, 113),
        "ShuffleNet (1.5)": (71.5, 3.4, 292, None),
        "ShuffleNet (x2)": (73.7, 5.4, 524, None),
        "NasNet-A": (74.0, 5.3, 564, 183),
        "MobileNetV2": (72.0, 3.4, 300, 75),
        "MobileNetV2 (1.4)": (74.7, 6.9, 585, 143),
    }
    got = {
        r["network"]: (
            float(r["top1"]),
            float(r["params_m"]),
            float(r["madds_m"]),
            float(r["phone_ms"]) if r["phone_ms"] else None,
        )
        for r in read_data("paper_table4.csv")
    }
    assert got == expected


@pytest.mark.slow  # Tables 4 and 3 regenerated
def test_fresh_table4_counts_mobilenet_v2_as_torchvision(fresh):
    table = pd.read_csv(fresh / "table4.csv").set_index("network")
    # architectures.md: 300,774,272 MAdds and 3,504,872 params (torchvision's count).
    assert table.loc["MobileNetV2", "madds"] == 300_774_272
    assert table.loc["MobileNetV2", "params"] == 3_504_872
    # Without batch norm: 3,504,872 - 2 x 17,056 BN channels (hand sum over the layers).
    bn_channels = (
        32
        + 32
        + 16
        + sum(c * 6 * 2 + c2 for c, c2 in [(16, 24), (24, 24), (24, 32), (32, 32), (32, 32)])
    )
    bn_channels += sum(c * 6 * 2 + c2 for c, c2 in [(32, 64)] + [(64, 64)] * 3)
    bn_channels += sum(c * 6 * 2 + c2 for c, c2 in [(64, 96)] + [(96, 96)] * 2)
    bn_channels += sum(c * 6 * 2 + c2 for c, c2 in [(96, 160)] + [(160, 160)] * 2)
    bn_channels += 160 * 6 * 2 + 320 + 1280
    assert table.loc["MobileNetV2", "params_without_bn"] == 3_504_872 - 2 * bn_channels


def test_table3_arithmetic_by_hand():
    problems = " ".join(table3_paper_problems())
    # 1024 x 7 x 7 x 2 = 100,352 bytes, printed 199K; ShuffleNet's max 600K under its 800K.
    assert "MobileNetV1 at 7x7: 1024 channels" in problems and "100,352 bytes" in problems
    assert "the **max** row prints 600K, but the largest cell of the same column prints 800K" in (
        problems
    )
    # 1280 x 1 x 1 x 2 = 2,560 bytes printed as 2K: whole kilobytes, not an error.
    assert "at 1x1" not in problems
    assert len(table3_paper_problems()) == 2


def test_a_folder_of_other_files_is_refused(tmp_path, run):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(MbprofError, match="did not write"):
        reproduce(tmp_path, parts=("table4",), latency=False)
    assert_one_line_error(run("reproduce", "--out", str(tmp_path)), "--out", "did not write")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.slow  # Tables 4 and 3 regenerated
def test_fresh_table3_by_hand(fresh):
    table = pd.read_csv(fresh / "table3.csv", dtype={"size": str})
    cell = table.set_index(["model", "size"])
    # channels x 112 x 112 x 2 bytes (fp16): V1 64 channels, V2 16 in the efficient mode.
    assert cell.loc[("mobilenet_v1", "112"), "tensor_bytes"] == 64 * 112 * 112 * 2
    assert cell.loc[("mobilenet_v2", "112"), "tensor_bytes"] == 16 * 112 * 112 * 2
    assert cell.loc[("mobilenet_v2", "112"), "materialized_bytes"] == 96 * 112 * 112 * 2
    assert cell.loc[("mobilenet_v1", "7"), "tensor_bytes"] == 1024 * 7 * 7 * 2
    # The paper's values as printed (seed 002): V1 7x7 1024/199, V2 max 400.
    assert cell.loc[("mobilenet_v1", "7"), "paper_kbytes"] == 199
    assert cell.loc[("mobilenet_v2", "max"), "paper_kbytes"] == 400


def test_latency_rows_carry_their_environment():
    from mbprof.api import make_spec
    from mbprof.api.reporting import measure_configs, report_latency

    frame = measure_configs(
        [make_spec("mobilenet_v2", 0.35, 1.0, 64)],
        latency=report_latency({"min_time_s": 0.001, "warmup": 1}),
        with_memory=False,
    )
    row = frame.iloc[0]
    assert row["latency_ms"] > 0 and row["runs"] >= 1
    assert (row["threads"], row["batch"], row["backend"], row["dtype"]) == (1, 1, "eager", "fp32")
    assert bool(row["fuse_bn"]) and row["memory_format"] == "channels_last"


def test_table4_shows_the_cpu_column_beside_the_phone(tmp_path):
    from mbprof.report.tables import table4_frame, table4_markdown

    frame = pd.DataFrame(
        [
            {
                "model": "mobilenet_v2",
                "width": 1.0,
                "resolution": "224",
                "madds": 300_774_272,
                "params": 3_504_872,
                "latency_ms": 12.34,
            }
        ]
    )
    t4 = table4_frame(frame, lambda model, width: 34_112)  # MobileNetV2 1.0's batch norms
    assert t4["network"].tolist() == ["MobileNetV2"]  # rows without mbprof figures left out
    text = table4_markdown(t4, "this machine")
    header = next(line for line in text.splitlines() if line.startswith("| Network"))
    assert header.endswith("| Phone CPU, paper (ms) | CPU here (ms) |")
    row = next(line for line in text.splitlines() if line.startswith("| MobileNetV2 |"))
    assert row.endswith("| 75 | 12.3 |")


def test_prepare_plans_every_configuration_before_measuring(tmp_path):
    from mbprof.api.reporting import prepare_reproduce

    run = prepare_reproduce(tmp_path / "reports", latency=False)
    # The released checkpoints' grids: V2 6 widths x 5 resolutions, V1 4 x 4, ShuffleNet 4,
    # NASNet 1, V3 large and small 2 each; Table 4's six networks are all among them.
    assert len(run.specs) == 6 * 5 + 4 * 4 + 4 + 1 + 2 + 2
    assert run.latency is None
    assert run.left_out == ["latency (CPU here): not measured in this run (--no-latency)"]
    table4 = prepare_reproduce(tmp_path / "reports", parts=("table4",), latency=False)
    assert [s.label for s in table4.specs] == [
        "mobilenet_v1 1.0@224",
        "shufflenet_v1_g3 1.5@224",
        "shufflenet_v1_g3 2.0@224",
        "nasnet_a_mobile 1.0@224",
        "mobilenet_v2 1.0@224",
        "mobilenet_v2 1.4@224",
    ]
    assert set(table4.specs) <= set(run.specs)
    assert not (tmp_path / "reports").exists()  # planning writes nothing


def test_latency_against_madds_reports_its_fit(tmp_path):
    from mbprof.report.figures import write_figures
    from mbprof.report.plan import ReproduceResult

    # Latency exactly proportional to MAdds (0.05 ms per million): r = rho = 1.
    frame = pd.DataFrame(
        [
            {"model": m, "width": w, "resolution": "224", "madds": madds, "latency_ms": ms}
            for m, w, madds, ms in [
                ("mobilenet_v1", 1.0, 600_000_000, 30.0),
                ("mobilenet_v2", 1.0, 300_000_000, 15.0),
                ("mobilenet_v2", 0.5, 100_000_000, 5.0),
            ]
        ]
    )
    result = ReproduceResult(out=tmp_path)
    text = write_figures(frame, tmp_path, result)
    assert result.files == [("figures/latency_vs_madds.png", "CPU latency against MAdds")]
    assert (tmp_path / "figures" / "latency_vs_madds.png").read_bytes()[:4] == b"\x89PNG"
    assert "Over 3 configurations: Pearson r = 1.000, Spearman rank correlation = 1.000." in text
    assert "MobileNetV1 1.0@224 (600M MAdds) took 30.0 ms here" in text
    assert "MobileNetV2 1.0@224 (300M) 15.0 ms." in text
    assert "figures/top1_vs_madds.png: the sweep has no top1" in result.left_out
