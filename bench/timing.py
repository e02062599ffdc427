"""The one timing rule every benchmark here follows: warm up, repeat, take the median."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def median_seconds(action: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median wall time of `action()` over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
