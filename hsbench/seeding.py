"""Independent random streams for one run, all derived from a single integer seed.

``numpy.random.SeedSequence(seed)`` is spawned into named children, so that changing how many random numbers
one stream draws (say, a longer training schedule) never shifts another (the split). The split stream depends
on the seed alone, which is what makes ``fraction`` splits nested across fractions for one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SeedStreams", "STREAM_NAMES"]

STREAM_NAMES = ("split", "init", "order", "augment")


@dataclass(frozen=True)
class SeedStreams:
    """Named seed sequences spawned from one run seed."""

    seed: int

    def sequence(self, name: str) -> np.random.SeedSequence:
        if name not in STREAM_NAMES:
            raise KeyError(f"unknown random stream {name!r}; streams are {STREAM_NAMES}")
        children = np.random.SeedSequence(self.seed).spawn(len(STREAM_NAMES))
        return children[STREAM_NAMES.index(name)]

    def rng(self, name: str) -> np.random.Generator:
        """A fresh numpy generator on the named stream (same name -> same numbers)."""
        return np.random.default_rng(self.sequence(name))

    def int_seed(self, name: str) -> int:
        """A 63-bit integer seed on the named stream, for torch generators and scikit-learn."""
        high, low = (int(v) for v in self.sequence(name).generate_state(2, dtype=np.uint32))
        return ((high << 32) | low) & ((1 << 63) - 1)
