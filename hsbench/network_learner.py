"""Training a network built elsewhere (pretrained, behind an adapter, partly frozen) with the shared engine.

:class:`hsbench.learners.DenseNetworkLearner` builds its network from ``MODELS``; transfer strategies build theirs
from pretrained weights and decide what is frozen before training. This learner takes the finished network and
keeps everything else identical: the same recipe options, the same engine, the same model selection on val mIoU
and the same dense prediction, so the comparison with ``in_domain`` is fair.
"""

from __future__ import annotations

from typing import Any

from hsbench.learners import DenseNetworkLearner, engine_config
from hsbench.strategy import SplitView

__all__ = ["NetworkLearner", "engine_config"]


class NetworkLearner(DenseNetworkLearner):
    """Trains a given network on ``transform(cube)`` of the train view; selects on val mIoU; predicts densely."""

    def fit(self, transform: Any, train: SplitView, val: SplitView) -> dict[str, Any]:
        raise TypeError("NetworkLearner trains a network built by the caller: use fit_network(network, ...)")
