"""ShuffleNet v1's channels at a scale, torch-free: the registry refuses a scale at which a
group count does not divide a stage's channels before anything is built."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mbprof.core.errors import MbprofError

GROUPS = (1, 2, 3, 4, 8)
SCALE_MIN, SCALE_MAX = 0.25, 2.0


@dataclass(frozen=True)
class Stage:
    """One row of the paper's Table 1: ``units`` ShuffleNet units, the first with stride 2,
    whose output channels at 1x are ``g1`` ... ``g8`` for 1 ... 8 groups."""

    units: int
    g1: int
    g2: int
    g3: int
    g4: int
    g8: int

    def channels(self, groups: int, scale: float) -> int:
        return int(round(getattr(self, f"g{groups}") * scale))


# units, output channels at 1x for g = 1, 2, 3, 4, 8 (Stage2 at 28x28, Stage3, Stage4 at 7x7)
STAGES: tuple[Stage, ...] = (
    Stage(4, 144, 200, 240, 272, 384),
    Stage(8, 288, 400, 480, 544, 768),
    Stage(4, 576, 800, 960, 1088, 1536),
)


def conv1_channels(scale: float, groups: int) -> int:
    """conv1 width: 12 up to 0.5x, 24 up to 1.5x, 48 above, rounded up to a multiple of g."""
    base = 12 if scale <= 0.5 else 24 if scale <= 1.5 else 48
    return math.ceil(base / groups) * groups


def stage_channels(scale: float, groups: int) -> tuple[int, ...]:
    return tuple(stage.channels(groups, scale) for stage in STAGES)


def check_scale(scale: float, groups: int) -> None:
    """Refuse a scale at which ``groups`` does not divide a stage's output or bottleneck
    channels (the grouped 1x1 convs and the shuffle need both to be multiples of g)."""
    for number, out in enumerate(stage_channels(scale, groups), start=2):
        for what, channels in (("output", out), ("bottleneck", out // 4)):
            if channels < 1 or channels % groups:
                raise MbprofError(
                    f"shufflenet_v1_g{groups} cannot be built at scale (width) {scale:g}: "
                    f"{groups} groups do not divide the {channels} {what} channels of "
                    f"stage {number}; pick another scale or group count"
                )


def validator(groups: int):
    """The registry's check of (width, depth, classes) for ``groups`` groups."""

    def validate(width: float, depth: float, num_classes: int) -> None:
        check_scale(width, groups)

    return validate
