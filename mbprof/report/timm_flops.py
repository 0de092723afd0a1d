"""timm's model-index "FLOPs" for MobileNetV2 (``mbprof/data/timm_flops.csv``) explained in
``inconsistencies.md``: mbprof's MAdds + other FLOPs at an uncropped 224x285 input with a
one-output classifier. Torch-free; formats the counts the API hands in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mbprof.core.parsing import parse_kwargs
from mbprof.core.records import ModelSpec
from mbprof.core.units import format_multiplier
from mbprof.render.document import markdown_grid
from mbprof.report.plan import read_data

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
    parts = [f"{spec.model} {format_multiplier(spec.width)}"]
    if spec.depth != 1.0:
        parts.append(f"depth {spec.depth:g}")
    parts += [key if value is True else f"{key}={value}" for key, value in spec.kwargs]
    return ", ".join(parts)


def timm_flops_markdown(counts: Sequence[TimmCounts]) -> list[str]:
    """The section of ``inconsistencies.md`` on the index's figures."""
    if not counts:
        return []
    rows = []
    for c in counts:
        total = c.madds + c.other_flops
        figures = (c.row.flops, c.madds, c.batch_norm, c.pooling, total, c.row.flops - total)
        rows.append(
            [f"`{c.row.name}`", _build(c.row.seed), *(f"{n:,}" for n in figures)]
            + [f"{c.square_madds:,}", f"{c.row.flops / c.square_madds:.3f}"]
        )
    headers = (
        "timm model|mbprof build|Index FLOPs|MAdds, 224x285, 1 class|+ batch norm|+ pooling|"
        "= mbprof|Index - mbprof|MAdds at 224x224|Index / MAdds"
    ).split("|")
    first = counts[0]
    conv, square_conv = (
        first.madds - first.classifier_madds,
        first.square_madds - first.square_classifier_madds,
    )
    head = first.classifier_madds  # input channels of the classifier, times 1 output
    params = ", ".join(f"{c.params:,} ({c.row.params / 1e6:.2f}M printed)" for c in counts)
    ratios = [c.row.flops / c.square_madds for c in counts]
    low, high = min(ratios), max(ratios)
    exact = all(c.row.flops == c.madds + c.other_flops for c in counts)
    verdict = "to the digit, line by line" if exact else "**not exactly** (see Index - mbprof)"
    return [
        '## timm\'s model index: "FLOPs" of an uncropped 224x285 image',
        "",
        "timm's model-index page for MobileNet V2 (the docs of March 2021, the seed this "
        f'project started from) lists "FLOPs" of {low:.2f} to {high:.2f} times mbprof\'s '
        "MAdds for the same architectures at 224x224. They are mbprof's MAdds plus its other "
        "FLOPs (batch norm at 2 per element, the global average pool at 1 per input element), "
        f"{verdict}, counted on an input of **224x285** with a classifier of **one** output:",
        "",
        markdown_grid(headers, rows, [False, False] + [True] * 8),
        "",
        "- **The input.** 224x285 is what the model card's example image gives: pytorch/hub's "
        "`dog.jpg` (1546 x 1213 pixels) resized to a short side of 224 "
        "(`transforms.Resize(224)`: long side int(224 x 1546 / 1213) = 285) and not cropped. "
        f"Its last feature maps are 7x9 instead of 7x7: for `{first.row.name}` the "
        f"convolutions do {conv:,} multiply-accumulates at 224x285 against {square_conv:,} "
        f"at 224x224 (x{conv / square_conv:.4f}; 9/7 = 1.2857), which is most of the ratio "
        "in the last column. Any input of 223 or 224 by 285 or 286 gives the same feature "
        "maps and the same figures.",
        "- **The ops counted.** The rules of thop (pytorch-OpCounter) as of early 2021: every "
        "convolution's multiply-accumulates, batch norm at 2 per element (as mbprof's other "
        "FLOPs count it), the adaptive average pool at k + 1 per output (k = 7 x 9 = 63 inputs "
        "per channel), ReLU6, residual adds and dropout at 0, and the 1000-class classifier "
        "not at all (timm leaves it out of a model made with `num_classes=0`). mbprof counts "
        f"the pool at 1 per input element; a classifier of one output adds {head:,} MAdds "
        f'(its {head:,} input channels x 1), the pool\'s missing "+1" per channel, which is '
        "why the table counts one class. The numbers cannot tell these two readings apart.",
        "- **What does not fit.** No square input reproduces the figures (each size from 192 "
        "to 320 was tried, with batch norm, activations, adds, the pool and the classifier "
        "counted 0 to 2 times); MAdds + other FLOPs at 256x256 (the 0.875 crop's resize) "
        "miss by 8 to 16M; a count with the 1000-class classifier misses by 999 x the "
        "classifier's input channels; and 2 per multiply-add (torch's FlopCounterMode, "
        "DeepSpeed) gives about 1.5 times the index's figure.",
        "- **Which to compare.** The papers' MAdds at 224x224, mbprof's headline (the "
        'next-to-last column), are the comparable figures. The index\'s "FLOPs" are a '
        "thop-style count of a 224x285 input without the classifier. mbprof's parameters "
        f"of the same builds, {params}, match the index, so the architectures are the same. "
        "The counter and the image are inferred from the numbers: the index was written by "
        "Papers with Code contributors without the script that made the field.",
        "",
    ]
