"""The per-layer table as designers read it: grouped by module or by layer type (sums that
match hand counts of MobileNetV2), every estimate of a row in its own column, integers kept
integers in JSON and CSV, and the FLOPs table with its rules."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from mbprof.core.errors import MbprofError
from mbprof.core.records import LayerRow
from mbprof.render.document import to_csv, to_json
from mbprof.render.profile_view import check_grouping, layer_type, profile_document
from tests.conftest import counted

# MobileNetV2's depthwise convs: 32 (first block), then 6 x each block's input channels.
DEPTHWISE_CHANNELS = [32, 96, 144, 144, 192, 192, 192, *[384] * 4, *[576] * 3, *[960] * 3]


def table(doc, name: str) -> pd.DataFrame:
    return next(t.frame for t in doc.tables if t.name == name)


@pytest.fixture(scope="module")
def v2():
    return counted("mobilenet_v2")  # 1.0@224, counts only


def test_modules_to_depth_2_are_the_blocks(v2):
    frame = table(profile_document(v2, "module", 2), "modules").set_index("module")
    # features.3, a t = 6 block at 56x56 (24 -> 144 -> 24): expand + depthwise + project.
    assert frame.loc["features.3", "madds"] == 56 * 56 * (24 * 144 + 144 * 9 + 144 * 24)
    assert frame.loc["features.3", "layers"] == 6  # 3 convs, 3 batch norms
    assert frame.loc["features.3", "output_hw"] == "56x56"
    assert list(frame.index[:3]) == ["(model)", "features.0", "features.1"]
    assert frame["madds"].sum() == 300_774_272 and frame["params"].sum() == 3_504_872
    depth_1 = table(profile_document(v2, max_depth=1), "modules")  # a depth alone: modules
    assert depth_1["module"].tolist() == ["(model)", "features", "classifier"]


def test_layer_types_share_of_madds_and_params(v2):
    doc = profile_document(v2, "type")
    frame = table(doc, "layer_types").set_index("layer_type")
    dw = frame.loc["depthwise conv 3x3"]
    assert dw["layers"] == 17 and dw["params"] == 9 * sum(DEPTHWISE_CHANNELS)
    assert frame.loc["fully connected", "params"] == 1280 * 1000 + 1000
    assert frame.loc["fully connected", "madds"] == 1280 * 1000
    assert frame.loc["conv 3x3", "madds"] == 112 * 112 * 32 * 3 * 9  # the stem
    assert frame.loc["BatchNorm2d", "params"] == 2 * 17_056  # scale and shift per channel
    assert frame.index[0] == "pointwise conv 1x1"  # most of the MAdds
    assert frame["madds_share"].sum() == pytest.approx(100.0)
    assert frame["params_share"].sum() == pytest.approx(100.0)
    assert frame["madds"].sum() == 300_774_272


def test_layer_type_names():
    def row(**kw) -> LayerRow:
        return LayerRow(path="x", type="Conv2d", madds=0, other_flops=0, params=0, **kw)

    assert layer_type(row(kernel=(3, 3), groups=8, in_channels=8, out_channels=8)) == (
        "depthwise conv 3x3"
    )
    assert layer_type(row(kernel=(1, 1), groups=3, in_channels=24, out_channels=48)) == (
        "group conv 1x1"
    )
    assert layer_type(row(kernel=(1, 1), groups=1, in_channels=8, out_channels=16)) == (
        "pointwise conv 1x1"
    )
    assert layer_type(row(kernel=(5, 5), groups=1, in_channels=3, out_channels=16)) == "conv 5x5"


def test_grouping_choices_are_checked():
    assert check_grouping("layer", None) == ("layer", None)
    assert check_grouping("module", None) == ("module", 2)
    assert check_grouping("layer", "3") == ("module", 3)
    with pytest.raises(MbprofError, match="^by: 'blocks' is not a grouping") as bad:
        check_grouping("blocks", None)
    assert bad.value.field == "by"
    with pytest.raises(MbprofError, match="^max_depth: .* does not go with type"):
        check_grouping("type", 2)
    with pytest.raises(MbprofError, match="^max_depth: 0 is too small"):
        check_grouping("module", 0)


def test_every_row_says_what_was_estimated_for_it(v2):
    doc = profile_document(v2)
    layers = doc.tables[0]
    assert "other_flops" not in layers.hidden_in_text and layers.headers["other_flops"]
    bn = layers.frame.set_index("path").loc["features.0.1"]
    assert (bn["madds"], bn["other_flops"]) == (0, 2 * 32 * 112 * 112)  # 2 per element


def test_json_and_csv_keep_integers_integers(v2):
    doc = profile_document(v2)
    rows = json.loads(to_json(doc))["tables"]["layers"]
    conv = next(r for r in rows if r["path"] == "features.1.conv.0.0")
    assert conv["groups"] == 32 and isinstance(conv["groups"], int)
    assert (conv["in_channels"], conv["out_channels"]) == (32, 32)
    assert rows[0]["groups"] is None  # the model's own row has none
    csv_rows = to_csv(doc).splitlines()
    assert csv_rows[1].startswith("(model),MobileNetV2,,,,")
    assert any(
        line.startswith("features.1.conv.0.0,Conv2d,3x3,1x1,32,32 -> 32,32,32,")
        for line in csv_rows
    )
    frame = pd.read_csv(io.StringIO(to_csv(doc)))
    assert frame["madds"].sum() == 300_774_272


def test_the_flops_table_states_each_rule(v2):
    doc = profile_document(v2)
    flops = json.loads(to_json(doc))["tables"]["flops"]
    by_kind = {r["kind"]: r for r in flops}
    assert by_kind["multiply_adds"]["flops"] == 2 * 300_774_272
    assert all(r["rule"] for r in flops)
    assert sum(r["flops"] for r in flops) == json.loads(to_json(doc))["facts"]["flops"]
    assert any("614.97M" in note for note in doc.notes)
