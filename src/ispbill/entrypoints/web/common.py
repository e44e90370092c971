"""What every web page shares: the posted form with its CSRF token checked, the error pages,
and the console's helpers (a page with its staff user, a job in a unit of work, the reader's
scope, a typed day). Rendering itself (templates, translations, formats, cookies) is in
``entrypoints/pages.py``, which the API's input guard shares."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from babel import Locale
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.dates import check_date
from ispbill.domain.errors import ValidationError
from ispbill.domain.text import NUL, NUL_RULE
from ispbill.entrypoints.pages import (
    CSRF_COOKIE,
    CSRF_FIELD,
    LANGUAGES,
    app_of,
    csrf_token,
    error_page,
    pick_language,
    render,
    translations,
)
from ispbill.entrypoints.web.session import StaffPrincipal, require_staff
from ispbill.use_cases.queries.dashboard import Scope

Staff = Annotated[StaffPrincipal, Depends(require_staff)]
T = TypeVar("T")


async def form_of(request: Request) -> dict[str, str]:
    """The posted form after its CSRF token was checked (403 otherwise)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    sent = values.pop(CSRF_FIELD, "") or request.headers.get("x-csrf-token", "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise HTTPException(403, "the form's security token is missing or stale; reload the page")
    for name, value in form.multi_items():  # multipart (urlencoded: inputs.py refused it)
        text = value if isinstance(value, str) else value.filename or ""
        if NUL in name or NUL in text:
            raise HTTPException(422, f"{name if NUL not in name else 'form'}: {NUL_RULE}")
    return values


def error_text(exc: Exception, gettext: Callable[[str], str]) -> str:
    """A use case's refusal (``field: rule``) for the page; the rule stays in English where
    the catalog has no translation (it names fields and values exactly)."""
    return gettext(str(exc))


def install_error_pages(api: FastAPI) -> None:
    """Plain HTML for 403/404 under /console and /portal (the API keeps problem+json)."""

    @api.exception_handler(HTTPException)
    async def html_errors(request: Request, exc: HTTPException) -> Response:
        path = request.url.path
        if not (path.startswith("/console") or path.startswith("/portal")):
            return await http_exception_handler(request, exc)
        return error_page(request, exc.status_code, str(exc.detail))


def locale_of(language: str) -> Locale:
    return Locale.parse(LANGUAGES[language])


# -- the console's helpers ------------------------------------------------------------------------


def language_of(request: Request, staff: StaffPrincipal | None) -> str:
    """The page's language: the cookie's, else the staff user's stored locale, else the
    browser's."""
    return pick_language(request, staff.locale if staff else None)


def staff_page(
    request: Request,
    staff: StaffPrincipal | None,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    *,
    timezone: str = "UTC",
) -> Response:
    """A console page, with its staff user (None on the sign-in page)."""
    return render(
        request,
        template,
        {"staff": staff, "section": "console", **context},
        language=language_of(request, staff),
        timezone=timezone,
        status=status,
    )


async def work(request: Request, job: Callable[[UnitOfWork, datetime], T]) -> T:
    """Run ``job`` in a worker thread inside one unit of work, with the clock's now."""
    app = app_of(request)

    def run() -> T:
        with app.uow() as uow:
            return job(uow, app.clock.now())

    return await run_in_threadpool(run)


def scope_of(staff: StaffPrincipal) -> Scope:
    """Whose customers the user's lists show: one reseller's for its user, else everybody's."""
    return Scope(staff.reseller_id if staff.role == "reseller" else None)


def gettext_for(request: Request, staff: StaffPrincipal | None) -> Callable[[str], str]:
    return translations(language_of(request, staff)).gettext


def parse_day(text: str, field: str) -> date | None:
    """A day typed into a form (``2026-12-01``), None when left empty; refused naming the
    field when it is not a date or out of the accepted range."""
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(field, "must be a date like 2026-12-01") from None
    return check_date(field, day)


# -- confirmation before a destructive action ------------------------------------------------------

CONFIRM_FIELD = "confirm_token"


@dataclass(frozen=True)
class Confirmation:
    """What a destructive action will do, stated before it is done (issue 17).

    A route builds one from the current state and the form's values, on the GET that shows it
    and again on the POST that does it. ``consequence`` starts "This will ..." and carries the
    figures; ``details`` are the lines under it (the customers and services a bulk action
    changes, say). The POST is done only when its ``confirm_token`` is the token of the
    confirmation built at that moment: the token is an HMAC, keyed by the browser's CSRF
    cookie, of the action, the carried fields, the consequence and the details, so a form
    changed after the page was shown, or a state that moved (another payment, a customer
    that left the filter), shows the new confirmation instead of doing something unseen.
    """

    title: str
    consequence: str
    action: str  # the URL the confirmed form posts to
    back: str  # where "Cancel" goes
    button: str
    fields: Mapping[str, str] = field(default_factory=dict)  # the form's values, carried over
    details: Sequence[str] = ()


def confirm_token(request: Request, confirmation: Confirmation) -> str:
    """The token that lets this browser do exactly ``confirmation``."""
    message = "\x1f".join(
        [
            confirmation.action,
            *(f"{k}={v}" for k, v in sorted(confirmation.fields.items())),
            confirmation.consequence,
            *confirmation.details,
        ]
    )
    key = csrf_token(request).encode()
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def is_confirmed(request: Request, form: Mapping[str, str], confirmation: Confirmation) -> bool:
    """Whether the posted ``form`` confirms ``confirmation`` as it stands now."""
    sent = form.get(CONFIRM_FIELD, "")
    return bool(sent) and hmac.compare_digest(sent, confirm_token(request, confirmation))


def confirmation_page(
    request: Request, staff: StaffPrincipal, confirmation: Confirmation, form: Mapping[str, str]
) -> Response:
    """The "This will ..." page. A post that sent a token for another confirmation (what it
    does has changed since the page was shown) is a 409 that says so, with the new one."""
    changed = bool(form.get(CONFIRM_FIELD))
    return staff_page(
        request,
        staff,
        "console/confirmation.html",
        {
            "confirmation": confirmation,
            "confirm_field": CONFIRM_FIELD,
            "confirm_token": confirm_token(request, confirmation),
            "changed": changed,
        },
        status=409 if changed else 200,
    )
