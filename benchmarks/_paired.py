"""The measurement rule of every benchmark in ``benchmarks/``: paired rounds.

A comparison "A against B" runs in rounds; in each round A and B are timed back to back, in
alternating order (A first in even rounds, B first in odd ones), and the round's ratio A / B is
taken for wall time and for process CPU time. The figure is the median of the per-round ratios:
a change in machine load between rounds affects A and B of the same round alike and cancels in
their ratio, where medians pooled over all rounds would compare A's quiet rounds with B's busy
ones. CPU time (``time.process_time``, or what a worker process reports for itself) counts only
the work of the measured process, so on a shared machine it is the steadier of the two.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Timing", "order", "paired_ratios", "run_paired", "timed"]


@dataclass(frozen=True)
class Timing:
    """One measurement: wall-clock seconds and process CPU seconds."""

    wall_s: float
    cpu_s: float


def timed(fn: Callable[[], Any]) -> Timing:
    """Run ``fn`` once in this process and time it."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return Timing(time.perf_counter() - w0, time.process_time() - c0)


def order(names: Sequence[str], round_index: int) -> list[str]:
    """The order of the measured variants in round ``round_index``: as given in even rounds,
    reversed in odd ones (so any two of them alternate which goes first)."""
    return list(names) if round_index % 2 == 0 else list(reversed(names))


def run_paired(
    a: Callable[[], Timing], b: Callable[[], Timing], rounds: int
) -> list[tuple[Timing, Timing]]:
    """``rounds`` rounds of A and B back to back in alternating order; ``[(a, b), ...]``."""
    pairs = []
    for r in range(rounds):
        if r % 2 == 0:
            ta = a()
            tb = b()
        else:
            tb = b()
            ta = a()
        pairs.append((ta, tb))
    return pairs


def paired_ratios(pairs: Sequence[tuple[Timing, Timing]]) -> dict[str, Any]:
    """Per-round ratios A / B of wall and CPU time and their medians (None without rounds)."""
    wall = [a.wall_s / b.wall_s for a, b in pairs if b.wall_s > 0]
    cpu = [a.cpu_s / b.cpu_s for a, b in pairs if b.cpu_s > 0]
    return {
        "rounds": len(pairs),
        "wall_ratio_median": round(statistics.median(wall), 4) if wall else None,
        "cpu_ratio_median": round(statistics.median(cpu), 4) if cpu else None,
        "wall_ratios": [round(x, 4) for x in wall],
        "cpu_ratios": [round(x, 4) for x in cpu],
    }
