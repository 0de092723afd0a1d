"""Published accuracy: the shipped data against the shared reference, the source rule,
the join, and a user's file (figures from the sources, never from mbprof's output)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mbprof.cli import app
from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec
from mbprof.frame.accuracy import DATA_FILE, accuracy_table, join, read_accuracy_csv, shipped
from tests.support import ROOT

runner = CliRunner()


def _reference() -> Path | None:
    for base in (ROOT.parent, ROOT.parent.parent, Path("/work")):
        path = base / "shared" / "reference" / "accuracy.csv"
        if path.is_file():
            return path
    return None


def frame(*configs: tuple) -> pd.DataFrame:
    rows = []
    for config in configs:
        model, width, depth, res, *args = config
        row = {"model": model, "width": width, "depth": depth, "resolution": res, "madds": 1}
        if args:
            row["args"] = args[0]
        rows.append(row)
    return pd.DataFrame(rows)


def test_shipped_data_keeps_every_row_of_the_reference():
    reference = _reference()
    if reference is None:
        pytest.skip("the shared reference accuracy.csv is not beside this checkout")
    with reference.open() as handle:
        expected = list(csv.DictReader(handle))
    entries = shipped().entries()
    assert len(entries) == len(expected) == 52
    for row in expected:
        matches = [
            e
            for e in entries
            if e.model == row["model"]
            and e.width == float(row["width"])
            and e.depth == float(row["depth"])
            and e.resolution == row["resolution"]
            and e.top1 == float(row["top1"])
        ]
        assert len(matches) == 1, row
        entry = matches[0]
        assert entry.top5 == (float(row["top5"]) if row["top5"] else None)
        assert entry.phone_latency_ms == (float(row["latency_ms"]) if row["latency_ms"] else None)
    with DATA_FILE.open() as handle:
        assert {r["reference"] for r in csv.DictReader(handle)} == {r["source"] for r in expected}


def test_paper_table4_is_preferred_then_tfslim_then_timm():
    joined = join(
        frame(
            ("mobilenet_v2", 1.0, 1.0, "224"),
            ("mobilenet_v2", 1.4, 1.0, 224),
            ("mobilenet_v1", 1.0, 1.0, "224"),
            ("mobilenet_v2", 0.35, 1.0, "96"),
            ("mobilenet_v2", 1.1, 1.2, "224", "fix_stem_head=True"),
            ("mobilenet_v2", 1.1, 1.2, "224"),  # a different network from timm's 110d
            ("mobilenet_v2", 0.6, 1.0, "224"),
        )
    )
    # MobileNetV2 paper, Table 4 (seed 002): 72.0 / 75 ms, 74.7 / 143 ms, V1 70.6 / 113 ms.
    assert joined["top1"].tolist()[:3] == [72.0, 74.7, 70.6]
    assert joined["phone_latency_ms"].tolist()[:3] == [75.0, 143.0, 113.0]
    assert set(joined["accuracy_source"][:3]) == {"MobileNetV2 paper, Table 4"}
    assert joined["top5"][:3].isna().all()  # the paper gives no top-5; none is borrowed
    # TF-Slim table: 0.35@96 is 45.5 / 70.4, 4.5 ms on a Pixel 1.
    assert joined.loc[3, ["top1", "top5", "phone_latency_ms"]].tolist() == [45.5, 70.4, 4.5]
    assert joined.loc[3, "accuracy_source"] == "TF-Slim MobileNetV2 checkpoints"
    # timm's mobilenetv2_110d only with its fixed stem and head.
    assert joined.loc[4, ["top1", "top5"]].tolist() == [75.05, 92.19]
    assert joined.loc[4, "accuracy_source"] == "timm (own training recipe)"
    assert joined.loc[5:, "top1"].isna().all()
    assert joined.loc[5:, "accuracy_source"].isna().all()


def test_all_sources_are_kept_for_the_report():
    sources = shipped().all_sources(ModelSpec("mobilenet_v2"))  # 1.0@224
    assert [(s.source, s.top1) for s in sources] == [
        ("MobileNetV2 paper, Table 4", 72.0),
        ("TF-Slim MobileNetV2 checkpoints", 71.8),
        ("timm (own training recipe)", 72.95),
    ]


def test_a_frame_without_published_configurations_is_unchanged():
    plain = frame(("mobilenet_v2", 0.6, 1.0, "224"))
    assert list(join(plain).columns) == list(plain.columns)


def test_user_file_comes_first_and_shipped_figures_fill_the_rest(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("model,width,depth,resolution,top1\nmobilenet_v2,1.0,1.0,224,73.5\n")
    joined = join(
        frame(("mobilenet_v2", 1.0, 1.0, "224"), ("mobilenet_v2", 0.5, 1.0, "224")),
        accuracy_table(path),
    )
    assert joined["top1"].tolist() == [73.5, 65.4]
    assert joined["accuracy_source"].tolist() == [
        "user file mine.csv",
        "TF-Slim MobileNetV2 checkpoints",
    ]


def test_user_file_with_source_and_top5(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "model,width,depth,resolution,top1,top5,source,notes\n"
        "mobilenet_v2,0.6,1,160x224,60.25,82.5,my run 7,ignored\n"
    )
    joined = join(frame(("mobilenet_v2", 0.6, 1.0, "160x224")), accuracy_table(path))
    assert joined.loc[0, ["top1", "top5", "accuracy_source"]].tolist() == [60.25, 82.5, "my run 7"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("model,width,resolution,top1\nmobilenet_v2,1,224,70\n", "no column depth"),
        ("model,width,depth,resolution\nmobilenet_v2,1,1,224\n", "no column top1"),
        ("model,width,depth,resolution,top1\nmobilenet_v2,1,1,224,170\n", "between 0 and 100"),
        ("model,width,depth,resolution,top1\nmobilenet_v2,x,1,224,70\n", "width 'x'"),
        ("model,width,depth,resolution,top1\nmobilenet_v2,1,1,12,70\n", "too small"),
        ("model,width,depth,resolution,top1\n", "no rows"),
        (
            "model,width,depth,resolution,top1\nmobilenet_v2,1,1,224,70\nmobilenet_v2,1.0,1,224,71\n",
            "already on line 2",
        ),
    ],
)
def test_bad_user_files_are_refused_with_one_sentence(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(MbprofError, match=message):
        read_accuracy_csv(path)


def test_compare_refuses_a_bad_accuracy_file_before_counting(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("model,width,top1\nmobilenet_v2,1,70\n")
    result = runner.invoke(app, ["compare", "--accuracy", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no column depth, resolution" in lines[0] and "model, width, depth" in lines[0]
    missing = runner.invoke(app, ["compare", "--accuracy", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_compare_plot_without_any_published_figure_is_refused_before_counting(tmp_path):
    result = runner.invoke(app, ["compare", "--widths", "0.6", "--plot", str(tmp_path / "f.png")])
    assert result.exit_code == 2
    assert "none of these 1 configurations has a published top-1" in result.stderr
    bad = runner.invoke(app, ["compare", "--plot", str(tmp_path / "f.jpg")])
    assert bad.exit_code == 2 and ".png, .svg or .pdf" in bad.stderr


def test_compare_joins_top1_and_draws_the_plot(tmp_path):
    figure = tmp_path / "pareto.png"
    result = runner.invoke(
        app,
        [
            "compare",
            "--res",
            "224",
            "--no-latency",
            "--no-memory",
            "--plot",
            str(figure),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    payload = json.loads(result.stdout)
    (row,) = payload["tables"]["configurations"]
    assert row["madds"] == 300_774_272  # torchvision's count (architectures.md)
    assert (row["top1"], row["accuracy_source"]) == (72.0, "MobileNetV2 paper, Table 4")
    assert [p["label"] for p in payload["tables"]["frontier"]] == ["1.0@224"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
