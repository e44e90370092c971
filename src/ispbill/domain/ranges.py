"""A range of ids, both ends included: the unit of work the scheduled tick hands to a job."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdRange:
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"an id range needs low <= high, got {self.low}..{self.high}")

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.low <= value <= self.high


def cut(ids: list[int], size: int) -> list[IdRange]:
    """Ranges of at most ``size`` of the sorted ``ids`` each, covering them all and leaving no
    gap between neighbours (an id added between two plans falls in a range)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    ranges: list[IdRange] = []
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        low = ranges[-1].high + 1 if ranges else part[0]
        ranges.append(IdRange(low, part[-1]))
    return ranges
