"""Checks, torch-free: limits from budget files and baselines, judged against rows."""
