"""The walled garden (seed 002 info pages, seed 000 self-service reactivation), served as plain
server-rendered HTML outside the API:

* ``GET /garden`` shows the page of the service's suspension reason (the operator's Markdown,
  sanitised), the amount due and a "pay N months" form, in the subscriber's language, on a
  phone-sized page; the status box refreshes itself (htmx every few seconds, a meta refresh
  without JavaScript) and says when access is restored;
* ``GET /garden/status`` is that status box alone;
* ``POST /garden/pay`` opens a checkout through the configured gateway (the sandbox first, so
  demos never touch a real one) and redirects to it; the gateway's webhook records the payment,
  whose transaction lifts the suspension. A paused subscriber (past "active to", seed 000)
  reactivates here by paying months, when the operator allows self-service reactivation
  (``use_cases/service_lifecycle/self_service.py``): N whole months from the reactivation day for N times the
  period price, "active to" their last day, or cleared when the operator allows open-ended
  reactivation. Each choice of months shows its amount to pay before the subscriber pays;
* ``POST /garden/promise`` is the subscriber's own promise to pay (once per billing period).

The subscriber is matched to a service by ``match_subscriber``: a signed link, else the
request's source address through the address map RADIUS accounting keeps
(``services.radius.service_for_address``: the open session holding that address, or a static
address). Address matching needs ispbill to see the subscriber's own address (no NAT or proxy
in between).
Forms carry the web's CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db import settings_store
from ispbill.bootstrap import App
from ispbill.domain.errors import IspbillError
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.entrypoints.pages import app_of as container
from ispbill.entrypoints.pages import pick_language, render
from ispbill.entrypoints.web.common import form_of
from ispbill.use_cases.collections.suspensions import promise_to_pay
from ispbill.use_cases.collections.walled_garden import GardenView, garden_view, verify
from ispbill.use_cases.network.radius_requests import service_for_address
from ispbill.use_cases.payments.checkouts import pay_months_quote, start_checkout
from ispbill.use_cases.queries.customer_detail import customer_of_service
from ispbill.use_cases.service_lifecycle.self_service import (
    reactivate_by_paying,
    reactivation_quote,
)

router = APIRouter(prefix="/garden", tags=["garden"], include_in_schema=False)
GATEWAY_PREFERENCE = ("sandbox", "stripe")
MONTH_CHOICES = (1, 2, 3, 6, 12)
REFRESH_SECONDS = 5


def _secret(app: App) -> str | None:
    secret = app.settings.garden_secret
    return secret.get_secret_value() if secret else None


def match_subscriber(request: Request) -> int | None:
    """The service a garden request is about: a signed, unexpired link (``s``, ``e``,
    ``sig``), else the service holding the request's source address, or ``None``."""
    app = container(request)
    params = request.query_params
    linked = verify(
        _secret(app),
        service=params.get("s", ""),
        expires=params.get("e", ""),
        signature=params.get("sig", ""),
        now=app.clock.now(),
    )
    if linked is not None or request.client is None or _secret(app) is None:
        return linked
    with app.uow() as uow:
        return service_for_address(uow, request.client.host, app.clock.now())


def _gateway(app: App) -> str | None:
    return next((name for name in GATEWAY_PREFERENCE if name in app.gateways), None)


@dataclass(frozen=True)
class Garden:
    view: GardenView
    customer_id: int
    locale: str
    timezone: str
    self_service: bool
    open_ended: bool
    # what each choice of months costs now (what the checkout will ask), when it can be paid
    totals: dict[int, Money]


def _load(app: App, service_id: int) -> Garden:
    with app.uow() as uow:
        view = garden_view(uow, service_id=service_id, now=app.clock.now())
        customer = customer_of_service(uow.session, service_id)
        assert customer is not None
        operator = settings_store.load(uow)
        paused = view.state == ServiceState.PAUSED
        totals: dict[int, Money] = {}
        if view.state != ServiceState.ACTIVE and (operator.self_service_reactivation or not paused):
            now = app.clock.now()
            for months in MONTH_CHOICES:
                quote = (
                    reactivation_quote(
                        uow,
                        customer_id=customer.id,
                        service_id=service_id,
                        months=months,
                        open_ended=False,
                        now=now,
                    )
                    if paused
                    else pay_months_quote(uow, customer_id=customer.id, months=months, now=now)
                )
                totals[months] = quote.total
        return Garden(
            view,
            customer.id,
            customer.locale,
            customer.billing_timezone,
            operator.self_service_reactivation,
            operator.open_ended_reactivation,
            totals,
        )


