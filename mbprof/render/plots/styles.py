"""How a model looks in a figure: a fixed colour per family, a marker per model.

The colours are fixed (matplotlib's tab10 order) so that a family looks the same in
every figure; families mbprof does not know take the remaining colours in order of
appearance. A model given as an import path is drawn as the family "user model".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FAMILY_COLOURS = {
    "mobilenetv2": "#1f77b4",
    "mobilenetv1": "#ff7f0e",
    "shufflenet": "#2ca02c",
    "nasnet": "#d62728",
    "mobilenetv3": "#9467bd",
}
OTHER_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


def family_of(model: str) -> str:
    """The registry's family of ``model`` (the model name itself when it is not registered).
    A model given as an import path is a "user model": the name comes from a data file, so
    it is never imported here."""
    try:
        from mbprof.core.records import is_import_path
        from mbprof.models import get_model_info

        if is_import_path(model):
            return "user model"

        return get_model_info(model).family
    except Exception:  # noqa: BLE001 - user models and unknown names keep their own name
        return model


def _family_colour(family: str, others: dict[str, str]) -> str:
    squashed = family.lower().replace(" ", "").replace("-", "").replace("_", "")
    for prefix, colour in FAMILY_COLOURS.items():
        if squashed.startswith(prefix):
            return colour
    if family not in others:
        others[family] = OTHER_COLOURS[len(others) % len(OTHER_COLOURS)]
    return others[family]


def _squashed(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def variant_name(model: str, family: str) -> str:
    """How a figure names ``model`` beside others of its ``family``, as the papers write it:
    'MobileNetV3-Small' for mobilenet_v3_small (family MobileNetV3), 'ShuffleNet v1 (g3)'
    for shufflenet_v1_g3; the family and the model's own name when the name does not start
    with the family's (a user model's import path)."""
    want, seen = _squashed(family), ""
    for index, char in enumerate(model):
        if seen == want:
            rest = model[index:].strip("_-. ")
            break
        if char.isalnum():
            seen += char.lower()
            if not want.startswith(seen):
                return f"{family} ({model})"
    else:
        rest = "" if seen == want else None
    if rest is None:
        return f"{family} ({model})"
    if not rest:
        return family
    return f"{family}-{rest.title()}" if rest.isalpha() else f"{family} ({rest})"


def legend_names(points: pd.DataFrame) -> dict[str, str]:
    """model -> its name in the legend: the family, or the variant where the figure holds
    several models of one family."""
    by_family: dict[str, set[str]] = {}
    for model, family in zip(points["model"], points["family"], strict=True):
        by_family.setdefault(family, set()).add(model)
    return {
        model: family if len(by_family[family]) == 1 else variant_name(str(model), family)
        for model, family in zip(points["model"], points["family"], strict=True)
    }


def model_styles(points: pd.DataFrame) -> dict[str, tuple[str, str, str]]:
    """model -> (colour, marker, legend name): a colour per family, a marker per model."""
    others: dict[str, str] = {}
    styles: dict[str, tuple[str, str, str]] = {}
    by_family: dict[str, list[str]] = {}
    names = legend_names(points)
    for model, family in dict(zip(points["model"], points["family"], strict=True)).items():
        by_family.setdefault(family, []).append(model)
    for family in sorted(by_family, key=lambda f: list(points["family"]).index(f)):
        models = sorted(by_family[family])
        for index, model in enumerate(models):
            colour = _family_colour(family, others)
            styles[model] = (colour, MARKERS[index % len(MARKERS)], names[model])
    return styles
