"""The comparison frame: its columns, the rows (configuration <-> row), published accuracy
joined to them, the Pareto frontier, and frame files read back. Torch-free."""
