"""The sandbox gateway's hosted checkout page, served by ispbill itself (demos and tests).

``GET /sandbox/checkout/{id}`` shows the amount and a card form; ``POST`` has the pretend
processor charge the card and deliver its signed webhook to ispbill's webhook handler (in
process, through the same verification), then shows the result. When the POST returns, the
payment and any reactivation it caused are committed. Without a sandbox configured, these
pages do not exist (404).
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.payments.gateway import PaymentPurpose
from ispbill.adapters.payments.sandbox import SandboxGateway
from ispbill.bootstrap import App
from ispbill.domain.errors import NotFound
from ispbill.domain.money import Money
from ispbill.domain.payments import CheckoutStatus
from ispbill.entrypoints.pages import app_of as container
from ispbill.use_cases.payments.checkouts import SandboxPayment, sandbox_checkout, sandbox_pay

router = APIRouter(prefix="/sandbox", tags=["sandbox"], include_in_schema=False)

STYLE = """
body { font-family: 'DejaVu Sans', sans-serif; max-width: 30rem; margin: 3rem auto; color: #222 }
.badge { background: #fff3cd; border: 1px solid #e0c060; padding: .4rem .6rem; font-size: .85rem }
table { border-collapse: collapse; width: 100%; margin: 1rem 0 }
td { padding: .2rem 0; border-bottom: 1px solid #eee } td.amount { text-align: right }
input { font-size: 1.1rem; width: 100%; padding: .4rem; margin: .3rem 0 1rem }
button { font-size: 1.1rem; padding: .5rem 1.5rem }
.ok { color: #176b2c } .refused { color: #a61b1b } .hint { color: #666; font-size: .85rem }
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        '<p class="badge">Sandbox gateway: no real money moves.</p>'
        f"{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _sandbox_app(request: Request) -> App:
    app = container(request)
    if "sandbox" not in app.gateways:
        raise NotFound("page", request.url.path)
    return app


def _summary(checkout: Any, customer: str) -> str:
    """The amount, what it pays for and the quote's lines (``checkout``: the stored checkout)."""
    amount = Money(checkout.amount_minor, checkout.currency)
    what = (
        f"{checkout.months} period(s) of service"
        if checkout.purpose == PaymentPurpose.PAY_MONTHS
        else "wallet top-up"
    )
    rows = "".join(
        f'<tr><td>{escape(str(line["label"]))}</td><td class="amount">'
        f"{escape(str(line['amount']))}</td></tr>"
        for line in checkout.quote
    )
    table = f"<table>{rows}</table>" if rows else ""
    return f"<h1>Pay {escape(amount.format())}</h1><p>{escape(customer)}: {escape(what)}</p>{table}"


@router.get("/checkout/{checkout_id}", response_class=HTMLResponse)
async def show_checkout(checkout_id: str, request: Request) -> HTMLResponse:
    app = _sandbox_app(request)

    def load() -> tuple[Any, str]:
        with app.uow() as uow:
            return sandbox_checkout(uow, checkout_id=checkout_id)

    checkout, customer = await run_in_threadpool(load)
    if checkout.status == CheckoutStatus.COMPLETED.value:
        return _page("Paid", _summary(checkout, customer) + '<p class="ok">Already paid.</p>')
    amount = Money(checkout.amount_minor, checkout.currency).format()
    form = (
        '<form method="post">'
        '<label for="card_number">Card number</label>'
        '<input id="card_number" name="card_number" value="4242 4242 4242 4242" '
        'inputmode="numeric" autocomplete="cc-number" required>'
        f'<button type="submit">Pay {escape(amount)}</button></form>'
        '<p class="hint">Test cards: any number of 12 to 19 digits is accepted; '
        "one ending in 0002 is declined.</p>"
    )
    return _page("Sandbox checkout", _summary(checkout, customer) + form)


@router.post("/checkout/{checkout_id}", response_class=HTMLResponse)
async def pay_checkout(checkout_id: str, request: Request) -> HTMLResponse:
    app = _sandbox_app(request)
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    card_number = (form.get("card_number") or [""])[0]

    def pay() -> SandboxPayment:
        return sandbox_pay(
            app.uow,
            gateways=app.gateways,
            checkout_id=checkout_id,
            card_number=card_number,
            now=app.clock.now(),
        )

    result = await run_in_threadpool(pay)
    summary = _summary(result.checkout, result.customer)
    if result.paid:
        body = f'<p class="ok">{escape(result.message.capitalize())}. Thank you.</p>'
        gateway = app.gateways["sandbox"]
        back = gateway.return_url(checkout_id) if isinstance(gateway, SandboxGateway) else None
        if back:
            body += f'<p><a id="continue" href="{escape(back)}">Continue</a></p>'
        return _page("Payment received", summary + body)
    retry = f'<p><a href="{escape(checkout_id)}">Try another card</a></p>'
    body = f'<p class="refused">{escape(result.message.capitalize())}.</p>{retry}'
    return _page("Payment declined", summary + body, status=402)
