"""The result cache: what its key holds, entries read back only when whole, rows with an
error never kept, an unwritable folder costing one warning, and ``clear`` removing only
mbprof's entries.

Figures are checked against the hand count of MobileNetV1 (tests/cli/test_check.py).
"""

from __future__ import annotations

import json
import shutil
import warnings

import pytest

from mbprof.api import cache as rc
from mbprof.api import make_specs, prepare_compare
from mbprof.api.cache import ResultCache, analysis_key, key_name
from mbprof.core.records import ModelSpec
from mbprof.core.settings import MemorySettings
from tests.cli.test_check import mobilenet_v1_by_hand

SPECS = dict(models="mobilenet_v1", widths=[0.25, 0.5], resolutions=[64], num_classes=10)


def _sweep(folder, **options):
    run = prepare_compare(make_specs(**SPECS), with_memory=False, cache=folder, **options)
    return list(run.rows())


def _by_hand(row):
    return (row["madds"], row["params"]) == mobilenet_v1_by_hand(row["width"], 64, 10)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A cache folder holding the sweep's rows, and the rows, measured once per module."""
    folder = tmp_path_factory.mktemp("measured")
    return folder, _sweep(folder)


@pytest.fixture
def warm(measured, tmp_path):
    """A copy of ``measured``'s folder for one test to change, and the rows it holds."""
    shutil.copytree(measured[0], tmp_path, dirs_exist_ok=True)
    return tmp_path, measured[1]


@pytest.fixture
def counting(monkeypatch):
    """How many models were counted (a cached row counts none)."""
    import mbprof.analysis.counting as counting

    calls = []
    real = counting.count

    def count(model, shape, *trace, **options):
        calls.append(shape)
        return real(model, shape, *trace, **options)

    monkeypatch.setattr(counting, "count", count)
    return calls


def test_a_repeated_sweep_reads_every_row_back(tmp_path, counting):
    cold = _sweep(tmp_path)
    assert len(counting) == 2 and all(_by_hand(row) for row in cold)
    warm = _sweep(tmp_path)
    assert len(counting) == 2  # nothing counted again
    assert warm == cold and [list(r) for r in warm] == [list(r) for r in cold]  # keys in order
    assert ResultCache(tmp_path).info().entries == 2
    assert _sweep(False) == cold and len(counting) == 4  # no cache: counted afresh


def test_the_key_holds_everything_that_can_change_a_row(monkeypatch):
    spec = ModelSpec("mobilenet_v2", 1.0, 1.0, (96, 96), 1000)
    base = key_name(analysis_key(spec, MemorySettings()))
    changed = [
        ModelSpec("mobilenet_v2", 0.5, 1.0, (96, 96), 1000),
        ModelSpec("mobilenet_v2", 1.0, 0.5, (96, 96), 1000),
        ModelSpec("mobilenet_v2", 1.0, 1.0, (96, 128), 1000),
        ModelSpec("mobilenet_v2", 1.0, 1.0, (96, 96), 10),
        ModelSpec("mobilenet_v1", 1.0, 1.0, (96, 96), 1000),
        ModelSpec("mobilenet_v2", 1.0, 1.0, (96, 96), 1000, (("dropout", 0.1),)),
    ]
    names = {key_name(analysis_key(s, MemorySettings())) for s in changed}
    for memory in (None, MemorySettings("fp32"), MemorySettings("fp16", 4)):
        names.add(key_name(analysis_key(spec, memory)))
    for package in ("mbprof_source", "torch", "fvcore"):
        versions = {**rc.code_versions(), package: "other"}
        monkeypatch.setattr(rc, "code_versions", lambda v=versions: v)
        names.add(key_name(analysis_key(spec, MemorySettings())))
    monkeypatch.undo()
    assert base not in names and len(names) == len(changed) + 3 + 3
    assert key_name(analysis_key(spec, MemorySettings())) == base  # and nothing else


