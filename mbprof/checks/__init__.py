"""Checks: budget files, baselines, and the measurements they ask for."""
