"""Errors that mbprof raises for bad input.

The CLI turns every ``MbprofError`` into one line on stderr and exit code 2; the
Python API lets them propagate. They subclass ``ValueError`` so that callers who
do not know mbprof still catch them as bad arguments.
"""

from __future__ import annotations


class MbprofError(ValueError):
    """Bad input: the message names the value and what is allowed.

    ``field`` is the setting the message starts with (``dtype``, ``min_time_s``), when it
    names one, so that the CLI can say its own flag (``--dtype``, ``--min-time``) instead."""

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field

    def text_with(self, names: dict[str, str]) -> str:
        """The message with its field called by ``names`` (field -> flag)."""
        text = str(self)
        if self.field in names and text.startswith(self.field):
            return names[self.field] + text[len(self.field) :]
        return text


class UnknownModelError(MbprofError, KeyError):
    """A model name that is not registered (the message suggests close names)."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class WeightsError(MbprofError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


class ResourceError(MbprofError):
    """A configuration that would not fit in this machine's memory."""


class ModelRunError(MbprofError, RuntimeError):
    """A model that fails while mbprof runs it (its forward raised, or it computes nothing):
    the message names the model and what mbprof was doing. A RuntimeError too, so that a
    sweep records it in the configuration's row and goes on, as for a torch failure."""
