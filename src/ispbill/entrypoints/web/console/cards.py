"""Refill cards in the console (``/console/cards``): batches, the cards, the liability, issuing,
voiding and redeeming a card for a customer.

The same use cases as ``ispbill cards ...`` and the API's refill-card routes, with the API's
roles: batches, cards and the liability are operator-wide (admin and read-only users see them,
a reseller's user gets a 403), only an admin issues and voids, and every user who may write
redeems a card onto a customer it may see (anyone else's customer is a 404). No page shows a
code: only their keyed hashes are stored, and a new batch's codes are in its CSV download alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRouter

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.domain.money import Money
from ispbill.domain.refill import CardStatus
from ispbill.entrypoints.pages import app_of
from ispbill.entrypoints.web.common import Staff, form_of, parse_day, staff_page, work
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import (
    StaffPrincipal,
    check_visible,
    require_admin,
    require_global,
    require_write,
)
from ispbill.use_cases.payments.refill_cards import (
    NewBatch,
    Redeemed,
    Voided,
    generate_batch,
    liability_report,
    list_cards,
    redeem_card,
    secret_key,
    void_cards,
)
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 100
STATUSES = [s.value for s in CardStatus]
Row = tuple[Any, Any, str | None]  # a card, its batch, the name of who redeemed it


def _key(request: Request) -> bytes:
    """The codes' HMAC key; a refusal naming ``refill_card_secret`` when it is not set."""
    secret = app_of(request).settings.refill_card_secret
    return secret_key(secret.get_secret_value() if secret else None)


def _customer_id(text: str, field: str) -> int:
    """A customer id typed into a form (a name is not accepted: names need not be unique)."""
    value = text.strip()
    if not (value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID):
        raise ValidationError(field, "must be a customer id (a whole number)")
    return int(value)


