"""The customer portal (``/portal``): a subscriber's balance and services in plain words, its
invoices and payments, paying months through the gateway, refill cards, reactivating a paused
service, the subscriber's own promise to pay for a service suspended or throttled by
collections (the garden's rules: once per billing period, for the policy's days; a throttled
subscriber is online and never sees the garden), automatic top-up, and the page's language.

A customer signs in with a password or a one-time link e-mailed to it (SMTP, 15 minutes, used
once). Everything is scoped to the signed-in customer: another customer's invoice or service is
"not found".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.mail import send_mail
from ispbill.adapters.pdf.render import render_pdf
from ispbill.domain.errors import IspbillError, NotFound, ValidationError
from ispbill.domain.prepayment import MAX_PERIODS
from ispbill.entrypoints.pages import (
    LANG_COOKIE,
    LANGUAGES,
    app_of,
    pick_language,
    redirect,
    render,
    set_cookie,
    translations,
)
from ispbill.entrypoints.web.common import form_of, work
from ispbill.entrypoints.web.session import CUSTOMER_COOKIE, policy, require_customer
from ispbill.use_cases.admin.web_auth import (
    SignInRefused,
    consume_login_link,
    end_session,
    request_login_link,
    sign_in_customer,
    start_session,
)
from ispbill.use_cases.billing.invoice_documents import get_invoice, list_invoices, printable
from ispbill.use_cases.collections.suspensions import promise_to_pay, subscriber_offer
from ispbill.use_cases.payments.checkouts import pay_months_quote, start_checkout
from ispbill.use_cases.payments.refill_cards import redeem_card, secret_key
from ispbill.use_cases.payments.top_ups import TopUpRuleSpec, disable_rule, set_rule
from ispbill.use_cases.queries import console_catalog, customer_detail
from ispbill.use_cases.service_lifecycle.explain import explain_service
from ispbill.use_cases.service_lifecycle.self_service import (
    reactivate_by_paying,
    reactivation_quote,
)

router = APIRouter(prefix="/portal", include_in_schema=False)
CustomerId = Annotated[int, Depends(require_customer)]
PAYMENTS_SHOWN = 50


def actor_of(customer_id: int) -> str:
    return f"customer:{customer_id}"


def _gateway(request: Request) -> str:
    """The gateway customers pay through: Stripe when configured, else the sandbox."""
    gateways = app_of(request).gateways
    return "stripe" if "stripe" in gateways else "sandbox"


def _source(request: Request) -> str | None:
    return request.client.host if request.client else None


def _page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    customer: Any = None,
    status: int = 200,
) -> Response:
    language = pick_language(request, customer.locale if customer else None)
    return render(
        request,
        template,
        {"section": "portal", "customer": customer, **context},
        language=language,
        timezone=customer.billing_timezone if customer else "UTC",
        status=status,
    )


# -- signing in -----------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _page(request, "portal/login.html", {"error": None, "notice": None, "email": ""})


async def _signed_in(request: Request, customer_id: int) -> Response:
    rules = policy(request)
    secret = await work(
        request,
        lambda uow, now: start_session(uow, customer_id=customer_id, now=now, policy=rules),
    )
    response = redirect(request, "/portal")
    max_age = app_of(request).settings.session_max_hours * 3600
    set_cookie(response, request, CUSTOMER_COOKIE, secret, max_age=max_age)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    email = form.get("email", "")
    try:
        customer_id = await work(
            request,
            lambda uow, now: sign_in_customer(
                uow,
                email=email,
                password=form.get("password", ""),
                source=_source(request),
                now=now,
            ),
        )
    except SignInRefused as exc:
        _ = translations(pick_language(request)).gettext
        context = {"error": _(str(exc)), "notice": None, "email": email}
        return _page(request, "portal/login.html", context, status=401)
    return await _signed_in(request, customer_id)


@router.post("/link")
async def send_link(request: Request) -> Response:
    """E-mail a one-time sign-in link; the answer is the same whether or not the address is
    known, so the form does not reveal who is a customer."""
    form = await form_of(request)
    app = app_of(request)
    language = pick_language(request)
    _ = translations(language).gettext
    try:
        link = await work(
            request,
            lambda uow, now: request_login_link(
                uow, email=form.get("email", ""), source=_source(request), now=now
            ),
        )
    except SignInRefused as exc:
        context = {"error": _(str(exc)), "notice": None, "email": form.get("email", "")}
        return _page(request, "portal/login.html", context, status=429)
    if link is not None:
        url = f"{app.settings.public_base_url.rstrip('/')}/portal/link/{link.secret}"
        body = (
            _("Sign in to your account with this link (valid 15 minutes, once):") + f"\n\n{url}\n"
        )
        await run_in_threadpool(
            send_mail, app.settings, to=link.email, subject=_("Your sign-in link"), body=body
        )
    notice = _("If the address belongs to an account, a sign-in link is on its way.")
    return _page(request, "portal/login.html", {"error": None, "notice": notice, "email": ""})


@router.get("/link/{secret}")
async def link_form(request: Request, secret: str) -> Response:
    """A page with a button: mail scanners that fetch links do not spend them."""
    return _page(request, "portal/link.html", {"secret": secret})


@router.post("/link/{secret}")
async def use_link(request: Request, secret: str) -> Response:
    await form_of(request)
    customer_id = await work(
        request, lambda uow, now: consume_login_link(uow, secret=secret, now=now)
    )
    if customer_id is None:
        _ = translations(pick_language(request)).gettext
        context = {
            "error": _("This sign-in link has expired or was already used."),
            "notice": None,
            "email": "",
        }
        return _page(request, "portal/login.html", context, status=401)
    return await _signed_in(request, customer_id)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await form_of(request)
    secret = request.cookies.get(CUSTOMER_COOKIE, "")
    await work(request, lambda uow, now: end_session(uow, secret=secret, now=now))
    response = redirect(request, "/portal/login")
    response.delete_cookie(CUSTOMER_COOKIE, path="/")
    return response


# -- the account ----------------------------------------------------------------------------------


def _home(uow: UnitOfWork, customer_id: int, now: datetime) -> dict[str, Any]:
    session = uow.session
    customer = console_catalog.customer(session, customer_id)
    assert customer is not None
    operator = settings_store.load(uow)
    services = customer_detail.services(session, customer_id)
    payments = customer_detail.payments(session, customer_id, limit=PAYMENTS_SHOWN)
    rule = customer_detail.top_up_rule(session, customer_id)
    offer = subscriber_offer(uow, customer_id=customer_id, now=now)
    return {
        "customer": customer,
        "balance": customer_detail.balance(session, customer),
        "services": services,
        "invoices": list_invoices(uow, customer_id=customer_id, limit=50),
        "payments": payments,
        "rule": rule,
        "self_service": operator.self_service_reactivation,
        "open_ended": operator.open_ended_reactivation,
        "max_months": MAX_PERIODS,
        "offer": offer,
        "why": {
            service_id: explain_service(uow, service_id=service_id, now=now).text
            for service_id in sorted(offer.restorable)
        },
        "error": None,
        "error_for": None,
        "notice": None,
    }


async def _render_home(
    request: Request,
    customer_id: int,
    *,
    error: str | None = None,
    error_for: int | None = None,
    status: int = 200,
) -> Response:
    """The home page; ``error_for`` shows the refusal in that service's box instead of the
    top."""
    context = await work(request, lambda uow, now: _home(uow, customer_id, now))
    context["error"] = error
    context["error_for"] = error_for
    if request.query_params.get("paid"):
        _ = translations(pick_language(request, context["customer"].locale)).gettext
        context["notice"] = _("Thank you. Your payment is shown below once the bank confirms it.")
    return _page(request, "portal/home.html", context, customer=context["customer"], status=status)


@router.get("")
async def home(request: Request, customer_id: CustomerId) -> Response:
    return await _render_home(request, customer_id)


@router.get("/invoices/{number}.pdf")
async def invoice_pdf(request: Request, customer_id: CustomerId, number: str) -> Response:
    def job(uow: UnitOfWork, _now: datetime) -> bytes:
        if get_invoice(uow, number).customer_id != customer_id:
            raise HTTPException(404, "no such invoice")
        document = printable(uow, number)
        return render_pdf(document.view, document.template)

    try:
        pdf = await work(request, job)
    except IspbillError:
        raise HTTPException(404, "no such invoice") from None
    return Response(pdf, media_type="application/pdf")


async def _act(
    request: Request,
    customer_id: int,
    action: Callable[[UnitOfWork, datetime, dict[str, str]], str | None],
    *,
    service_id: int | None = None,
) -> Response:
    """One write for the signed-in customer; a refusal is shown on the home page (in the
    service's box when it is about one). The action may answer a URL to go to (a checkout)."""
    form = await form_of(request)
    try:
        target = await work(request, lambda uow, now: action(uow, now, form))
    except IspbillError as exc:
        return await _render_home(
            request, customer_id, error=str(exc), error_for=service_id, status=422
        )
    return redirect(request, target or "/portal")


def _months(form: dict[str, str]) -> int:
    text = form.get("months", "").strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_PERIODS:
        raise ValidationError("months", f"must be a whole number from 1 to {MAX_PERIODS}")
    return int(text)


@router.post("/pay")
async def pay(request: Request, customer_id: CustomerId) -> Response:
    app = app_of(request)
    back = f"{app.settings.public_base_url.rstrip('/')}/portal?paid=1"

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> str:
        started = start_checkout(
            uow,
            gateways=app.gateways,
            gateway=_gateway(request),
            customer_id=customer_id,
            months=_months(form),
            now=now,
            actor=actor_of(customer_id),
            return_url=back,
        )
        return started.url

    return await _act(request, customer_id, act)


@router.get("/quote")
async def quote(request: Request, customer_id: CustomerId, months: int = 1) -> Response:
    """The amount for N months (htmx fragment next to the pay form; a plain page without JS)."""
    months = min(max(months, 1), MAX_PERIODS)

    def job(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
        return {
            "quote": pay_months_quote(uow, customer_id=customer_id, months=months, now=now),
            "customer": console_catalog.customer(uow.session, customer_id),
        }

    context = await work(request, job)
    return _page(request, "portal/quote.html", context, customer=context["customer"])


@router.post("/redeem")
async def redeem(request: Request, customer_id: CustomerId) -> Response:
    app = app_of(request)
    secret = app.settings.refill_card_secret

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> None:
        redeem_card(
            uow,
            code=form.get("code", ""),
            customer_id=customer_id,
            key=secret_key(secret.get_secret_value() if secret else None),
            now=now,
            actor=actor_of(customer_id),
            source=_source(request),
        )

    return await _act(request, customer_id, act)


@router.get("/services/{service_id}/quote")
async def reactivation_quote_page(
    request: Request, customer_id: CustomerId, service_id: int, months: int = 1
) -> Response:
    """What reactivating a paused service for N months costs, before paying (htmx fragment
    next to its form; a plain page without JS): N whole periods from today at the period
    price, then the wallet, as the checkout will ask."""
    months = min(max(months, 1), MAX_PERIODS)

    def job(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
        return {
            "quote": reactivation_quote(
                uow,
                customer_id=customer_id,
                service_id=service_id,
                months=months,
                open_ended=False,
                now=now,
            ),
            "customer": console_catalog.customer(uow.session, customer_id),
            "quote_id": f"reactivation-quote-{service_id}",
        }

    try:
        context = await work(request, job)
    except NotFound:
        raise HTTPException(404, "no such service") from None
    except IspbillError as exc:
        raise HTTPException(422, str(exc)) from None
    return _page(request, "portal/quote.html", context, customer=context["customer"])


@router.post("/services/{service_id}/reactivate")
async def reactivate(request: Request, customer_id: CustomerId, service_id: int) -> Response:
    app = app_of(request)
    back = f"{app.settings.public_base_url.rstrip('/')}/portal?paid=1"

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> str | None:
        done = reactivate_by_paying(
            uow,
            gateways=app.gateways,
            gateway=_gateway(request),
            customer_id=customer_id,
            service_id=service_id,
            months=_months(form),
            open_ended=form.get("open_ended") == "1",
            return_url=back,
            now=now,
            actor=actor_of(customer_id),
        )
        return done.checkout.url if done.checkout else None

    return await _act(request, customer_id, act)


def _own_service(uow: UnitOfWork, customer_id: int, service_id: int) -> None:
    """Another customer's service is "not found", as an absent one."""
    known = 0 < service_id <= MAX_ID
    service = console_catalog.service(uow.session, service_id) if known else None
    if service is None or service.customer_id != customer_id:
        raise HTTPException(404, "no such service")


@router.post("/services/{service_id}/promise")
async def promise(request: Request, customer_id: CustomerId, service_id: int) -> Response:
    """The subscriber's own promise to pay, as from the walled garden: once per billing period,
    for the policy's days, recorded with the customer as actor."""

    def act(uow: UnitOfWork, now: datetime, _form: dict[str, str]) -> str:
        _own_service(uow, customer_id, service_id)
        uow.session.rollback()  # the use case opens its own write transaction
        promise_to_pay(
            uow,
            service_id=service_id,
            days=None,
            now=now,
            actor=actor_of(customer_id),
            by_subscriber=True,
        )
        return f"/portal#service-{service_id}"

    return await _act(request, customer_id, act, service_id=service_id)


@router.post("/top-up")
async def top_up(request: Request, customer_id: CustomerId) -> Response:
    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> None:
        existing = customer_detail.top_up_rule(uow.session, customer_id)
        if form.get("enabled") != "1":
            if existing is not None:
                uow.session.rollback()
                disable_rule(uow, customer_id=customer_id, now=now, actor=actor_of(customer_id))
            return
        method = form.get("method", "").strip() or (existing.method_reference if existing else "")
        uow.session.rollback()  # the use case opens its own write transaction
        spec = TopUpRuleSpec(
            customer_id=customer_id,
            threshold=form.get("threshold", ""),
            amount=form.get("amount", ""),
            method=method,
            gateway=_gateway(request),
        )
        set_rule(uow, spec=spec, now=now, actor=actor_of(customer_id))

    return await _act(request, customer_id, act)


@router.post("/language")
async def language(request: Request) -> Response:
    form = await form_of(request)
    chosen = form.get("lang", "en")
    target = form.get("next", "/portal")
    if not target.startswith("/") or target.startswith("//"):
        target = "/portal"
    response = redirect(request, target)
    if chosen in LANGUAGES:
        set_cookie(response, request, LANG_COOKIE, chosen, max_age=365 * 86400)
    return response
