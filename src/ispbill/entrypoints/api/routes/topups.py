"""``/api/v1/top-up-rules``: automatic wallet funding from a saved payment method.

One rule per customer wallet; ``PUT`` sets (creates or replaces) it, ``DELETE`` removes one that
never requested anything (otherwise disable it with ``enabled: false``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Caller, Staff, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.schemas import Amount, TopUpRuleIn, TopUpRuleOut
from ispbill.use_cases.payments import top_ups
from ispbill.use_cases.queries import top_up_lists
from ispbill.use_cases.queries.operator_lists import TopUpFilter
from ispbill.use_cases.queries.top_up_lists import TopUpRuleView, rule_view

router = APIRouter(prefix="/api/v1/top-up-rules", tags=["top-up rules"])
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]


def rule_out(rule: TopUpRuleView) -> TopUpRuleOut:
    return TopUpRuleOut(
        id=rule.id,
        customer_id=rule.customer_id,
        threshold=Amount.of(rule.threshold),
        amount=Amount.of(rule.amount),
        gateway=rule.gateway,
        enabled=rule.enabled,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


@router.get("", response_model=Page[TopUpRuleOut])
async def list_top_up_rules(
    request: Request,
    caller: Caller,
    paging: Paging,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    enabled: Annotated[bool | None, Query()] = None,
) -> Page[TopUpRuleOut]:
    """Top-up rules by id; filter by customer or whether enabled."""
    app = container(request)

    def work() -> Page[TopUpRuleOut]:
        with app.uow() as uow:
            if customer_id is not None:
                require_customer(uow, caller, customer_id)
            found = top_up_lists.list_rules(
                uow,
                caller.reader,
                TopUpFilter(customer_id, enabled),
                after=paging.after(),
                limit=paging.limit,
            )
            return page_of(found, rule_out)

    return await call(work)


@router.put("", response_model=TopUpRuleOut)
async def set_top_up_rule(body: TopUpRuleIn, request: Request, caller: Staff) -> TopUpRuleOut:
    """Create or replace the customer's rule; it is armed from now."""
    app = container(request)

    def work() -> TopUpRuleOut:
        with app.uow() as uow:
            require_customer(uow, caller, body.customer_id)
        with app.uow() as uow:
            rule = top_ups.set_rule(
                uow,
                spec=top_ups.TopUpRuleSpec(
                    customer_id=body.customer_id,
                    threshold=body.threshold,
                    amount=body.amount,
                    method=body.method,
                    gateway=body.gateway,
                    gateway_customer=body.gateway_customer,
                    enabled=body.enabled,
                ),
                now=app.clock.now(),
                actor=caller.actor,
            )
            return rule_out(rule_view(rule))

    return await call(work)


@router.delete("/{customer_id}", status_code=204, response_class=Response)
async def delete_top_up_rule(customer_id: CustomerId, request: Request, caller: Staff) -> Response:
    """Delete the customer's rule (refused once it has requested a top-up: disable it)."""
    app = container(request)

    def work() -> None:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
        with app.uow() as uow:
            top_ups.delete_rule(
                uow, customer_id=customer_id, now=app.clock.now(), actor=caller.actor
            )

    await call(work)
    return Response(status_code=204)
