"""Live bytes step by step, the peak, and the largest tensors per spatial size."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from mbprof.analysis.memory.schedules import Step
from mbprof.core.records import LivePoint, ResolutionMemory


def simulate(
    steps: Sequence[Step], size: dict[int, int], keep: Iterable[int] = ()
) -> list[tuple[Step, LivePoint]]:
    """Live bytes at each step: every buffer from the step creating it to its last use
    (buffers in ``keep``, the model's outputs, to the end). Steps that touch no activation
    give no point."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, step in enumerate(steps):
        for b in step.outputs | step.inputs:
            first.setdefault(b, i)
            last[b] = i
    for b in keep:
        if b in first:
            last[b] = len(steps) - 1
    delta = [0] * (len(steps) + 1)
    for b, i in first.items():
        delta[i] += size[b]
        delta[last[b] + 1] -= size[b]
    points = []
    alive = 0
    for i, step in enumerate(steps):
        alive += delta[i]
        ins = sum(size[b] for b in step.inputs)
        outs = sum(size[b] for b in step.outputs - step.inputs)
        if not (ins or outs or step.internal):
            continue  # touches no activation (weight views, empty allocations): not a point
        live = alive + step.internal
        points.append(
            (
                step,
                LivePoint(
                    step=len(points),
                    op=step.op,
                    module=step.module,
                    shape=step.shape,
                    live_bytes=live,
                    input_bytes=ins,
                    output_bytes=outs,
                    held_bytes=live - ins - outs - step.internal,
                    internal_bytes=step.internal,
                ),
            )
        )
    return points


def peak_point(points: Sequence[LivePoint]) -> LivePoint:
    if not points:
        return LivePoint(0, "", "", None, 0, 0, 0, 0, 0)
    return max(points, key=lambda p: (p.live_bytes, -p.step))


def resolution_of(shape: tuple[int, ...]) -> tuple[tuple[int, int], int] | None:
    """((h, w), channels) of an activation shape, or None for ranks that have no map."""
    if len(shape) >= 4:
        return (shape[-2], shape[-1]), math.prod(shape[1:-2])
    if len(shape) in (1, 2):
        return (1, 1), shape[-1] if len(shape) == 2 else shape[0]
    return None


def per_resolution(
    points: Sequence[tuple[Step, LivePoint]], size: dict[int, int]
) -> tuple[ResolutionMemory, ...]:
    """Per spatial size: the largest single buffer, and the op whose output has that size
    with the most input + output (+ internal) bytes."""
    shape_of: dict[int, tuple[int, ...]] = {}
    for step, _ in points:
        for b, shape in step.out_shapes:
            shape_of.setdefault(b, shape)  # the shape it was created with, not a later view
    largest: dict[tuple[int, int], tuple[int, int, tuple[int, ...]]] = {}
    for b, shape in shape_of.items():
        where = resolution_of(shape)
        if where is None:
            continue
        hw, channels = where
        if hw not in largest or size[b] > largest[hw][0]:
            largest[hw] = (size[b], channels, shape)
    biggest_op: dict[tuple[int, int], tuple[int, str]] = {}
    for step, point in points:
        if not step.outputs - step.inputs or step.shape is None:
            continue  # views and in-place ops create nothing
        where = resolution_of(step.shape)
        if where is None:
            continue
        op_bytes = point.input_bytes + point.output_bytes + point.internal_bytes
        if where[0] not in biggest_op or op_bytes > biggest_op[where[0]][0]:
            biggest_op[where[0]] = (op_bytes, f"{step.module or '(model)'} {step.op}")
    rows = []
    for hw in sorted(largest, key=lambda r: (-r[0] * r[1], -r[0])):
        nbytes, channels, shape = largest[hw]
        op_bytes, op = biggest_op.get(hw, (0, ""))
        rows.append(ResolutionMemory(hw, channels, nbytes, shape, op_bytes, op))
    return tuple(rows)
