"""Rules for text from outside, shared by every entry point.

PostgreSQL refuses a NUL character in any text value while SQLite stores it, so a NUL that
reaches a query is a server error on one database and a different record on the other. The web
application refuses it centrally before any route runs (``entrypoints/api/inputs.py``); the use
cases that take text straight from a caller (lookups by name, RADIUS attributes) guard again
here, so the CLI and any future entry point get the same refusal.
"""

from __future__ import annotations

from ispbill.domain.errors import ValidationError

NUL = "\x00"
NUL_RULE = "must not contain NUL characters"


def refuse_nul(value: str, field: str) -> str:
    """``value`` unchanged, or a refusal naming ``field`` when it holds a NUL character."""
    if NUL in value:
        raise ValidationError(field, NUL_RULE)
    return value
