"""Collections in the console (``/console/collections``): the policy for non-payers and the
walled garden's info pages, one per suspension reason (admin only to change)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import app_of, redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.session import require_admin
from ispbill.use_cases.collections import collection_policy, info_pages
from ispbill.use_cases.collections.non_payers import run_collections

router = APIRouter(prefix="/console", include_in_schema=False)


def _policy_context(uow: UnitOfWork) -> dict[str, Any]:
    fields = collection_policy.CollectionSettings.model_fields
    current = collection_policy.load(uow).model_dump(mode="json")
    return {
        "policy": [(key, current.get(key), fields[key].description or "") for key in fields],
        "pages": info_pages.list_pages(uow),
        "error": None,
    }


@router.get("/collections")
async def collections_page(request: Request, staff: Staff) -> Response:
    context = await work(request, lambda uow, _now: _policy_context(uow))
    return staff_page(request, staff, "console/collections.html", context)


@router.post("/collections/policy")
async def set_policy(request: Request, staff: Staff) -> Response:
    """Change the policy keys that differ; customers are reviewed at once (turning it off
    lifts automatic non-payer suspensions)."""
    require_admin(staff)
    form = await form_of(request)

    def change(uow: UnitOfWork, now: datetime) -> None:
        current = collection_policy.load(uow).model_dump(mode="json")
        changes: dict[str, str | None] = {}
        for key in collection_policy.CollectionSettings.model_fields:
            if key not in form:
                continue
            old = current.get(key)
            old_text = (
                "" if old is None else str(old).lower() if isinstance(old, bool) else str(old)
            )
            new = form[key].strip()
            if new != old_text:
                changes[key] = new or None
        if changes:
            uow.session.rollback()
            collection_policy.set_values(
                uow, changes=changes, customer_class_id=None, now=now, actor=staff.actor
            )

    try:
        await work(request, change)
    except IspbillError as exc:
        context = await work(request, lambda uow, _now: _policy_context(uow))
        context["error"] = str(exc)
        return staff_page(request, staff, "console/collections.html", context, status=422)
    app = app_of(request)
    await run_in_threadpool(
        lambda: run_collections(app.uow, now=app.clock.now(), actor=staff.actor)
    )
    return redirect(request, "/console/collections")


@router.post("/collections/pages/{reason}")
async def edit_info_page(request: Request, staff: Staff, reason: str) -> Response:
    require_admin(staff)
    form = await form_of(request)
    try:
        await work(
            request,
            lambda uow, now: info_pages.edit_page(
                uow,
                reason=reason,
                title=form.get("title", ""),
                body=form.get("body", ""),
                now=now,
                actor=staff.actor,
            ),
        )
    except IspbillError as exc:
        context = await work(request, lambda uow, _now: _policy_context(uow))
        context["error"] = str(exc)
        return staff_page(request, staff, "console/collections.html", context, status=422)
    return redirect(request, f"/console/collections#page-{reason}")
