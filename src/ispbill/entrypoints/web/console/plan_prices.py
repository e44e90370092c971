"""A plan's prices in the console (``/console/plans/{id}/prices``, issue 17): the history and,
for admins, a new price from a day. The same use case as ``ispbill plans price`` and
``POST /api/v1/plans/{id}/prices``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, parse_day, staff_page, work
from ispbill.entrypoints.web.session import require_admin
from ispbill.use_cases.catalog import plan_prices
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


def _context(uow: UnitOfWork, plan_id: int) -> dict[str, Any]:
    plan = next((p for p in console_catalog.plans(uow.session) if p.id == plan_id), None)
    if plan is None or not 0 < plan_id <= MAX_ID:
        raise HTTPException(404, "no such plan")
    return {
        "plan": plan,
        "prices": plan_prices.price_history(uow, plan_id=plan_id),
        "error": None,
        "form": {},
    }


@router.get("/plans/{plan_id}/prices")
async def prices_page(request: Request, staff: Staff, plan_id: int) -> Response:
    context = await work(request, lambda uow, _now: _context(uow, plan_id))
    return staff_page(request, staff, "console/plan_prices.html", context)


@router.post("/plans/{plan_id}/prices")
async def change_price(request: Request, staff: Staff, plan_id: int) -> Response:
    require_admin(staff)
    form = await form_of(request)

    def run(uow: UnitOfWork, now: datetime) -> object:
        day = parse_day(form.get("valid_from", ""), "from")
        if day is None:
            raise ValidationError("from", "is required")
        return plan_prices.change_plan_price(
            uow,
            plan_id=plan_id,
            amount=form.get("amount", ""),
            effective=day,
            now=now,
            actor=staff.actor,
        )

    await work(request, lambda uow, _now: _context(uow, plan_id))  # a 404 for an unknown plan
    try:
        await work(request, run)
    except IspbillError as exc:
        context = await work(request, lambda uow, _now: _context(uow, plan_id))
        context.update(error=str(exc), form=form)
        return staff_page(request, staff, "console/plan_prices.html", context, status=422)
    return redirect(request, f"/console/plans/{plan_id}/prices")
