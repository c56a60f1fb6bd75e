"""User-facing errors.

Anything raised as :class:`HsbenchError` is a mistake the user can fix (a wrong name, a missing file, a bad
value). The CLI prints its message as one sentence and exits non-zero, without a traceback. Programming errors
stay ordinary exceptions so they keep their tracebacks.
"""

from __future__ import annotations

__all__ = ["HsbenchError", "UnknownNameError", "DataError", "ConfigError"]


class HsbenchError(Exception):
    """A problem the user can fix; the message says what to do."""


class UnknownNameError(HsbenchError, KeyError):
    """A name that is not registered (dataset, strategy, metric, model)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(HsbenchError):
    """Input data that cannot be used as it is (wrong shape, NaN values, labels out of range)."""


class ConfigError(HsbenchError):
    """A configuration value that is malformed or out of range."""
