"""The walled garden (seed 002 info pages, seed 000 self-service reactivation), served as plain
server-rendered HTML outside the API:

* ``GET /garden`` shows the page of the service's suspension reason (the operator's Markdown,
  sanitised), the amount due and a "pay N months" form;
* ``POST /garden/pay`` opens a checkout through the configured gateway (the sandbox first, so
  demos never touch a real one) and redirects to it; the gateway's webhook records the payment,
  whose transaction lifts the suspension;
* ``POST /garden/promise`` is the subscriber's own promise to pay (once per billing period).

The subscriber is matched to a service by ``match_subscriber``, the one function to extend
when matching by address (RADIUS accounting) arrives.
"""

from __future__ import annotations

import functools
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ispbill.bootstrap import App
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.api.deps import container
from ispbill.services.garden import GardenView, garden_view, verify
from ispbill.services.gateways import start_checkout
from ispbill.services.suspensions import promise_to_pay

router = APIRouter(prefix="/garden", tags=["garden"], include_in_schema=False)
GATEWAY_PREFERENCE = ("sandbox", "stripe")


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ispbill", "templates/garden"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _secret(app: App) -> str | None:
    secret = app.settings.garden_secret
    return secret.get_secret_value() if secret else None


def match_subscriber(request: Request) -> int | None:
    """The service a garden request is about: a signed, unexpired link (``s``, ``e``,
    ``sig``), or ``None``."""
    app = container(request)
    params = request.query_params
    return verify(
        _secret(app),
        service=params.get("s", ""),
        expires=params.get("e", ""),
        signature=params.get("sig", ""),
        now=app.clock.now(),
    )


def _gateway(app: App) -> str | None:
    return next((name for name in GATEWAY_PREFERENCE if name in app.gateways), None)


def _render(
    app: App, view: GardenView | None, *, query: str = "", message: str = "", status: int = 200
) -> HTMLResponse:
    if view is None:
        title = "Link not valid"
        body_html = ""
    elif view.page is not None:
        title, body_html = view.page.title, view.page.body_html
    else:
        title, body_html = f"Your service is {view.state}", ""
    html = (
        _environment()
        .get_template("page.html")
        .render(
            title=title,
            view=view,
            body_html=body_html,
            amount_due=view.amount_due.format() if view else "",
            can_pay=view is not None and _gateway(app) is not None,
            query=query,
            message=message,
        )
    )
    return HTMLResponse(html, status_code=status)


def _query(request: Request) -> str:
    params = request.query_params
    return urlencode({k: params.get(k, "") for k in ("s", "e", "sig")})


def _invalid(app: App) -> HTMLResponse:
    return _render(app, None, status=404)


@router.get("", response_class=HTMLResponse)
async def show_page(request: Request) -> HTMLResponse:
    app = container(request)
    service_id = match_subscriber(request)
    if service_id is None:
        return _invalid(app)

    def load() -> GardenView:
        with app.uow() as uow:
            return garden_view(uow, service_id=service_id, now=app.clock.now())

    view = await run_in_threadpool(load)
    return _render(app, view, query=_query(request), message=request.query_params.get("m", ""))


@router.post("/pay", response_model=None)
async def pay(request: Request) -> Response:
    app = container(request)
    service_id = match_subscriber(request)
    if service_id is None:
        return _invalid(app)
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    months_text = (form.get("months") or ["1"])[0].strip()
    gateway = _gateway(app)
    back = f"{app.settings.public_base_url.rstrip('/')}/garden?{_query(request)}"

    def open_checkout() -> str:
        if gateway is None or not months_text.isdigit():
            raise IspbillError("no payment gateway is configured or months is not a number")
        with app.uow() as uow:
            view = garden_view(uow, service_id=service_id, now=app.clock.now())
        with app.uow() as uow:
            started = start_checkout(
                uow,
                gateways=app.gateways,
                gateway=gateway,
                customer=str(view.customer_id),
                months=int(months_text),
                now=app.clock.now(),
                actor="subscriber",
                return_url=back,
            )
        return started.url

    try:
        url = await run_in_threadpool(open_checkout)
    except IspbillError as exc:
        return await _again(app, request, service_id, str(exc))
    return RedirectResponse(url, status_code=303)


async def _again(app: App, request: Request, service_id: int, message: str) -> HTMLResponse:
    def load() -> GardenView:
        with app.uow() as uow:
            return garden_view(uow, service_id=service_id, now=app.clock.now())

    view = await run_in_threadpool(load)
    return _render(app, view, query=_query(request), message=message, status=422)


@router.post("/promise", response_model=None)
async def promise(request: Request) -> Response:
    app = container(request)
    service_id = match_subscriber(request)
    if service_id is None:
        return _invalid(app)

    def make() -> None:
        with app.uow() as uow:
            promise_to_pay(
                uow,
                service_ref=service_id,
                days=None,
                now=app.clock.now(),
                actor="subscriber",
                by_subscriber=True,
            )

    try:
        await run_in_threadpool(make)
    except IspbillError as exc:
        return await _again(app, request, service_id, str(exc))
    done = urlencode({"m": "Your service is restored for a few days. Thank you."})
    return RedirectResponse(f"/garden?{_query(request)}&{done}", status_code=303)
