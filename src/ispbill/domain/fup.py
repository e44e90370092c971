"""FUP data limits (ISPadmin tariffs): which tier a period's usage has reached and what follows.

ISPadmin seed: "Data limits (in GB). For each FUP (1 to 4), you can define automatic suspension
(Suspend) instead of Reduce speed." A tier is reached when the period's usage is at or past its
limit. Tiers only go up within a period; a new billing period starts from zero (the reset).
Both directions of traffic count: an ISP sells a volume, not a direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ispbill.domain.plans import FupAction, FupTier, Speed


@dataclass(frozen=True, slots=True)
class FupStep:
    """A tier newly reached: throttle to ``speed`` or suspend the service with reason fup."""

    tier: FupTier
    used_bytes: int

    @property
    def suspends(self) -> bool:
        return self.tier.action is FupAction.SUSPEND


def reached_tier(tiers: Sequence[FupTier], used_bytes: int) -> FupTier | None:
    """The highest tier whose limit the usage has reached."""
    reached = [t for t in tiers if used_bytes >= t.limit_bytes]
    return max(reached, key=lambda t: t.tier) if reached else None


def decide_fup(tiers: Sequence[FupTier], used_bytes: int, applied_tier: int) -> FupStep | None:
    """The step to take now, or ``None`` when no tier above the applied one is reached."""
    tier = reached_tier(tiers, used_bytes)
    if tier is None or tier.tier <= applied_tier:
        return None
    return FupStep(tier, used_bytes)


def throttle_for(tiers: Sequence[FupTier], applied_tier: int) -> Speed | None:
    """The speed the applied tiers impose: the slowest throttle among those reached (a suspend
    tier takes the service off the network instead, through its state)."""
    speeds = [
        t.speed
        for t in tiers
        if t.tier <= applied_tier and t.action is FupAction.THROTTLE and t.speed is not None
    ]
    if not speeds:
        return None
    return Speed(min(s.down_kbps for s in speeds), min(s.up_kbps for s in speeds))
