"""The random source of the generator: every draw goes through here and is counted.

A story's probability under the generator is the product of the probabilities of the draws that
wrote it. The generator is written so that the draws can be read back from the text (every drawn
value shows in the text, options of one draw render differently, values are drawn at the moment
they are first used), so this product is the probability of the text itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class Draws:
    """A seeded random source that records each draw's index and adds up their log-probability.

    Replaying a recorded list of indices (``replay``) writes the same story again without the
    random generator, which is how a story's probability is recomputed from its draw record.

    Attributes:
        log_prob: natural-log probability of the draws so far.
        record: the index drawn at each draw, in order.
    """

    def __init__(self, rng: random.Random | None = None, replay: Sequence[int] | None = None):
        if (rng is None) == (replay is None):
            raise ValueError("give exactly one of rng and replay")
        self._rng = rng
        self._replay = list(replay) if replay is not None else None
        self.log_prob = 0.0
        self.record: list[int] = []

    def _index(self, weights: Sequence[float] | None, n: int) -> int:
        if self._replay is not None:
            if len(self.record) >= len(self._replay):
                raise ValueError("the draw record ended before the story did")
            return self._replay[len(self.record)]
        assert self._rng is not None
        if weights is None:
            return self._rng.randrange(n)
        x = self._rng.random() * sum(weights)
        for i, w in enumerate(weights):
            x -= w
            if x < 0:
                return i
        return max(i for i, w in enumerate(weights) if w > 0)

    def pick(self, options: Sequence[T], weights: Sequence[float] | None = None) -> T:
        """One of ``options`` (uniform, or proportional to ``weights``); options must differ."""
        n = len(options)
        if n == 0:
            raise ValueError("nothing to pick from")
        i = self._index(weights, n)
        p = 1.0 / n if weights is None else weights[i] / sum(weights)
        if not 0 <= i < n or p <= 0:
            raise ValueError(f"draw {i} of {n} options is impossible")
        self.log_prob += math.log(p)
        self.record.append(i)
        return options[i]

    def chance(self, p: float) -> bool:
        """True with probability ``p`` (0 and 1 are certain and cost no draw)."""
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        return self.pick((True, False), (p, 1.0 - p))
