"""Operator settings in the console (``/console/settings``), running the engine now (the
tick), and the page's language (``/console/language``, anyone, signed in or not)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.entrypoints.pages import LANG_COOKIE, LANGUAGES, app_of, redirect, set_cookie
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.session import require_admin, require_global
from ispbill.use_cases.billing.tick import tick

router = APIRouter(prefix="/console", include_in_schema=False)


def _settings_context(uow: UnitOfWork) -> dict[str, Any]:
    fields = settings_store.OperatorSettings.model_fields
    current = settings_store.load(uow).model_dump(mode="json")
    rows = []
    for key, info in fields.items():
        value = current.get(key)
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, bool):
            value = str(value).lower()
        rows.append((key, "" if value is None else str(value), info.description or ""))
    return {"settings": rows, "error": None, "report": None}


@router.get("/settings")
async def settings_page(request: Request, staff: Staff) -> Response:
    """Operator-wide, as the API's ``GET /settings``: never a reseller's user."""
    require_global(staff)
    context = await work(request, lambda uow, _now: _settings_context(uow))
    return staff_page(request, staff, "console/settings.html", context)


@router.post("/settings")
async def save_settings(request: Request, staff: Staff) -> Response:
    """Each changed setting through ``settings.set_value`` (one event each)."""
    require_admin(staff)
    form = await form_of(request)
    current = await work(request, lambda uow, _now: _settings_context(uow)["settings"])
    changed = [(key, form[key]) for key, value, _ in current if key in form and form[key] != value]

    def save(uow: UnitOfWork, now: datetime) -> None:
        # every change is checked before the first is stored: a refusal writes nothing
        merged = settings_store.load(uow).model_dump()
        for key, raw in changed:
            text = raw.strip()
            merged[key] = None if text.lower() in ("", "none", "null") else text
            try:
                settings_store.OperatorSettings.model_validate(merged)
            except PydanticValidationError as exc:
                raise ValidationError(key, exc.errors()[0]["msg"]) from None
        for key, raw in changed:
            settings_store.set_value(uow, key=key, raw=raw, now=now, actor=staff.actor)

    try:
        await work(request, save)
    except IspbillError as exc:
        context = await work(request, lambda uow, _now: _settings_context(uow))
        context["error"] = str(exc)
        return staff_page(request, staff, "console/settings.html", context, status=422)
    return redirect(request, "/console/settings")


@router.post("/tick")
async def run_tick(request: Request, staff: Staff) -> Response:
    """Run the engine now, as ``ispbill run`` and ``POST /api/v1/ticks`` do (admin only)."""
    require_admin(staff)
    await form_of(request)
    app = app_of(request)
    report = await run_in_threadpool(
        lambda: tick(app.uow_factory, now=app.clock.now(), actor=staff.actor, gateways=app.gateways)
    )
    context = await work(request, lambda uow, _now: _settings_context(uow))
    context["report"] = report
    return staff_page(request, staff, "console/settings.html", context)


@router.post("/language")
async def language(request: Request) -> Response:
    form = await form_of(request)
    chosen = form.get("lang", "en")
    target = form.get("next", "/console")
    if not target.startswith("/") or target.startswith("//"):
        target = "/console"
    response = redirect(request, target)
    if chosen in LANGUAGES:
        set_cookie(response, request, LANG_COOKIE, chosen, max_age=365 * 86400)
    return response
