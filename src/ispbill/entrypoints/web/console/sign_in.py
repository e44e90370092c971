"""Signing in and out of the console (``/console/login``, ``/console/logout``)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.entrypoints.pages import app_of, redirect, set_cookie
from ispbill.entrypoints.web.common import form_of, gettext_for, staff_page, work
from ispbill.entrypoints.web.session import STAFF_COOKIE, policy
from ispbill.use_cases.admin.web_auth import (
    SignInRefused,
    end_session,
    sign_in_staff,
    start_session,
)

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/login")
async def login_form(request: Request) -> Response:
    return staff_page(request, None, "console/login.html", {"error": None, "username": ""})


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    app = app_of(request)
    source = request.client.host if request.client else None
    rules = policy(request)

    def sign_in(uow: UnitOfWork, now: datetime) -> str:
        staff = sign_in_staff(
            uow,
            username=form.get("username", ""),
            password=form.get("password", ""),
            code=form.get("code", ""),
            source=source,
            now=now,
        )
        return start_session(uow, staff_id=staff.id, now=now, policy=rules)

    try:
        secret = await work(request, sign_in)
    except SignInRefused as exc:
        context = {"error": gettext_for(request, None)(str(exc)), "username": form.get("username")}
        return staff_page(request, None, "console/login.html", context, status=401)
    response = redirect(request, "/console")
    set_cookie(
        response, request, STAFF_COOKIE, secret, max_age=app.settings.session_max_hours * 3600
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await form_of(request)
    secret = request.cookies.get(STAFF_COOKIE, "")
    await work(request, lambda uow, now: end_session(uow, secret=secret, now=now))
    response = redirect(request, "/console/login")
    response.delete_cookie(STAFF_COOKIE, path="/")
    return response
