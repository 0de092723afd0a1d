"""Plots: files by extension, the frontier, labels that do not collide, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mbprof.cli import app
from mbprof.core.errors import MbprofError
from mbprof.render.plots import AXES, draw_figure, plot_frame, plot_points, resolve_axis

runner = CliRunner()

# MAdds and params of MobileNetV2 as torchvision counts them, top-1 from the TF-Slim table.
V2 = [
    ("mobilenet_v2", 1.0, 224, 300_774_272, 3_504_872, 71.8),
    ("mobilenet_v2", 0.5, 224, 97_133_840, 1_968_680, 65.4),
    ("mobilenet_v2", 0.35, 224, 59_155_160, 1_676_232, 60.3),
    ("mobilenet_v2", 1.4, 224, 582_195_824, 6_108_776, 75.0),
    ("mobilenet_v1", 1.0, 224, 568_740_352, 4_231_976, 70.9),
    ("mobilenet_v1", 0.5, 224, 149_497_472, 1_331_592, 63.3),
]


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": m,
                "width": w,
                "depth": 1.0,
                "resolution": str(r),
                "madds": madds,
                "params": params,
                "top1": top1,
                "accuracy_source": "TF-Slim",
            }
            for m, w, r, madds, params, top1 in V2
        ]
    )


@pytest.mark.parametrize(
    "suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_figure_format_follows_the_extension(tmp_path, suffix, magic):
    path = tmp_path / f"f{suffix}"
    result = plot_frame(sample_frame(), AXES["madds"], AXES["top1"], path)
    assert path.read_bytes()[:4] == magic[:4]
    # V1 1.0 (569M, 70.9) and V1 0.5 (149M, 63.3) are dominated by V2 1.0 and V2 0.5.
    assert result.frontier["label"].tolist() == ["0.35@224", "0.5@224", "1.0@224", "1.4@224"]
    assert set(result.frontier["model"]) == {"mobilenet_v2"}


def test_same_figure_same_bytes(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    plot_frame(sample_frame(), AXES["params"], AXES["top1"], a)
    plot_frame(sample_frame(), AXES["params"], AXES["top1"], b)
    assert a.read_bytes() == b.read_bytes()


def test_labels_and_depth():
    frame = pd.DataFrame(
        [
            {
                "model": "mobilenet_v2",
                "width": 1.1,
                "depth": 1.2,
                "resolution": "224",
                "madds": 1,
                "top1": 75.05,
            },
            {
                "model": "mobilenet_v2",
                "width": 1.0,
                "depth": 1.0,
                "resolution": "160x224",
                "madds": 2,
                "top1": 70.0,
            },
        ]
    )
    points, omitted = plot_points(frame, AXES["madds"], AXES["top1"])
    assert points["label"].tolist() == ["1.1@224 d1.2", "1.0@160x224"]
    assert omitted == 0


def test_labels_do_not_overlap_on_a_sweep():
    rows = []
    for (width, top), res in itertools.product(
        [(0.35, 60.3), (0.5, 65.4), (0.75, 69.8), (1.0, 71.8), (1.4, 75.0)],
        [96, 128, 160, 192, 224],
    ):
        rows.append(
            {
                "model": "mobilenet_v2",
                "width": width,
                "depth": 1.0,
                "resolution": str(res),
                "madds": width**2 * res**2 * 6000,
                "top1": top - (224 - res) / 10,
            }
        )
    frame = pd.DataFrame(rows)
    points, _ = plot_points(frame, AXES["madds"], AXES["top1"])
    fig = draw_figure(frame, points, AXES["madds"], AXES["top1"], log_x=True)
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 25
    overlaps = sum(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    assert overlaps == 0
    inside = ax.get_window_extent(renderer)
    assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 for b in boxes)


def test_line_boxes_sample_every_3_points_and_free_a_leader_s_ends():
    # One helper samples both the frontier line (ends included) and a leader line (ends
    # left free: they sit on the marker and the label). A 30-pixel segment at 1 px per
    # point is 10 steps of 3 px: centres 0, 3.33.., 30 with the ends; 3, 6, .., 27 without.
    from mbprof.render.plots import _boxes_along

    line = _boxes_along((0.0, 5.0), (30.0, 5.0), 1.0, 1.5, ends=True)
    assert len(line) == 10
    assert line[0] == (-1.5, 3.5, 1.5, 6.5) and line[-1] == (28.5, 3.5, 31.5, 6.5)
    leader = _boxes_along((0.0, 5.0), (30.0, 5.0), 1.0, 1.0, ends=False)
    assert [(b[0] + b[2]) / 2 for b in leader] == pytest.approx([3, 6, 9, 12, 15, 18, 21, 24, 27])
    assert all(b[1] == 4.0 and b[3] == 6.0 for b in leader)
    # A segment shorter than two steps still gets two sample points with its ends.
    assert len(_boxes_along((0.0, 0.0), (1.0, 0.0), 1.0, 1.5, ends=True)) == 2


def test_latency_against_madds_draws_a_fit_with_numpy_s_correlation(tmp_path):
    frame = sample_frame()
    frame["latency_ms"] = [5.0, 2.1, 1.6, 9.0, 7.5, 3.0]
    result = plot_frame(frame, AXES["madds"], AXES["latency_ms"], tmp_path / "fit.png")
    assert result.kind == "fit" and result.frontier.empty
    r = np.corrcoef(frame["madds"], frame["latency_ms"])[0, 1]
    assert f"Pearson r = {r:.3f}" in " ".join(result.notes)


def test_rows_without_a_value_are_left_out_and_counted(tmp_path):
    frame = sample_frame()
    frame.loc[2, "top1"] = np.nan
    result = plot_frame(frame, AXES["madds"], AXES["top1"], tmp_path / "f.png")
    assert result.omitted == 1 and len(result.points) == 5


def test_unknown_axis_names_the_choices():
    with pytest.raises(MbprofError, match="--x: unknown axis 'speed'; choose one of madds"):
        resolve_axis("speed", "--x")
    assert resolve_axis("memory", "--x").column == "peak_act_bytes"


def test_cli_plot_reads_csv_and_json(tmp_path):
    csv_path = tmp_path / "sweep.csv"
    sample_frame().to_csv(csv_path, index=False)
    figure = tmp_path / "out.svg"
    result = runner.invoke(
        app,
        [
            "plot",
            str(csv_path),
            "--x",
            "params",
            "--y",
            "top1",
            "--figure",
            str(figure),
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "label,model,width,depth,resolution,params,top1,accuracy_source"
    # By hand: V1 0.5 (1.33M, 63.3) beats V2 0.35 (1.68M, 60.3) on both axes; V2 0.5
    # (1.97M, 65.4), V2 1.0 (3.50M, 71.8) and V2 1.4 (6.11M, 75.0) follow; V1 1.0
    # (4.23M, 70.9) is beaten by V2 1.0.
    rows = [line.split(",")[:2] for line in lines[1:]]
    assert rows == [
        ["0.5@224", "mobilenet_v1"],
        ["0.5@224", "mobilenet_v2"],
        ["1.0@224", "mobilenet_v2"],
        ["1.4@224", "mobilenet_v2"],
    ]
    assert figure.read_bytes().startswith(b"<?xml")
    json_path = tmp_path / "sweep.json"
    from mbprof.render.document import Document, Table, to_json

    json_path.write_text(to_json(Document("t", tables=[Table("configurations", sample_frame())])))
    result = runner.invoke(app, ["plot", str(json_path), "--figure", str(tmp_path / "j.png")])
    assert result.exit_code == 0, result.output
    assert "Pareto frontier of top1 against madds: 4 of 6" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--y", "latency"], "--y: column 'latency_ms' is not in"),
        (["--x", "speed"], "--x: unknown axis 'speed'"),
        (["--figure", "/nonexistent/dir/f.png"], "does not exist"),
        (["--figure", "f.jpg"], "give a file ending in .png, .svg or .pdf"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    csv_path = tmp_path / "sweep.csv"
    sample_frame().to_csv(csv_path, index=False)
    result = runner.invoke(app, ["plot", str(csv_path), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if "latency" in args:
        assert "axes available there: madds, params, top1" in result.stderr


# --- reading a figure: whose point, which variant, what a log axis says -------------------


def _texts(fig) -> list[str]:
    (ax,) = fig.axes
    return [t.get_text() for t in ax.texts]


def test_labels_name_the_model_when_a_figure_holds_several():
    frame = sample_frame()
    points, _ = plot_points(frame, AXES["madds"], AXES["top1"])
    texts = _texts(draw_figure(frame, points, AXES["madds"], AXES["top1"]))
    # Two "1.0@224" points (V2 and V1), told apart by their family.
    assert "MobileNetV2 1.0@224" in texts and "MobileNetV1 1.0@224" in texts
    alone = frame[frame["model"] == "mobilenet_v2"].reset_index(drop=True)
    points, _ = plot_points(alone, AXES["madds"], AXES["top1"])
    assert "1.0@224" in _texts(draw_figure(alone, points, AXES["madds"], AXES["top1"]))


def test_the_legend_names_the_variant():
    from mbprof.render.plots import variant_name

    frame = pd.DataFrame(
        [
            {"model": m, "width": 1.0, "depth": 1.0, "resolution": "224", "madds": madds, "top1": t}
            for m, madds, t in [
                ("mobilenet_v3_small", 56_516_256, 67.5),
                ("mobilenet_v3_large", 216_589_720, 75.2),
                ("mobilenet_v2", 300_774_272, 71.8),
            ]
        ]
    )
    points, _ = plot_points(frame, AXES["madds"], AXES["top1"])
    fig = draw_figure(frame, points, AXES["madds"], AXES["top1"])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[:3] == ["MobileNetV3-Large", "MobileNetV3-Small", "MobileNetV2"]
    assert "MobileNetV3-Small 1.0@224" in _texts(fig)
    assert variant_name("shufflenet_v1_g3", "ShuffleNet v1") == "ShuffleNet v1 (g3)"
    assert variant_name("mypkg.nets:build", "user model") == "user model (mypkg.nets:build)"


def _labelled(axis, low: float, high: float) -> list[float]:
    return [v for v in axis.get_majorticklocs() if low <= v <= high]


def test_a_log_axis_says_so_and_labels_enough_ticks():
    frame = sample_frame()  # MAdds from 59M to 582M
    points, _ = plot_points(frame, AXES["madds"], AXES["top1"])
    fig = draw_figure(frame, points, AXES["madds"], AXES["top1"], log_x=True)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "MAdds (millions, batch 1, log scale)"
    assert ax.get_ylabel() == "ImageNet top-1 (%)"
    low, high = ax.get_xlim()  # 59 to 582, with margins
    assert low < 59 and high > 582
    expected = [v for v in (50, 100, 200, 300, 500) if low <= v <= high]
    assert _labelled(ax.xaxis, low, high) == pytest.approx(expected)
    assert 300 in expected  # 1, 2, 3 and 5 of each decade: 300M can be read off
    # A span under one decade (40 to 60) labels every digit: 40, 50, 60.
    narrow = frame.iloc[:3].assign(madds=[40e6, 50e6, 60e6])
    points, _ = plot_points(narrow, AXES["madds"], AXES["top1"])
    (ax,) = draw_figure(narrow, points, AXES["madds"], AXES["top1"], log_x=True).axes
    assert _labelled(ax.xaxis, *ax.get_xlim()) == pytest.approx([40, 50, 60])


def _profile(shares):
    from mbprof.core.records import LayerProfile, LayerTime

    rows = tuple(
        LayerTime(f"features.{i}.conv", "Conv2d", s / 10, madds=1000, time_share_pct=s,
                  intensity=2.0 + 0.01 * i, gflops=1.0 + 0.01 * i, kind="pointwise conv")
        for i, s in enumerate(shares)
    )  # fmt: skip
    return LayerProfile(
        "eager", 1, "fp32", rows, sum(shares) / 10, sum(shares) / 10, 5, 100.0, 10.0
    )


def test_roofline_markers_labels_and_an_unstable_timing():
    from mbprof.render.plots.roofline import draw_roofline

    fig = draw_roofline(_profile([1.0, 10.0, 5.0, 4.0]), "t", unstable="spread 80% > 25%")
    ax = fig.axes[0]
    (sizes,) = [c.get_sizes() for c in ax.collections if len(c.get_sizes()) == 4]
    assert sizes[1] == pytest.approx(10 * sizes[0])  # area proportional to the share
    texts = [t.get_text() for t in fig.texts]
    assert any(t.startswith("UNSTABLE timing behind this figure: spread 80%") for t in texts)
    # four labels on four nearly coincident points: none overlaps another
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text().startswith("feat")]
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
