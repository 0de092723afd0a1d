"""The comparison frame, torch-free: its columns, rows (configuration <-> row), published accuracy."""
