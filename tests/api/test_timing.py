"""The API's latency paths: interleaved timing of a sweep's jobs, the calibration of
mbprof's own models before timing (and never for counting or memory), the verdict in
the columns. No timing is asserted."""

from __future__ import annotations

import pytest
import torch

import mbprof
from mbprof.analysis.latency import harness
from mbprof.api import build_sized
from mbprof.api import building as building_module
from mbprof.api.building import CALIBRATED, timing_ready
from mbprof.api.sweep import interleaved_latency
from mbprof.core.errors import ModelRunError
from mbprof.frame.columns import ENVIRONMENT_COLUMNS, LATENCY_FIGURES
from tests.support.tiny_models import tiny_madds, tiny_models  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("tiny_models")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mbprof-cache"))


def latency(batch: int = 1):
    return mbprof.make_latency_settings(batch=batch, threads=1, min_time_s=0.001, warmup=1)


def job(model: str, width: float = 1.0, res: int = 32):
    spec = mbprof.make_spec(model, width=width, resolution=res)
    return (
        spec,
        build_sized(spec, batch=2).model,
        mbprof.profile_spec(spec, with_memory=False).counts.madds,
    )


def test_every_job_gets_its_latency_columns_or_its_error():
    jobs = [job("test_tiny"), job("test_batch_one"), job("mobilenet_v2", 0.35, 32)]
    columns = interleaved_latency(jobs, latency(batch=2))
    assert len(columns) == 3
    tiny, failed, mnv2 = columns
    for row in (tiny, mnv2):
        assert set(LATENCY_FIGURES) | set(ENVIRONMENT_COLUMNS) <= set(row)
        assert row["rounds"] == harness.ROUNDS and row["batch"] == 2
        assert row["runs"] >= harness.ROUNDS * harness.MIN_ROUND_BLOCKS
        assert row["latency_p10_ms"] <= row["latency_ms"] <= row["latency_p90_ms"]
        assert row["latency_verdict"] in ("stable", "unstable")
        assert (row["latency_reasons"] is None) == (row["latency_verdict"] == "stable")
    # the job's MAdds feed the rate: 2 x MAdds x batch / latency
    expected = 2 * tiny_madds(32) * 2 / (tiny["latency_ms"] * 1e-3) / 1e9
    assert tiny["achieved_gflops"] == pytest.approx(expected)
    assert "RuntimeError" in failed["error"] and failed["device"] == "cpu"
    assert "latency_ms" not in failed


def test_a_failure_that_must_stop_is_raised():
    with pytest.raises(ModelRunError, match="test_batch_one"):
        interleaved_latency([job("test_batch_one")], latency(batch=2), stop_on=(ModelRunError,))


def test_phases_are_told():
    said: list[str] = []
    interleaved_latency([job("test_tiny")], latency(), rounds=2, on_phase=said.append)
    assert said[0].startswith("preparing test_tiny")
    assert "timing 1 interleaved: round 2 of 2" in said


def test_mbprofs_own_models_are_calibrated_once_before_timing(monkeypatch):
    calls = []
    from mbprof.models import calibration

    real = calibration.calibrate
    monkeypatch.setattr(calibration, "calibrate", lambda m, r: calls.append(r) or real(m, r))
    spec = mbprof.make_spec("mobilenet_v2", width=0.35, resolution=48)
    model = build_sized(spec).model
    assert timing_ready(spec, model) is model and calls == [(48, 48)]
    assert getattr(model, CALIBRATED) is True
    timing_ready(spec, model)
    assert calls == [(48, 48)]  # once


def test_a_users_model_and_a_loaded_checkpoint_keep_their_weights(tmp_path, monkeypatch):
    monkeypatch.setattr("mbprof.models.calibration.calibrate", lambda *a: pytest.fail("calibrated"))
    spec = mbprof.make_spec("test_tiny", resolution=32)
    model = build_sized(spec).model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    timing_ready(spec, model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    own = mbprof.make_spec("mobilenet_v2", width=0.35, resolution=32)
    path = tmp_path / "w.pt"
    torch.save(build_sized(own).model.state_dict(), path)
    loaded = build_sized(own, weights=path).model
    timing_ready(own, loaded, weights=path)
    assert not hasattr(loaded, CALIBRATED)


def test_counting_and_memory_never_calibrate(monkeypatch):
    monkeypatch.setattr(building_module, "timing_ready", lambda *a, **k: pytest.fail("calibrated"))
    monkeypatch.setattr("mbprof.models.calibration.calibrate", lambda *a: pytest.fail("calibrated"))
    mbprof.profile("mobilenet_v2", width=0.35, resolution=32)
    mbprof.compare(widths=[0.35], resolutions=[32])
    mbprof.memory("mobilenet_v2", width=0.35, resolution=32)


def test_bench_times_the_calibrated_model(monkeypatch):
    seen = []
    from mbprof.analysis.latency import harness as latency_room

    real = latency_room.time_model

    def spy(model, *args, **kwargs):
        seen.append(getattr(model, CALIBRATED, False))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(latency_room, "time_model", spy)
    result = mbprof.bench("mobilenet_v2", width=0.35, resolution=32, settings=latency())
    assert seen == [True] and result.timing.latency_ms > 0
    assert result.timing.verdict in ("stable", "unstable")