def test_a_user_model_is_keyed_by_its_file(tmp_path, monkeypatch):
    module = tmp_path / "cachedmodel.py"
    module.write_text(
        "from torch import nn\n\ndef build(num_classes=1000):\n    return nn.Linear(3, 2)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ModelSpec("cachedmodel:build")
    rc._module_digest.cache_clear()
    first = analysis_key(spec, None)
    module.write_text(module.read_text() + "# edited\n")
    rc._module_digest.cache_clear()
    assert analysis_key(spec, None) != first
    assert analysis_key(ModelSpec("mobilenet_v2", kwargs=(("x", object()),)), None) is None


@pytest.mark.parametrize("damage", ["", "{", '{"key": 1, "row": {}}', "\xff\xfe", '{"key": null}'])
def test_a_damaged_entry_is_ignored_and_rewritten(warm, counting, damage):
    folder, cold = warm
    entries = sorted(ResultCache(folder).folder.glob("*.json"))
    entries[0].write_bytes(damage.encode("latin-1"))
    assert _sweep(folder) == cold and len(counting) == 1  # that row counted again
    assert json.loads(entries[0].read_text())["row"] in cold  # and written whole again


def test_an_entry_under_another_key_is_not_trusted(tmp_path):
    store = ResultCache(tmp_path)
    spec = make_specs(**SPECS)[0]
    key = analysis_key(spec, None)
    store.put(key, {"model": "mobilenet_v1", "madds": 1})
    path = next(store.folder.glob("*.json"))
    entry = json.loads(path.read_text())
    entry["key"]["spec"]["width"] = 0.5  # a file copied under the wrong name
    path.write_text(json.dumps(entry))
    assert store.get(key) is None


def test_rows_with_an_error_are_not_kept(tmp_path, monkeypatch):
    def fails(model, shape, *trace, **options):
        raise RuntimeError("counting broke")

    monkeypatch.setattr("mbprof.analysis.counting.count", fails)
    rows = _sweep(tmp_path)
    assert all("counting broke" in row["error"] for row in rows)
    assert ResultCache(tmp_path).info().entries == 0


def test_an_unwritable_folder_costs_one_warning(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")  # works as root too, unlike a read-only folder
    said = []
    rows = _sweep(blocked, warn=said.append)
    assert all(_by_hand(row) for row in rows)
    assert len(said) == 1 and "cannot write the result cache" in said[0], said
    with warnings.catch_warnings(record=True) as caught:  # the API's default: one warning
        warnings.simplefilter("always")
        _sweep(blocked)
    assert [str(w.message) for w in caught if "result cache" in str(w.message)] == said


def test_clear_removes_only_mbprof_s_entries(warm):
    tmp_path = warm[0]
    store = ResultCache(tmp_path)
    mine = list(store.folder.iterdir())
    others = {
        tmp_path / "machine_peak.json": "{}",
        tmp_path / "notes.txt": "mine",
        tmp_path / ("a" * 64 + ".json"): "{}",  # an entry's name, outside results/
        store.folder / "README": "keep",
        store.folder / ("b" * 63 + ".json"): "{}",
        store.folder / ("c" * 64 + ".json.bak"): "{}",
    }
    for path, text in others.items():
        path.write_text(text)
    leftover = store.folder / f".{'d' * 64}.json.abc123.tmp"  # write_atomic's, after a kill
    leftover.write_text("{")
    removed = store.info(clear=True)
    assert removed.entries == len(mine) + 1 and removed.bytes > 0
    assert all(path.read_text() == text for path, text in others.items())
    assert not leftover.exists() and store.info().entries == 0
    store.folder.joinpath("README").unlink()
    store.folder.joinpath("b" * 63 + ".json").unlink()
    store.folder.joinpath("c" * 64 + ".json.bak").unlink()
    assert ResultCache(tmp_path).info(clear=True).entries == 0 and not store.folder.exists()


def test_latency_needs_the_cache_to_be_kept(tmp_path):
    from mbprof.core.errors import MbprofError

    with pytest.raises(MbprofError, match="cache_latency"):
        prepare_compare(make_specs(**SPECS), cache=False, cache_latency=True)
