"""From a strategy's declared search space to the options of one trial.

A strategy's ``search_space(trial, options)`` returns options shaped like its defaults (a dict-valued option such
as ``model_options`` holds its suggested keys). Options the user fixed on the command line win over suggestions,
and the parameters that would set them are *pinned*: the trial suggests the user's value instead of sampling one,
so that a study's recorded parameters are the ones that were actually trained.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hsbench.strategy import Strategy

__all__ = ["PinnedTrial", "flatten_options", "pinned_parameters", "trial_options"]

log = logging.getLogger("hsbench")


def flatten_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """One level of dict values as dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``), the override form.

    Overrides in this form merge key by key (see :func:`hsbench.options.merge_options`) instead of replacing a
    whole dict-valued option, so a suggested ``model_options.depth`` and a fixed ``model_options.base_channels``
    both apply.
    """
    flat: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{inner}": item for inner, item in value.items()})
        else:
            flat[key] = value
    return flat


class PinnedTrial:
    """A trial whose ``suggest_*`` calls return fixed values for pinned parameter names.

    Everything else (other suggestions, ``report``, ``should_prune``, attributes) goes to the wrapped trial,
    which may be an :class:`optuna.Trial` or an :class:`optuna.trial.FixedTrial`.
    """

    def __init__(self, trial: Any, pinned: Mapping[str, Any]) -> None:
        self._trial = trial
        self._pinned = dict(pinned)

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self._trial, attr)
        if not attr.startswith("suggest_"):
            return method

        def suggest(name: str, *args: Any, **kwargs: Any) -> Any:
            return self._pinned[name] if name in self._pinned else method(name, *args, **kwargs)

        return suggest


class _Suggested:
    """Stands for the value of one suggested parameter, to find where the search space puts it."""

    def __init__(self, name: str) -> None:
        self.name = name


class _RecordingTrial:
    """Answers every ``suggest_*`` call with a :class:`_Suggested` marker."""

    def __getattr__(self, attr: str) -> Any:
        if not attr.startswith("suggest_"):
            raise AttributeError(attr)
        return lambda name, *args, **kwargs: _Suggested(name)


def _parameter_paths(strategy_cls: type[Strategy], options: dict[str, Any]) -> dict[str, str]:
    """Parameter name -> dotted option key it sets, for parameters used as option values unchanged."""
    try:
        space = strategy_cls.search_space(_RecordingTrial(), options)
    except Exception:  # noqa: BLE001 - a space computing with its suggestions cannot be traced; nothing pinned
        log.debug("search space of %s cannot be traced; no parameter is pinned", strategy_cls.name, exc_info=True)
        return {}
    return {value.name: key for key, value in flatten_options(space).items() if isinstance(value, _Suggested)}


def pinned_parameters(
    strategy_cls: type[Strategy], options: dict[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Parameter name -> the user's value, for each parameter whose option the user fixed.

    Args:
        strategy_cls: the swept strategy.
        options: its resolved fixed options (defaults merged with ``overrides``).
        overrides: the options the user set, as given.
    """
    fixed = flatten_options(overrides)
    return {name: fixed[key] for name, key in _parameter_paths(strategy_cls, options).items() if key in fixed}


def trial_options(
    trial: Any, strategy_cls: type[Strategy], options: dict[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The run overrides of one trial: suggested options, then the user's fixed options on top.

    Args:
        trial: an Optuna trial (usually a :class:`PinnedTrial`).
        strategy_cls: the swept strategy.
        options: its resolved fixed options, which the search space may depend on (e.g. ``model``).
        overrides: the options the user set.
    """
    return {**flatten_options(strategy_cls.search_space(trial, options)), **flatten_options(overrides)}
