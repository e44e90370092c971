"""Read model of automatic top-up rules for the API (the console's filters,
``operator_lists.top_ups_query``), oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import TopUpRule
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.money import Money
from ispbill.use_cases.queries.dashboard import Scope
from ispbill.use_cases.queries.operator_lists import TopUpFilter, top_ups_query


@dataclass(frozen=True)
class TopUpRuleView:
    id: int
    customer_id: int
    threshold: Money
    amount: Money
    gateway: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


def rule_view(row: TopUpRule) -> TopUpRuleView:
    """A rule as read (also one a use case has just written)."""
    return TopUpRuleView(
        id=row.id,
        customer_id=row.customer_id,
        threshold=Money(row.threshold_minor, row.currency),
        amount=Money(row.amount_minor, row.currency),
        gateway=row.gateway,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_rules(
    uow: UnitOfWork, scope: Scope, wanted: TopUpFilter, *, after: int | None, limit: int
) -> Slice[TopUpRuleView]:
    """Rules of the reader's customers by id."""
    found = keyset_slice(
        uow.session, top_ups_query(scope, wanted), TopUpRule.id, after=after, limit=limit
    )
    return mapped(found, lambda rows: [rule_view(r) for r in rows])
