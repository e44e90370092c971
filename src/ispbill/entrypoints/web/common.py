"""What every web page shares: templates with Babel translations, locale formatting, the CSRF
token, cookies, and rendering use-case refusals next to the form that caused them."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import ispbill
from ispbill.bootstrap import App
from ispbill.domain.money import Money
from ispbill.domain.text import NUL, NUL_RULE
from ispbill.entrypoints.api.deps import container

Day = date  # the method Formats.date shadows the type inside the class
LOCALE_DIR = Path(ispbill.__file__).parent / "locale"
# language code -> the CLDR locale its numbers, dates and money are formatted in
LANGUAGES = {"en": "en_US", "cs": "cs_CZ"}
LANGUAGE_NAMES = {"en": "English", "cs": "Čeština"}
LANG_COOKIE = "ispbill_lang"
CSRF_COOKIE = "ispbill_csrf"
CSRF_FIELD = "csrf_token"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self' http: https:; frame-ancestors 'none'"
    ),
}


@lru_cache(maxsize=8)
def translations(language: str) -> NullTranslations:
    """The compiled catalog (``locale/<lang>/LC_MESSAGES/messages.mo``) of a language; English
    is the source language, so a missing catalog shows the English text."""
    return Translations.load(str(LOCALE_DIR), [language], domain="messages")


@lru_cache(maxsize=8)
def environment(language: str) -> jinja2.Environment:
    """One template environment per language, its gettext installed (new-style: escaping
    and ``%(name)s`` formatting done by Jinja)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ispbill.entrypoints.web", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from ispbill.entrypoints.web.markdown import render_markdown

    env.filters["markdown"] = render_markdown
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def pick_language(request: Request, preferred: str | None = None) -> str:
    """The cookie's choice, else the user's stored locale, else the browser's, else English."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    if preferred and preferred[:2] in LANGUAGES:
        return preferred[:2]
    header = request.headers.get("accept-language", "")
    for part in header.split(","):
        code = part.split(";")[0].strip()[:2].lower()
        if code in LANGUAGES:
            return code
    return "en"


class Formats:
    """Numbers, dates and money in the page's locale (Babel, as the invoices)."""

    def __init__(self, language: str, timezone: str = "UTC") -> None:
        self.locale = LANGUAGES[language]
        self.timezone = timezone

    def money(self, amount: Money) -> str:
        return amount.format(self.locale)

    def minor(self, minor: int, currency: str) -> str:
        return Money(minor, currency).format(self.locale)

    def major(self, minor: int, currency: str) -> str:
        """A plain amount for a form field (``12.50``), not a display string."""
        return f"{Money(minor, currency).to_decimal():f}"

    def date(self, value: date | None) -> str:
        return format_date(value, "medium", locale=self.locale) if value else ""

    def last_day(self, end: Day | None) -> str:
        """The last day of a half-open range ``[start, end)``: what "paid up to" means."""
        return self.date(end - timedelta(days=1)) if end else ""

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, "short", tzinfo=self.timezone_info(), locale=self.locale)

    def number(self, value: int) -> str:
        return format_decimal(value, locale=self.locale)

    def timezone_info(self) -> Any:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    def month(self, key: str) -> str:
        year, month = key.split("-")
        return format_date(date(int(year), int(month), 1), "LLL yy", locale=self.locale)


def app_of(request: Request) -> App:
    return container(request)


def csrf_token(request: Request) -> str:
    """The browser's CSRF secret (double-submit: an HttpOnly, SameSite=Strict cookie echoed
    in every form); a new one is made for a browser without it."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return str(token)


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


def set_cookie(
    response: Response, request: Request, name: str, value: str, *, max_age: int | None = None
) -> None:
    secure = app_of(request).settings.cookie_secure
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict" if name == CSRF_COOKIE else "lax",
    )


def finish(response: Response, request: Request) -> Response:
    """Security headers, and the CSRF cookie of a browser that just got its token."""
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    new = getattr(request.state, "new_csrf", None)
    if new and not request.cookies.get(CSRF_COOKIE):
        set_cookie(response, request, CSRF_COOKIE, new)
    return response


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    language: str,
    timezone: str = "UTC",
    status: int = 200,
) -> Response:
    env = environment(language)
    page = env.get_template(template).render(
        {
            "request": request,
            "lang": language,
            "languages": LANGUAGE_NAMES,
            "fmt": Formats(language, timezone),
            "csrf": csrf_token(request),
            "csrf_field": CSRF_FIELD,
            # a form that creates money carries a key made when it was shown, so submitting it
            # twice (a double click, a reload) records the payment once
            "new_key": lambda: "web-" + secrets.token_hex(16),
            **context,
        }
    )
    return finish(HTMLResponse(page, status_code=status), request)


def redirect(request: Request, url: str) -> Response:
    return finish(RedirectResponse(url, status_code=303), request)


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
            from fastapi.exception_handlers import http_exception_handler

            return await http_exception_handler(request, exc)
        language = pick_language(request)
        return render(
            request,
            "error.html",
            {
                "status": exc.status_code,
                "detail": str(exc.detail),
                "section": "portal" if path.startswith("/portal") else "console",
            },
            language=language,
            status=exc.status_code,
        )


def locale_of(language: str) -> Locale:
    return Locale.parse(LANGUAGES[language])
