"""Who is calling and what it may reach, shared by the API's bearer tokens and the web's
signed-in users, so both ask the very same questions:

* ``admin`` may do everything; ``readonly`` may read everything and write nothing;
* ``reseller`` reaches its own customers only; anyone else's is "not found", exactly as if it
  did not exist;
* ``customer`` (a portal session) reaches its own customer only.

It sits beside ``api/`` and ``web/`` rather than in either, so neither imports the other.
The API's ``Principal`` (``api/auth.py``) has the same rules and adds scoping a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Owned(Protocol):
    """A customer as far as access needs it: its id and its reseller."""

    @property
    def id(self) -> int: ...

    @property
    def reseller_id(self) -> int | None: ...


@dataclass(frozen=True)
class Principal:
    token_id: int
    name: str
    role: str
    reseller_id: int | None = None
    customer_id: int | None = None

    @property
    def actor(self) -> str:
        if self.role == "customer":
            return f"customer:{self.customer_id}"
        return f"api:{self.name}#{self.token_id}"

    @property
    def is_global(self) -> bool:
        """Sees every customer (admin and readonly)."""
        return self.role in ("admin", "readonly")

    @property
    def may_write(self) -> bool:
        return self.role != "readonly"

    def may_see(self, customer: Owned) -> bool:
        if self.role == "reseller":
            return customer.reseller_id == self.reseller_id
        if self.role == "customer":
            return customer.id == self.customer_id
        return True
