"""Tax profiles: a rate and whether prices include it.

PortaBilling's customer class carries "taxation"; ispbill keeps it as a profile a class, a
customer or a plan refers to. Rates are basis points (2100 = 21 %) so no float appears, and the
tax of a line is rounded once, half-up, with net + tax equal to the gross exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money

MAX_RATE_BP = 10_000  # 100 %
NAME_MAX = 100


@dataclass(frozen=True, slots=True)
class TaxProfile:
    name: str
    rate_bp: int
    inclusive: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.rate_bp <= MAX_RATE_BP:
            raise ValidationError("rate", "must be between 0% and 100%")


@dataclass(frozen=True, slots=True)
class TaxSplit:
    net: Money
    tax: Money

    @property
    def gross(self) -> Money:
        return self.net + self.tax


NO_TAX = TaxProfile("none", 0)


def split_tax(price: Money, profile: TaxProfile) -> TaxSplit:
    """Exclusive: the price is net and tax is added. Inclusive: the price is gross."""
    if profile.inclusive:
        net = price.prorate(10_000, 10_000 + profile.rate_bp)
        return TaxSplit(net=net, tax=price - net)
    return TaxSplit(net=price, tax=price.percent_bp(profile.rate_bp))


def parse_rate_bp(text: str) -> int:
    """'21', '21%', '10.5' -> basis points; at most two decimals."""
    cleaned = text.strip().removesuffix("%").strip()
    whole, _, frac = cleaned.partition(".")
    if whole.isdigit() and (frac == "" or (frac.isdigit() and len(frac) <= 2)):
        return int(whole) * 100 + (int(frac.ljust(2, "0")) if frac else 0)
    raise ValidationError("rate", "must be a percentage such as '21' or '10.5%'")