def _render(
    request: Request,
    garden: Garden | None,
    *,
    template: str = "garden/page.html",
    message: str = "",
    status: int = 200,
) -> Response:
    app = container(request)
    view = garden.view if garden else None
    paused = view is not None and view.state == ServiceState.PAUSED
    can_pay = (
        view is not None
        and _gateway(app) is not None
        and (not paused or (garden is not None and garden.self_service))
    )
    return render(
        request,
        template,
        {
            "view": view,
            "garden": garden,
            "paused": paused,
            "can_pay": can_pay,
            "months": MONTH_CHOICES,
            "query": _query(request),
            "message": message,
            "refresh": REFRESH_SECONDS,
            "section": "portal",
        },
        language=pick_language(request, garden.locale if garden else None),
        timezone=garden.timezone if garden else "UTC",
        status=status,
    )


def _query(request: Request) -> str:
    params = request.query_params
    return urlencode({k: params.get(k, "") for k in ("s", "e", "sig")})


@router.get("")
async def show_page(request: Request) -> Response:
    app = container(request)
    service_id = match_subscriber(request)
    if service_id is None:
        return _render(request, None, status=404)
    garden = await run_in_threadpool(_load, app, service_id)
    # only a known word is shown from the address, never text someone put in a link
    known = "promised" if request.query_params.get("m") == "promised" else ""
    return _render(request, garden, message=known)


@router.get("/status")
async def show_status(request: Request) -> Response:
    """The self-refreshing status box: polled until the service is active again."""
    app = container(request)
    service_id = match_subscriber(request)
    if service_id is None:
        return _render(request, None, status=404)
    garden = await run_in_threadpool(_load, app, service_id)
    return _render(request, garden, template="garden/status.html")


@router.post("/pay", response_model=None)
async def pay(request: Request) -> Response:
    app = container(request)
    service_id = match_subscriber(request)
    if service_id is None:
        return _render(request, None, status=404)
    form = await form_of(request)
    months_text = form.get("months", "1").strip()
    gateway = _gateway(app)
    back = f"{app.settings.public_base_url.rstrip('/')}/garden?{_query(request)}"

    def open_checkout() -> str:
        if gateway is None or not months_text.isdigit():
            raise IspbillError("no payment gateway is configured or months is not a number")
        garden = _load(app, service_id)
        if garden.view.state == ServiceState.PAUSED:
            with app.uow() as uow:
                done = reactivate_by_paying(
                    uow,
                    gateways=app.gateways,
                    gateway=gateway,
                    customer_id=garden.customer_id,
                    service_id=service_id,
                    months=int(months_text),
                    open_ended=form.get("open_ended") == "1",
                    return_url=back,
                    now=app.clock.now(),
                    actor="subscriber",
                )
            return done.checkout.url if done.checkout else back
        with app.uow() as uow:
            started = start_checkout(
                uow,
                gateways=app.gateways,
                gateway=gateway,
                customer_id=garden.customer_id,
                months=int(months_text),
                now=app.clock.now(),
                actor="subscriber",
                return_url=back,
            )
        return started.url

    try:
        url = await run_in_threadpool(open_checkout)
    except IspbillError as exc:
        return await _again(request, service_id, str(exc))
    return RedirectResponse(url, status_code=303)


async def _again(request: Request, service_id: int, message: str) -> Response:
    garden = await run_in_threadpool(_load, container(request), service_id)
    return _render(request, garden, message=message, status=422)


@router.post("/promise", response_model=None)
async def promise(request: Request) -> Response:
    app = container(request)
    service_id = match_subscriber(request)
    if service_id is None:
        return _render(request, None, status=404)
    await form_of(request)

    def make() -> None:
        with app.uow() as uow:
            promise_to_pay(
                uow,
                service_id=service_id,
                days=None,
                now=app.clock.now(),
                actor="subscriber",
                by_subscriber=True,
            )

    try:
        await run_in_threadpool(make)
    except IspbillError as exc:
        return await _again(request, service_id, str(exc))
    return RedirectResponse(f"/garden?{_query(request)}&m=promised", status_code=303)
