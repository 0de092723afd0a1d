"""What several test modules share: tiny models, reference counters, memory test models."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
