"""Real-world patterns from the command line (tests/support/real_world_models.py, by import
path): counted with a note on the path the sizing took, or refused in one line that names
the model and the reason (exit 2); parameters inference never reads marked per layer."""

from __future__ import annotations

import csv
import io
import json

from tests.conftest import assert_one_line_error

PATH = "tests.support.real_world_models:"


def profile_json(run, name: str, resolution: int) -> dict:
    result = run(
        "profile", PATH + name, "--res", str(resolution), "--classes", "10", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_refusals_name_the_model_and_the_reason(run):
    cases = [
        ("FixedInput", "80", "Wrong image height! Expected 96 but got 80!"),
        ("ChecksTensor", "96", "TypeError: cond must be a bool, but got a Tensor"),
    ]
    for name, resolution, reason in cases:
        result = run("profile", PATH + name, "--res", resolution, "--classes", "10")
        assert_one_line_error(result, reason)
        assert f"model '{PATH}{name}' failed while running its forward pass" in result.stderr


def test_a_part_that_cannot_be_had_does_not_withhold_the_others(run):
    # profile analyses memory too, which needs a forward pass that runs without data; the
    # counts are still printed, the memory named missing in one line, exit 1
    result = run("profile", PATH + "BranchesOnValues", "--res", "32", "--classes", "10")
    assert result.exit_code == 1, result.output
    assert "MAdds and parameters" in result.stdout and "Not measured: memory:" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mbprof: not measured: memory: ")
    assert "cannot trace BranchesOnValues" in lines[0] and "Traceback" not in result.output


def test_compare_keeps_the_counts_and_the_latency_when_the_memory_fails(run, tmp_path):
    out = tmp_path / "rows.csv"
    result = run(
        "compare", "-m", PATH + "BranchesOnValues", "--res", "32", "--classes", "10",
        "--min-time", "0.001", "--warmup", "1", "--threads", "1", "--csv", str(out),
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # a figure not had (cli/_common)
    (row,) = csv.DictReader(io.StringIO(out.read_text()))
    assert int(row["params"]) == 3 * 8 * 9 + (8 * 8 * 9 + 8) + (8 * 10 + 10)  # by hand: 890
    assert float(row["latency_ms"]) > 0 and not row.get("peak_act_bytes")
    assert "cannot trace BranchesOnValues" in row["error"]


def test_sizing_notes_are_printed(run):
    notes = profile_json(run, "ArangeWidths", 96)["notes"]
    assert any("moved to the meta device as it was registered" in n for n in notes)
    notes = profile_json(run, "FixedInput", 96)["notes"]
    assert any(n.startswith("activations sized on the meta device at 96x96") for n in notes)
    result = run("memory", PATH + "ArangeWidths", "--res", "96")
    assert result.exit_code == 0, result.output


def test_unused_parameters_are_marked_per_layer(run):
    document = profile_json(run, "AuxiliaryHead", 32)
    facts = document["facts"]
    # by hand: stem 3*16*9 + 16, fc 16*10 + 10; unused aux.0 16*32 + 32, aux_fc 32*10 + 10
    assert (facts["params"], facts["params_used"]) == (448 + 170 + 544 + 330, 448 + 170)
    layers = {row["path"]: row for row in document["tables"]["layers"]}
    assert layers["aux.0"]["unused"] == "not read" and layers["aux.0"]["params_used"] == 0
    assert layers["stem"]["unused"] == "" and layers["stem"]["params_used"] == 448
    text = run("profile", PATH + "AuxiliaryHead", "--res", "32", "--classes", "10").stdout
    assert "Params used" in text and "Inference" in text
    assert sum("not read" in line for line in text.splitlines()) == 2  # aux.0, aux_fc
    plain = run("profile", PATH + "LiteralWidths", "--res", "32", "--classes", "10").stdout
    assert "not read" not in plain and "Inference" not in plain


def test_compare_rows_carry_params_used_and_notes(run):
    result = run(
        "compare", "--models", f"{PATH}AuxiliaryHead,{PATH}FixedInput", "--res", "96",
        "--classes", "10", "--format", "csv", "--no-latency",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    aux, fixed = rows
    assert int(aux["params_used"]) < int(aux["params"]) and "(in aux, aux_fc)" in aux["notes"]
    assert fixed["params_used"] == fixed["params"]
    assert fixed["notes"].startswith("activations sized on the meta device at 96x96")


def test_check_judges_a_model_whose_memory_cannot_be_traced():
    # check stops on a model that cannot be measured, but not on its memory alone: the row
    # keeps the counts, the memory limit then fails as an error
    from mbprof.api import make_spec, measure_rows
    from mbprof.core.errors import MbprofError
    from mbprof.core.settings import memory_settings

    spec = make_spec(PATH + "BranchesOnValues", resolution=32, num_classes=10)
    (row,) = measure_rows(spec, [(memory_settings(), None)], stop_on=(MbprofError,))
    assert row["params"] == 890 and "cannot trace BranchesOnValues" in row["error"]
