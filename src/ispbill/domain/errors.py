"""Typed domain errors with a message an operator can act on.

Every refusal names the field and the rule it broke (ARCHITECTURE invariant 5: bad input is
refused before anything is written), so the CLI, the API and the web can all render it the same
way: ``field: rule``.
"""

from __future__ import annotations


class IspbillError(Exception):
    """Root of every error ispbill raises on purpose."""


class ValidationError(IspbillError):
    """Input broke a rule; nothing was written."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class CurrencyMismatch(ValidationError):
    """Arithmetic or a posting mixed two currencies."""

    def __init__(self, left: str, right: str, field: str = "currency") -> None:
        self.left = left
        self.right = right
        super().__init__(field, f"currencies differ ({left} vs {right}); convert explicitly")


class NotFound(IspbillError):
    """A referenced record does not exist."""

    def __init__(self, entity: str, key: object, field: str | None = None) -> None:
        self.entity = entity
        self.key = key
        self.field = field or entity
        super().__init__(f"{self.field}: no {entity} {key!r}")


class Conflict(ValidationError):
    """The input is well-formed but clashes with what is stored (a duplicate, a used card)."""


class LedgerError(IspbillError):
    """A ledger invariant would break (postings not zero-sum, cached balance drifted)."""
