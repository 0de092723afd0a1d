"""The analysis against memory really allocated by a forward pass (a second, independent
method: real storages in the real dtype, created and freed by PyTorch)."""

from __future__ import annotations

import pytest
import torch

from mbprof.analysis.memory import analyze_memory
from mbprof.analysis.memory.measured import measure_memory as measure
from mbprof.core.errors import MbprofError
from mbprof.models import create_model
from tests.support.memory_models import ConcatCell, InPlaceResidual, ShuffleUnit, SqueezeExcite

CASES = [
    ("mobilenet_v1", 0.25, 32, "fp16"),
    ("mobilenet_v1", 0.25, 64, "fp32"),
    ("mobilenet_v2", 0.35, 64, "bf16"),
    ("mobilenet_v2", 0.5, 32, "fp16"),
]


@pytest.mark.parametrize(("name", "width", "side", "dtype"), CASES)
def test_eager_peak_equals_real_storages_freed_at_last_use(name, width, side, dtype):
    model = create_model(name, width=width)
    shape = (1, 3, side, side)
    report = analyze_memory(model, shape, dtype=dtype)
    real = measure(model, shape, dtype=dtype)
    # Same storages, same rule, but real sizes in the real dtype: equal to the byte.
    assert real.last_use_peak_bytes == report.eager_peak_bytes
    # PyTorch frees later than last use (Python references), never earlier.
    assert real.peak_bytes >= real.last_use_peak_bytes
    # Writing batch norm and activations over their input only saves memory.
    assert report.peak.live_bytes <= report.eager_peak_bytes


@pytest.mark.parametrize("make", [ShuffleUnit, ConcatCell, SqueezeExcite, InPlaceResidual])
def test_views_concat_and_in_place_ops_match_a_real_run(make):
    model = make().eval()
    report = analyze_memory(model, (1, 3, 8, 8), dtype="fp32")
    real = measure(model, (1, 3, 8, 8), dtype="fp32")
    assert real.last_use_peak_bytes == report.eager_peak_bytes


def test_gap_to_pytorch_is_python_references():
    # MobileNetV1 0.25 at 64 in fp16: features.1 = DepthwiseSeparable, forward(x) returns
    # self.pw(self.dw(x)); during pw's batch norm PyTorch still holds x (the block's input,
    # kept by the frame) and dw's output (pw's argument) besides the conv and BN outputs.
    model = create_model("mobilenet_v1", width=0.25)  # stem 8 ch, features.1 16 ch
    real = measure(model, (1, 3, 64, 64), dtype="fp16")
    e = 32 * 32 * 2  # one channel at 32x32 in fp16
    assert real.peak_bytes == 8 * e + 8 * e + 16 * e + 16 * e
    # The analysis frees x after dw reads it and dw's output after pw reads it.
    report = analyze_memory(model, (1, 3, 64, 64), dtype="fp16")
    assert report.eager_peak_bytes == 16 * e + 16 * e
    assert report.peak.live_bytes == 8 * e + 16 * e


def test_measure_refuses_int8_and_meta():
    model = create_model("mobilenet_v1", width=0.25)
    with pytest.raises(MbprofError, match="int8"):
        measure(model, (1, 3, 32, 32), dtype="int8")
    with torch.device("meta"):
        meta = create_model("mobilenet_v1", width=0.25)
    with pytest.raises(MbprofError, match="meta device"):
        measure(meta, (1, 3, 32, 32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_allocator_peak():
    model = create_model("mobilenet_v2", width=0.5)
    report = analyze_memory(model, (1, 3, 64, 64), dtype="fp16")
    real = measure(model, (1, 3, 64, 64), dtype="fp16", device="cuda")
    assert real.last_use_peak_bytes == report.eager_peak_bytes
    # The caching allocator rounds every block up to 512 bytes and adds cuDNN workspaces:
    # it holds at least what PyTorch's tensors need.
    assert real.allocator_peak_bytes >= real.peak_bytes
