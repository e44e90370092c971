"""The range of dates ispbill accepts from anyone: one rule for the CLI, the API and the console.

Dates come from people and files (a service's "active from" and "active to", a suspension's
FROM-TO, a refill card's expiry, a plan change's effective day, a tick's instant), and the engine
does calendar arithmetic on every one of them. Two ends break it:

- near year 9999 the next day, a period's end or next year's window does not exist (Python's
  ``date`` stops at 9999-12-31): "active to 9999-12-31" raised ``OverflowError`` in every later
  tick;
- far in the past the engine catches up on every period since then: a postpaid service from
  0001-01-01 on a daily cycle is some 740,000 charges in one tick.

So a date is accepted when it falls in the years 1970 to 2200: room for every step the calendar
takes from such a date (a yearly repetition, a 120-month period, the day after "active to"),
and no catch-up longer than the Unix era.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeVar

from ispbill.domain.errors import ValidationError

__all__ = ["FIRST_DAY", "LAST_DAY", "RANGE_RULE", "check_date"]

FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2200, 12, 31)
RANGE_RULE = f"must be between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}"

D = TypeVar("D", bound=date)


def check_date(field: str, value: D) -> D:
    """``value`` itself when ispbill accepts it; otherwise a ``ValidationError`` naming ``field``.

    An instant is judged by its own calendar date (the date it reads in its own offset).
    """
    day = value.date() if isinstance(value, datetime) else value
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationError(field, f"{value.isoformat()} is out of range; {RANGE_RULE}")
    return value
