"""The MobileNetV2 paper reproduced (``mbprof reproduce``, ``mbprof.reproduce``): what a run
covers (``plan``), measuring it (``run``), Table 4 (``table4``), Table 3 (``table3``), the
figures (``figures``, drawn by ``mbprof.render.plots``), the README and inconsistencies
pages (``prose``), the numbers as the pages write them (``text``), and the folder that keeps the
user's files and what a run wrote (``folder``). ``mbprof.api.reporting``
puts them together."""