async def _cards_page(
    request: Request,
    staff: StaffPrincipal,
    *,
    error: str | None = None,
    error_form: str | None = None,
    form: dict[str, str] | None = None,
    redeemed: Redeemed | None = None,
    voided: Voided | None = None,
    status: int = 200,
) -> Response:
    """The cards page; a reseller's user sees only the redeem form (the rest is operator-wide)."""

    def load(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
        if not staff.is_global:
            return {"batches": [], "liability": []}
        return {
            "batches": console_catalog.card_batches(uow.session),
            "liability": liability_report(uow.session, now=now),
        }

    context = await work(request, load)
    context.update(
        error=error, error_form=error_form, form=form or {}, redeemed=redeemed, voided=voided
    )
    return staff_page(request, staff, "console/cards.html", context, status=status)


# -- batches --------------------------------------------------------------------------------------


@router.get("/cards")
async def cards(request: Request, staff: Staff, format: str = "") -> Response:
    if format != "csv":
        return await _cards_page(request, staff)
    require_global(staff)
    rows = await work(request, lambda uow, _now: console_catalog.card_batches(uow.session))
    return csv_response(
        "card-batches.csv",
        ["id", "prefix", "cards", "value_minor", "currency", "expires_on", "created_at", "actor"],
        [
            (
                b.id,
                b.prefix,
                b.card_count,
                b.value_minor,
                b.currency,
                b.expires_on,
                b.created_at.isoformat(),
                b.actor,
            )
            for b in rows
        ],
    )


@router.post("/cards")
async def create_cards(request: Request, staff: Staff) -> Response:
    """Issue a batch; its codes exist only in the CSV this answer downloads (never stored)."""
    require_admin(staff)
    form = await form_of(request)
    delivered: list[Any] = []
    try:
        count = int(form.get("count") or 0)
    except ValueError:
        count = 0
    spec = NewBatch(
        count=count,
        value=form.get("value", ""),
        currency=form.get("currency", ""),
        expires_on=None,
        prefix=form.get("prefix") or "RC",
    )

    def issue(uow: UnitOfWork, now: datetime) -> Any:
        final = replace(spec, expires_on=parse_day(form.get("expires_on", ""), "expires_on"))
        return generate_batch(
            uow,
            spec=final,
            key=_key(request),
            now=now,
            actor=staff.actor,
            deliver=delivered.append,
        )

    try:
        batch = await work(request, issue)
    except IspbillError as exc:
        return await _cards_page(
            request, staff, error=str(exc), error_form="generate", form=form, status=422
        )
    amount = f"{batch.value.to_decimal():f}"
    expires = batch.expires_on.isoformat() if batch.expires_on else ""
    return csv_response(
        f"{batch.name}.csv",
        ["serial", "code", "value", "currency", "expires_on", "batch"],
        [
            (c.serial, c.code, amount, batch.value.currency, expires, batch.name)
            for c in batch.cards
        ],
    )


# -- voiding and redeeming ------------------------------------------------------------------------


@router.post("/cards/void")
async def void(request: Request, staff: Staff) -> Response:
    """Void named cards (all or none) or every active card of a batch (admin only, as the API)."""
    require_admin(staff)
    form = await form_of(request)
    serials = form.get("serials", "").replace(",", " ").split()
    batch = form.get("batch", "").strip() or None

    def run(uow: UnitOfWork, now: datetime) -> Voided:
        return void_cards(
            uow,
            now=now,
            actor=staff.actor,
            serials=serials,
            batch=batch,
            reason=form.get("reason", "").strip(),
        )

    try:
        done = await work(request, run)
    except IspbillError as exc:
        return await _cards_page(
            request, staff, error=str(exc), error_form="void", form=form, status=422
        )
    return await _cards_page(request, staff, voided=done)


@router.post("/cards/redeem")
async def redeem(request: Request, staff: Staff) -> Response:
    """Credit a card's value to a customer's wallet, for a customer calling in with the code.

    Failed attempts count towards the use case's throttle, per customer and per source address,
    as the API's. The code is never sent back, not even into the form after a refusal.
    """
    require_write(staff)
    form = await form_of(request)
    source = f"ip:{request.client.host}" if request.client else None
    shown = {"customer": form.get("customer", "")}
    try:
        customer_id = _customer_id(form.get("customer", ""), "customer")
    except ValidationError as exc:
        return await _cards_page(
            request, staff, error=str(exc), error_form="redeem", form=shown, status=422
        )
    if not staff.is_global:  # another reseller's customer, or none: the same 404
        await work(
            request,
            lambda uow, _now: check_visible(
                staff, console_catalog.customer(uow.session, customer_id)
            ),
        )

    def run(uow: UnitOfWork, now: datetime) -> Redeemed:
        return redeem_card(
            uow,
            code=form.get("code", ""),
            customer_id=customer_id,
            key=_key(request),
            now=now,
            actor=staff.actor,
            source=source,
        )

    try:
        done = await work(request, run)
    except IspbillError as exc:
        return await _cards_page(
            request, staff, error=str(exc), error_form="redeem", form=shown, status=422
        )
    return await _cards_page(request, staff, redeemed=done)


# -- the cards and the liability ------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    batch: str = ""
    status: str = ""
    serial: str = ""
    customer: str = ""

    def query(self) -> str:
        """The filters as a query string for the next page and the CSV link."""
        return urlencode({k: v for k, v in vars(self).items() if v})


def _cards(uow: UnitOfWork, filters: Filters, after: int, limit: int | None) -> list[Row]:
    customer = filters.customer
    return list_cards(
        uow.session,
        batch=filters.batch or None,
        status=filters.status or None,
        serial=filters.serial or None,
        customer_id=_customer_id(customer, "customer") if customer else None,
        after=after,
        limit=limit,
    )


def _past_expiry(card: Any, now: datetime) -> bool:
    """Still ``active`` in storage, yet refused at redemption: waits for ``cards expire``."""
    return card.status == CardStatus.ACTIVE and bool(card.expires_at and card.expires_at <= now)


CARD_HEADER = [
    "id",
    "serial",
    "batch",
    "value",
    "currency",
    "status",
    "past_expiry",
    "expires_on",
    "created_at",
    "redeemed_at",
    "customer_id",
    "customer_name",
    "voided_at",
    "expired_at",
]


def _iso(value: date | datetime | None) -> str:
    return value.isoformat() if value else ""


def _card_line(row: Row, now: datetime) -> tuple[object, ...]:
    card, batch, name = row
    return (
        card.id,
        card.serial,
        batch.name,
        f"{Money(card.value_minor, card.currency).to_decimal():f}",
        card.currency,
        card.status,
        _past_expiry(card, now),
        _iso(card.expires_on),
        _iso(card.created_at),
        _iso(card.redeemed_at),
        card.customer_id or "",
        name or "",
        _iso(card.voided_at),
        _iso(card.expired_at),
    )


@router.get("/cards/list")
async def card_list(
    request: Request,
    staff: Staff,
    batch: str = "",
    status: str = "",
    serial: str = "",
    customer: str = "",
    after: int = 0,
    format: str = "",
) -> Response:
    """Every card (never its code), filtered as the API's list, a page at a time by id."""
    require_global(staff)
    filters = Filters(batch[:40].strip(), status[:16].strip(), serial[:40].strip(), customer[:20])
    limit = None if format == "csv" else PAGE_SIZE + 1

    def load(uow: UnitOfWork, now: datetime) -> tuple[list[Row], datetime]:
        return _cards(uow, filters, max(after, 0), limit), now

    try:
        rows, now = await work(request, load)
        error, code = None, 200
    except IspbillError as exc:
        rows, now, error, code = [], app_of(request).clock.now(), str(exc), 422
    if format == "csv" and error is None:
        return csv_response("refill-cards.csv", CARD_HEADER, [_card_line(r, now) for r in rows])
    context = {
        "rows": rows[:PAGE_SIZE],
        "next_after": rows[PAGE_SIZE - 1][0].id if len(rows) > PAGE_SIZE else None,
        "past_expiry": {r[0].id for r in rows if _past_expiry(r[0], now)},
        "filters": filters,
        "statuses": STATUSES,
        "error": error,
    }
    return staff_page(request, staff, "console/cards_list.html", context, status=code)


@router.get("/cards/liability.csv")
async def liability_csv(request: Request, staff: Staff) -> Response:
    """Per currency: the liability account against the value of the active cards."""
    require_global(staff)
    lines = await work(request, lambda uow, now: liability_report(uow.session, now=now))

    def amount(value: Money) -> str:
        return f"{value.to_decimal():f}"

    return csv_response(
        "refill-card-liability.csv",
        [
            "currency",
            "outstanding",
            "unexpired",
            "awaiting_expiry",
            "active_cards",
            "cards_awaiting_expiry",
            "ledger",
        ],
        [
            (
                line.currency,
                amount(line.outstanding),
                amount(line.unexpired),
                amount(line.awaiting_expiry),
                line.active_cards,
                line.cards_awaiting_expiry,
                amount(line.ledger),
            )
            for line in lines
        ],
    )
