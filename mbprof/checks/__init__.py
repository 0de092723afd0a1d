"""Checks: limits on what a configuration may cost, from budget files and baselines, and
the measurements they ask for. Torch-free.

Rooms: ``limits`` (metrics, ``Limit``, ``Budget``, ``Result`` and its message, ``judge``),
``file_lines`` (where keys are written in a budget file, ``BudgetFileError``, and typed
values read from its tables), ``budget_file`` (the TOML file read
into budgets), ``baseline`` (a saved frame's figures as limits, with tolerances),
``matching`` (limits judged against measured rows, and the measurements limits ask for),
``imports`` (which code a file may import). ``mbprof.check`` (``mbprof.api.checking``)
runs them all.
"""
