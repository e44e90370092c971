"""Customers, their wallets and the engine's dry run for one of them.

``GET /api/v1/customers`` pages by id with an opaque cursor; a reseller token sees only its own
customers and gets a 404 for anyone else's.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.adapters.db.models import (
    Customer,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    Reseller,
)
from ispbill.domain.ledger import AccountRef
from ispbill.domain.money import Money
from ispbill.entrypoints.api.auth import Caller, Principal
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call, documented
from ispbill.entrypoints.api.schemas import (
    Amount,
    ChargePreview,
    CustomerIn,
    CustomerOut,
    CustomerPage,
    PostingOut,
    PreviewOut,
    TransitionPreview,
    WalletOut,
)
from ispbill.services import ledger
from ispbill.services.customers import NewCustomer, add_customer
from ispbill.services.engine import preview
from ispbill.services.lookup import MAX_ID

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
RECENT_POSTINGS = 20


def customer_out(customer: Customer, balance: Money) -> CustomerOut:
    return CustomerOut(
        id=customer.id,
        name=customer.name,
        status=customer.status,
        reseller_id=customer.reseller_id,
        class_id=customer.class_id,
        currency=customer.currency,
        balance_control=customer.balance_control,
        billing_timezone=customer.billing_timezone,
        created_at=customer.created_at,
        balance=Amount.of(balance),
    )


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"c:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "c" or not number.isascii() or not number.isdigit() or int(number) > MAX_ID:
        raise ApiProblem(422, "cursor: not a cursor this API gave", field="cursor", rule="invalid")
    return int(number)


def visible_customer(session: Session, caller: Principal, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or not caller.may_see(customer):
        raise ApiProblem(
            404, f"customer: no customer {customer_id}", field="customer", rule="not found"
        )
    return customer


@router.get("", response_model=CustomerPage, responses=documented(401))
async def list_customers(
    request: Request,
    caller: Caller,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> CustomerPage:
    """Customers by id, a page at a time; ``search`` matches part of the name."""
    app = container(request)
    after = decode_cursor(cursor) if cursor else 0

    def work() -> CustomerPage:
        with app.uow() as uow:
            query = select(Customer).where(Customer.id > after).order_by(Customer.id)
            if caller.role == "reseller":
                query = query.where(Customer.reseller_id == caller.reseller_id)
            if search:
                query = query.where(Customer.name.icontains(search, autoescape=True))
            rows = list(uow.session.scalars(query.limit(limit + 1)))
            more = len(rows) > limit
            rows = rows[:limit]
            balances = ledger.wallet_balances(uow.session, [(c.id, c.currency) for c in rows])
            return CustomerPage(
                items=[customer_out(c, balances[c.id]) for c in rows],
                next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
            )

    return await call(work)


@router.post(
    "", response_model=CustomerOut, status_code=201, responses=documented(401, 403, 404, 409)
)
async def create_customer(body: CustomerIn, request: Request, caller: Caller) -> CustomerOut:
    """A customer with its wallet (and opening funds). A reseller's customer is its own."""
    app = container(request)
    spec = NewCustomer(**body.model_dump())

    def work() -> CustomerOut:
        with app.uow() as uow:
            final = spec
            if caller.role == "reseller":
                if spec.reseller is not None:
                    raise ApiProblem(
                        403,
                        "reseller: a reseller token always creates its own customers",
                        field="reseller",
                        rule="admin only",
                    )
                reseller = uow.session.get(Reseller, caller.reseller_id)
                assert reseller is not None
                final = replace(spec, reseller=str(reseller.id))
            customer = add_customer(uow, spec=final, now=app.clock.now(), actor=caller.actor)
            balance = ledger.wallet_balance(uow.session, customer.id, customer.currency)
            return customer_out(customer, balance)

    return await call(work)


@router.get("/{customer_id}", response_model=CustomerOut, responses=documented(401, 404))
async def get_customer(customer_id: CustomerId, request: Request, caller: Caller) -> CustomerOut:
    """One customer with its wallet balance."""
    app = container(request)

    def work() -> CustomerOut:
        with app.uow() as uow:
            customer = visible_customer(uow.session, caller, customer_id)
            balance = ledger.wallet_balance(uow.session, customer.id, customer.currency)
            return customer_out(customer, balance)

    return await call(work)


@router.get("/{customer_id}/wallet", response_model=WalletOut, responses=documented(401, 404))
async def get_wallet(customer_id: CustomerId, request: Request, caller: Caller) -> WalletOut:
    """The wallet balance and its most recent postings."""
    app = container(request)

    def work() -> WalletOut:
        with app.uow() as uow:
            customer = visible_customer(uow.session, caller, customer_id)
            code = AccountRef.wallet(customer.id, customer.currency).code
            rows = uow.session.execute(
                select(LedgerPosting, LedgerTransaction)
                .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
                .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
                .where(LedgerAccount.code == code)
                .order_by(LedgerTransaction.effective_at.desc(), LedgerPosting.id.desc())
                .limit(RECENT_POSTINGS)
            ).all()
            balance = ledger.wallet_balance(uow.session, customer.id, customer.currency)
            return WalletOut(
                customer_id=customer.id,
                balance=Amount.of(balance),
                postings=[
                    PostingOut(
                        transaction_id=t.id,
                        kind=t.kind,
                        memo=t.memo,
                        amount=Amount.of(Money(p.amount_minor, p.currency)),
                        effective_at=t.effective_at,
                    )
                    for p, t in rows
                ],
            )

    return await call(work)


@router.get("/{customer_id}/preview", response_model=PreviewOut, responses=documented(401, 404))
async def preview_customer(
    customer_id: CustomerId,
    request: Request,
    caller: Caller,
    until: Annotated[datetime | None, Query(description="ISO 8601 instant (default: now)")] = None,
) -> PreviewOut:
    """What the engine would charge and change for this customer up to ``until``; writes
    nothing."""
    app = container(request)
    if until is not None and until.utcoffset() is None:
        raise ApiProblem(422, "until: must carry a UTC offset", field="until", rule="timezone")
    instant = until or app.clock.now()

    def work() -> PreviewOut:
        with app.uow() as uow:
            customer = visible_customer(uow.session, caller, customer_id)
            outcome = preview(uow, customer_id=customer.id, until=instant)
            return PreviewOut(
                customer_id=customer.id,
                until=instant,
                balance=Amount.of(outcome.balance),
                charges=[
                    ChargePreview(
                        service_id=c.service_id,
                        kind=c.kind.value,
                        period_start=c.period.start,
                        period_end=c.period.end,
                        amount=Amount.of(c.gross),
                        description=c.description,
                    )
                    for c in outcome.charges
                ],
                transitions=[
                    TransitionPreview(
                        service_id=t.service_id,
                        from_state=t.from_state.value,
                        to_state=t.to_state.value,
                        reason=t.reason,
                        at=t.at,
                    )
                    for t in outcome.transitions
                ],
            )

    return await call(work)
