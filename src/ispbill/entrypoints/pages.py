"""Rendering an HTML page, shared by the web pages (``entrypoints/web``) and the API's input
guard (``entrypoints/api/inputs.py``, which answers a refused console or portal request with the
same error page): templates with Babel translations, locale formatting, the CSRF token, cookies
and the security headers.

It sits beside ``api/`` and ``web/`` rather than in either, so neither imports the other
(import-linter's ``api-web-apart`` contract). The templates are the web pages' own
(``entrypoints/web/templates``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

import ispbill
from ispbill.bootstrap import App
from ispbill.domain.bank import LineStatus
from ispbill.domain.customers import BalanceControl, CustomerStatus
from ispbill.domain.invoicing import DocumentKind, InvoiceStatus
from ispbill.domain.lifecycle import ServiceState, SuspensionReason
from ispbill.domain.money import Money
from ispbill.domain.refill import CardStatus
from ispbill.use_cases.collections.info_pages import render_markdown as sanitised_html

Day = date  # the method Formats.date shadows the type inside the class
LOCALE_DIR = Path(ispbill.__file__).parent / "locale"
TEMPLATES = Path(ispbill.__file__).parent / "entrypoints" / "web" / "templates"
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
# The domain's words, for templates to compare and list with (``service.state ==
# ServiceState.PAUSED``) instead of retyping them.
VOCABULARY: dict[str, Any] = {
    "ServiceState": ServiceState,
    "SuspensionReason": SuspensionReason,
    "CustomerStatus": CustomerStatus,
    "BalanceControl": BalanceControl,
    "InvoiceStatus": InvoiceStatus,
    "DocumentKind": DocumentKind,
    "LineStatus": LineStatus,
    "CardStatus": CardStatus,
}


def render_markdown(text: str) -> Markup:
    """Operator-written Markdown (the info pages' renderer: markdown-it-py with raw HTML off,
    then nh3's allow-list), marked safe for Jinja only after that sanitising."""
    return Markup(sanitised_html(text))


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
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = render_markdown
    env.globals.update(VOCABULARY)
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

    def timezone_info(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def month(self, key: str) -> str:
        year, month = key.split("-")
        return format_date(date(int(year), int(month), 1), "LLL yy", locale=self.locale)


def app_of(request: Request) -> App:
    """The bootstrapped application a request is served by (set by the app factory)."""
    app_container = request.app.state.container
    assert isinstance(app_container, App)
    return app_container


def csrf_token(request: Request) -> str:
    """The browser's CSRF secret (double-submit: an HttpOnly, SameSite=Strict cookie echoed
    in every form); a new one is made for a browser without it."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return str(token)


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


def error_page(request: Request, status: int, detail: str) -> Response:
    """The plain HTML error page of the console and the portal (``error.html``)."""
    section = "console" if request.url.path.startswith("/console") else "portal"
    return render(
        request,
        "error.html",
        {"status": status, "detail": detail, "section": section},
        language=pick_language(request),
        status=status,
    )
