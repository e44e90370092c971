"""API tokens in the console (``/console/tokens``, admin only): the list (only their hashes are
stored, so it never shows a secret), a new token whose secret is shown once, and revoking one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import require_admin
from ispbill.use_cases.admin.api_tokens import ROLES as TOKEN_ROLES
from ispbill.use_cases.admin.api_tokens import create_token, list_tokens, revoke_token
from ispbill.use_cases.catalog.name_lookups import reseller_id_of
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


def _tokens_context(uow: UnitOfWork) -> dict[str, Any]:
    names = console_catalog.reseller_names(uow.session)
    operator = [t for t in list_tokens(uow) if t.role in TOKEN_ROLES]  # not portal sessions
    return {"tokens": operator, "reseller_names": names, "roles": TOKEN_ROLES}


@router.get("/tokens")
async def tokens(request: Request, staff: Staff, format: str = "") -> Response:
    """API tokens (admin only): only their hashes are stored, so the list never shows a secret."""
    require_admin(staff)
    context = await work(request, lambda uow, _now: _tokens_context(uow))
    if format == "csv":
        return csv_response(
            "api_tokens.csv",
            ["id", "name", "role", "reseller", "created_at", "last_used_at", "revoked_at"],
            [
                (
                    t.id,
                    t.name,
                    t.role,
                    context["reseller_names"].get(t.reseller_id, ""),
                    t.created_at.isoformat(),
                    t.last_used_at.isoformat() if t.last_used_at else "",
                    t.revoked_at.isoformat() if t.revoked_at else "",
                )
                for t in context["tokens"]
            ],
        )
    context.update(error=None, form={}, secret=None)
    return staff_page(request, staff, "console/tokens.html", context)


@router.post("/tokens")
async def create_api_token(request: Request, staff: Staff) -> Response:
    """Creates a token and shows its secret on this one response; it is never shown again."""
    require_admin(staff)
    form = await form_of(request)

    def create(uow: UnitOfWork, now: datetime) -> str:
        reseller = form.get("reseller", "").strip()
        return create_token(
            uow,
            name=form.get("name", ""),
            role=form.get("role", ""),
            reseller_id=reseller_id_of(uow, reseller) if reseller else None,
            now=now,
            actor=staff.actor,
        ).plaintext

    try:
        secret: str | None = await work(request, create)
        error, status, shown = None, 200, {}
    except IspbillError as exc:
        secret, error, status, shown = None, str(exc), 422, form
    context = await work(request, lambda uow, _now: _tokens_context(uow))
    context.update(error=error, form=shown, secret=secret)
    return staff_page(request, staff, "console/tokens.html", context, status=status)


@router.post("/tokens/{token_id}/revoke")
async def revoke_api_token(request: Request, staff: Staff, token_id: int) -> Response:
    require_admin(staff)
    await form_of(request)
    try:
        await work(
            request,
            lambda uow, now: revoke_token(uow, token_id=token_id, now=now, actor=staff.actor),
        )
    except IspbillError as exc:
        context = await work(request, lambda uow, _now: _tokens_context(uow))
        context.update(error=str(exc), form={}, secret=None)
        return staff_page(request, staff, "console/tokens.html", context, status=422)
    return redirect(request, "/console/tokens")
