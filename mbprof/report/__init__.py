"""The MobileNetV2 paper reproduced (``mbprof reproduce``): plan, Tables 4 and 3, figures, prose
and the folder a run writes; ``mbprof.api.reporting`` puts them together."""
