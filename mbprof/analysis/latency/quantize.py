"""int8 post-training static quantization on the two runtimes that have it here, and how
far an int8 program's output strays from fp32.

- executorch: the PT2E flow with the XNNPACK quantizer (``pt2e_int8``): weights int8
  symmetric per output channel, activations int8 per tensor (histogram observers).
- onnxruntime: ONNX Runtime's static QDQ quantization (``onnx_int8``): QuantizeLinear /
  DequantizeLinear pairs, weights int8 per channel, activations int8 (min-max).

Both calibrate on ``CALIBRATION_BATCHES`` random batches of the model's input shape, and
both are compared with the fp32 model on ``PROBE_IMAGES`` other random images
(``closeness``): the mean cosine similarity of the logits and the share of images whose
arg-max class is the same. Random images say how far the int8 program strays from fp32,
nothing about its accuracy on real data; and random weights give nearly flat logits, so
top-1 agreement is low even when the cosine is high.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mbprof.analysis.latency.backends import (
    Prepared,
    check_same_output,
    onnx_session,
    open_session,
    root_cause,
)
from mbprof.core.settings import LatencySettings

CALIBRATION_BATCHES, CALIBRATION_SEED = 4, 1
PROBE_IMAGES, PROBE_SEED = 16, 2  # a seed calibration never uses
FAR_COSINE = 0.8  # below this, a note says the int8 output strays far from fp32
CLOSENESS_NOTE = (
    "int8 cosine and top-1 agreement compare the int8 logits with fp32's on {n} random "
    "images that calibration never saw: how far the int8 program strays from fp32, not an "
    "accuracy figure (random weights give nearly flat logits: top-1 agreement swings widely "
    "from one set of weights to another)"
)


def random_batches(shape: tuple[int, ...], count: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for _ in range(count)]


def calibration_batches(shape: tuple[int, ...]) -> list[torch.Tensor]:
    return random_batches(shape, CALIBRATION_BATCHES, CALIBRATION_SEED)


def pt2e_int8(exported: Any, example: torch.Tensor) -> Any:
    """The fp32 ``ExportedProgram`` ``exported`` quantized for XNNPACK (PT2E: prepare,
    calibrate on random batches, convert) and exported again."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)
    )
    try:
        prepared = prepare_pt2e(exported.module(), quantizer)
        with torch.no_grad():
            for batch in calibration_batches(tuple(example.shape)):
                prepared(batch)
        converted = convert_pt2e(prepared)
        return torch.export.export(converted, (example,))
    except Exception as exc:  # noqa: BLE001 - re-raised with its cause in one line
        raise RuntimeError(f"int8 quantization (PT2E) failed: {root_cause(exc)}") from exc


def closeness(
    model: nn.Module,
    run_int8: Callable[[torch.Tensor], Any],
    shape: tuple[int, ...],
    notes: list[str],
    backend: str,
) -> dict[str, float]:
    """``int8_cosine`` and ``int8_top1_agreement`` of ``run_int8`` against ``model`` (fp32)
    on at least ``PROBE_IMAGES`` random images, in batches of ``shape``; the notes say what
    they mean, and warn when the int8 output strays far."""
    batches = random_batches(shape, math.ceil(PROBE_IMAGES / shape[0]), PROBE_SEED)
    with torch.inference_mode():
        ref = torch.cat([model(x).detach().float().reshape(shape[0], -1) for x in batches])
    got = torch.cat(
        [torch.as_tensor(run_int8(x)).detach().float().reshape(shape[0], -1) for x in batches]
    )
    cosine = torch.nn.functional.cosine_similarity(ref, got, dim=1).mean().item()
    agreement = (ref.argmax(1) == got.argmax(1)).float().mean().item()
    notes.append(CLOSENESS_NOTE.format(n=len(ref)))
    if not cosine >= FAR_COSINE:
        notes.append(
            f"{backend} int8 output strays far from fp32 (cosine {cosine:.2f}): the int8 "
            "ranges do not fit the model's activations (a model whose outputs are tiny, such "
            "as an uncalibrated random initialisation, quantizes to zeros)"
        )
    return {"int8_cosine": cosine, "int8_top1_agreement": agreement}


def onnx_int8(fp32_path: Path, input_name: str, shape: tuple[int, ...]) -> Path:
    """ONNX Runtime's static QDQ quantization of the .onnx file ``fp32_path``, calibrated
    on random batches of ``shape``; returns the int8 file's path (beside it)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{input_name: b.numpy()} for b in calibration_batches(shape)])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    prepared = fp32_path.with_name("model.pre.onnx")
    int8_path = fp32_path.with_name("model.int8.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ONNX Runtime's quantizer advises through the root logger
    try:
        quant_pre_process(str(fp32_path), str(prepared))  # shape inference, basic fusions
        quantize_static(
            str(prepared),
            str(int8_path),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    except Exception as exc:  # noqa: BLE001 - re-raised with its cause in one line
        raise RuntimeError(f"ONNX Runtime int8 quantization failed: {root_cause(exc)}") from exc
    finally:
        root.setLevel(level)
    return int8_path


def prepare_onnx_int8(
    model: nn.Module,
    example: torch.Tensor,
    settings: LatencySettings,
    folder: str | Path,
    notes: list[str],
) -> Prepared:
    """The onnxruntime backend in int8: the model exported (fp32, checked against torch),
    quantized to QDQ int8 and both opened, the int8 session timed and the fp32 one beside
    it for the speed-up."""
    from mbprof.analysis.latency.backends import quiet

    start = time.perf_counter()
    fp32_session, name = onnx_session(model, example, settings.threads, folder)
    fp32_path = Path(folder) / "model.onnx"
    with quiet():
        int8_path = onnx_int8(fp32_path, name, tuple(example.shape))
    int8_session = open_session(int8_path, settings.threads)
    compile_s = time.perf_counter() - start
    feed = {name: example.numpy()}
    with torch.inference_mode():
        expected = model(example)
    check_same_output(expected, fp32_session.run(None, feed)[0], "ONNX Runtime (fp32)")
    notes.append(
        "int8: ONNX Runtime static QDQ quantization (weights int8 per channel, activations "
        f"int8 min-max over {CALIBRATION_BATCHES} random batches of the input shape)"
    )
    notes.append("compile_s: ONNX export + int8 quantization + ONNX Runtime session creation")
    figures: dict[str, Any] = {
        "deployed_bytes": int8_path.stat().st_size,
        "fp32_deployed_bytes": fp32_path.stat().st_size,
    }

    def int8_logits(x: torch.Tensor) -> Any:
        return int8_session.run(None, {name: x.numpy()})[0]

    figures.update(closeness(model, int8_logits, tuple(example.shape), notes, "onnxruntime"))
    return Prepared(
        run=lambda: int8_session.run(None, feed),
        compile_s=compile_s,
        notes=notes,
        reference=lambda: fp32_session.run(None, feed),
        figures=figures,
        module=model,
        example=example,
        onnx_path=int8_path,
    )
