"""Percentiles and summaries of latencies (nearest rank, in milliseconds)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    """Milliseconds: count, p50, p99, max (and min, for latencies that can be negative)."""

    count: int
    p50: float
    p99: float
    max: float
    min: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ms = [value * 1000 for value in seconds]
        if not ms:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(len(ms), percentile(ms, 50), percentile(ms, 99), max(ms), min(ms))


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def ratio(value: float, reference: float) -> str:
    return "-" if math.isnan(value) or math.isnan(reference) or reference <= 0 else f"x{value / reference:.2f}"


def median_spread(values: Sequence[float]) -> str:
    """``median (min-max)`` of several runs' figures."""
    clean = [value for value in values if not math.isnan(value)]
    if not clean:
        return "-"
    return f"{statistics.median(clean):.1f} ({min(clean):.1f}-{max(clean):.1f})"
