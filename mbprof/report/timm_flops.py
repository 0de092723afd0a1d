"""timm's model-index "FLOPs" for MobileNetV2 (``mbprof/data/timm_flops.csv``) explained in
``inconsistencies.md``: mbprof's MAdds + other FLOPs at an uncropped 224x285 input with a
one-output classifier. Torch-free; formats the counts the API hands in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mbprof.core.parsing import parse_kwargs
from mbprof.core.records import ModelSpec
from mbprof.core.units import format_value
from mbprof.render.document import markdown_grid
from mbprof.report.plan import read_data
from mbprof.report.text import fill

# pytorch/hub's dog.jpg (1546 x 1213), the model card's example image, resized to a short
# side of 224 (transforms.Resize(224): long side int(224 x 1546 / 1213) = 285), not cropped.
SEED_INPUT = (224, 285)
SEED_CLASSES = 1  # the classifier left out: its 1280 x 1 MAdds stand for the pool's "+1"


@dataclass(frozen=True)
class TimmRow:
    """One line of the index and the configurations that explain it."""

    name: str
    flops: int  # as printed
    params: int  # as printed, rounded to 10,000
    seed: ModelSpec  # at SEED_INPUT with SEED_CLASSES
    square: ModelSpec  # the same architecture at 224x224 with 1000 classes (the MAdds headline)


def timm_rows() -> list[TimmRow]:
    """The index's lines, each with its two configurations to count."""
    rows = []
    for line in read_data("timm_flops.csv"):
        kwargs = parse_kwargs([a for a in line["args"].split(";") if a], "args")
        arch = dict(model=line["model"], width=float(line["width"]), depth=float(line["depth"]))
        arch["kwargs"] = kwargs
        seed = ModelSpec(**arch, resolution=SEED_INPUT, num_classes=SEED_CLASSES)
        figures = (line["name"], int(line["flops"]), int(line["params"]))
        rows.append(TimmRow(*figures, seed=seed, square=ModelSpec(**arch)))
    return rows


@dataclass(frozen=True)
class TimmCounts:
    """mbprof's counts for one ``TimmRow`` (the API measures them)."""

    row: TimmRow
    madds: int  # at SEED_INPUT, SEED_CLASSES: convolutions + the one-output classifier
    classifier_madds: int  # of those, the classifier's (its input channels x 1)
    batch_norm: int  # other FLOPs: batch norm, 2 per element
    pooling: int  # other FLOPs: the global average pool, 1 per input element
    other_flops: int  # every other FLOP (batch_norm + pooling for these networks)
    square_madds: int  # MAdds at 224x224, 1000 classes
    square_classifier_madds: int
    params: int  # at 224x224, 1000 classes


def _build(spec: ModelSpec) -> str:
    """'mobilenet_v2 1.1, depth 1.2, fix_stem_head'."""
    parts = [f"{spec.model} {format_value(spec.width, 'float')}"]
    if spec.depth != 1.0:
        parts.append(f"depth {spec.depth:g}")
    parts += [key if value is True else f"{key}={value}" for key, value in spec.kwargs]
    return ", ".join(parts)


def timm_flops_markdown(counts: Sequence[TimmCounts]) -> str:
    """The section of ``inconsistencies.md`` on the index's figures ('' without counts)."""
    if not counts:
        return ""
    rows = []
    for c in counts:
        total = c.madds + c.other_flops
        figures = (c.row.flops, c.madds, c.batch_norm, c.pooling, total, c.row.flops - total)
        rows.append(
            [f"`{c.row.name}`", _build(c.row.seed), *(f"{n:,}" for n in figures)]
            + [f"{c.square_madds:,}", f"{c.row.flops / c.square_madds:.3f}"]
        )
    first = counts[0]
    conv = first.madds - first.classifier_madds
    square_conv = first.square_madds - first.square_classifier_madds
    ratios = [c.row.flops / c.square_madds for c in counts]
    exact = all(c.row.flops == c.madds + c.other_flops for c in counts)
    return fill(
        "timm",
        "section",
        low=min(ratios),
        high=max(ratios),
        verdict=fill("timm", "exact" if exact else "not_exact"),
        table=markdown_grid(fill("timm", "headers").split("|"), rows, [False, False] + [True] * 8),
        name=first.row.name,
        conv=conv,
        square_conv=square_conv,
        conv_ratio=conv / square_conv,
        head=first.classifier_madds,  # input channels of the classifier, times 1 output
        params=", ".join(f"{c.params:,} ({c.row.params / 1e6:.2f}M printed)" for c in counts),
    )
