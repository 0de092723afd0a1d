"""The built-in models, registered by name without importing their code (and torch): each
builder is named ``"module:function"`` and imported when the model is first built, so that
``mbprof models`` and every check of a configuration stay instant.

A new architecture: its builder in a file of its own (``mbprof/models/<name>.py``), one
``_register`` call here.
"""

from __future__ import annotations

from typing import Any

from mbprof.models._registry import register_model
from mbprof.models.shufflenet_channels import GROUPS, SCALE_MAX, SCALE_MIN, validator


def _register(name: str, builder: str, **meta: Any) -> None:
    register_model(name, **meta)(f"mbprof.models.{builder}")


_register(
    "mobilenet_v1",
    "mobilenet_v1:mobilenet_v1",
    family="MobileNetV1",
    summary="Depthwise-separable convolutions; 569M MAdds, 4.2M params at 1.0@224",
    reference="Howard et al. 2017 (arXiv:1704.04861); TF-Slim mobilenet_v1 width rule",
)
_register(
    "mobilenet_v2",
    "mobilenet_v2:mobilenet_v2",
    family="MobileNetV2",
    summary="Inverted residuals with linear bottlenecks; 300M MAdds, 3.5M params at 1.0@224",
    reference="Sandler et al. 2018 (arXiv:1801.04381); torchvision mobilenet_v2 layout",
    has_depth=True,
)
_register(
    "mobilenet_v3_large",
    "mobilenet_v3:mobilenet_v3_large",
    family="MobileNetV3",
    summary="MobileNetV3-Large: SE and hard-swish; 217M MAdds, 5.4M params at 1.0@224",
    reference="Howard et al. 2019 (arXiv:1905.02244); torchvision mobilenet_v3_large layout",
)
_register(
    "mobilenet_v3_small",
    "mobilenet_v3:mobilenet_v3_small",
    family="MobileNetV3",
    summary="MobileNetV3-Small: SE and hard-swish; 56M MAdds, 2.5M params at 1.0@224",
    reference="Howard et al. 2019 (arXiv:1905.02244); torchvision mobilenet_v3_small layout",
)
_register(
    "nasnet_a_mobile",
    "nasnet:nasnet_a_mobile",
    family="NASNet-A",
    summary="NASNet-A Mobile 4 @ 1056; 564M MAdds, 5.3M params at 224; width scales F (44)",
    reference="Zoph et al. 2018 (arXiv:1707.07012); TF-Slim build_nasnet_mobile",
    width_min=0.1,
    width_min_inclusive=True,
)
_SHUFFLENET_SUMMARY = {
    1: "ShuffleNet v1, 1 group (no shuffle); width = scale 0.25x..2x",
    3: "ShuffleNet v1, 3 groups; 137M MAdds at 1x, 524M and 5.4M params at 2x (224)",
}
for _groups in GROUPS:
    _register(
        f"shufflenet_v1_g{_groups}",
        f"shufflenet:shufflenet_v1_g{_groups}",
        family="ShuffleNet v1",
        summary=_SHUFFLENET_SUMMARY.get(
            _groups, f"ShuffleNet v1, {_groups} groups; width = scale 0.25x..2x"
        ),
        reference="Zhang et al. 2017 (arXiv:1707.01083); megvii-model/ShuffleNet-Series widths",
        width_min=SCALE_MIN,
        width_min_inclusive=True,
        width_max=SCALE_MAX,
        validate=validator(_groups),
    )
