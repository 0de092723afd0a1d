"""The MobileNetV2 paper reproduced (``mbprof reproduce``): tables, figures and prose."""
