"""A customer's automatic top-up rule in the console: set or replace it, disable it, or delete
one that never requested a top-up (the rules' list is ``/console/top-ups``, in ``lists``)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.entrypoints.web.common import Staff
from ispbill.entrypoints.web.console.customers import act
from ispbill.use_cases.payments.top_ups import (
    TopUpRuleSpec,
    delete_rule,
    disable_rule,
    set_rule,
)

router = APIRouter(prefix="/console", include_in_schema=False)


@router.post("/customers/{customer_id}/top-up")
async def set_top_up(request: Request, staff: Staff, customer_id: int) -> Response:
    """Create or replace the wallet's rule (a saved payment method charged at the gateway
    when the balance falls below the threshold)."""

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = TopUpRuleSpec(
            customer_id=customer_id,
            threshold=form.get("threshold", ""),
            amount=form.get("amount", ""),
            method=form.get("method", ""),
            gateway=form.get("gateway", ""),
            gateway_customer=form.get("gateway_customer", "").strip() or None,
            enabled=form.get("enabled") == "1",
        )
        return set_rule(uow, spec=spec, now=now, actor=staff.actor)

    return await act(request, staff, customer_id, "top-up", run)


@router.post("/customers/{customer_id}/top-up/{change}")
async def change_top_up(request: Request, staff: Staff, customer_id: int, change: str) -> Response:
    """Disable the rule, or delete one that never requested a top-up (the use case refuses
    deleting one with history: it is disabled instead, to keep the attempts' trail)."""
    if change not in ("disable", "delete"):
        raise HTTPException(404, "no such change")
    use_case = disable_rule if change == "disable" else delete_rule

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return use_case(uow, customer_id=customer_id, now=now, actor=staff.actor)

    return await act(request, staff, customer_id, "top-up", run)
