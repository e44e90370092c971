"""Customers, their wallets and ledger history, and the engine's dry run for one of them.

``GET /api/v1/customers`` pages by id (``pagination.py``); a reseller token sees only its own
customers and gets a 404 for anyone else's; a customer session sees only itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import (
    Customer,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    Reseller,
)
from ispbill.domain.customers import BalanceControl, CustomerStatus
from ispbill.domain.ledger import AccountRef, EntryKind
from ispbill.domain.money import Money
from ispbill.entrypoints.api.auth import Caller, Principal, Staff
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call
from ispbill.entrypoints.api.pagination import Page, Paging, paginate
from ispbill.entrypoints.api.routes.engine import within_horizon
from ispbill.entrypoints.api.schemas import (
    TEXT,
    Amount,
    ChargePreview,
    CustomerIn,
    CustomerOut,
    Instant,
    LedgerEntryOut,
    PostingOut,
    PreviewOut,
    TransitionPreview,
    WalletOut,
)
from ispbill.use_cases.billing.reevaluation import preview
from ispbill.use_cases.catalog.customer_accounts import NewCustomer, add_customer

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
        invoicing_mode=customer.invoicing_mode,
        locale=customer.locale,
        credit_limit=(
            Amount.of(Money(customer.credit_limit_minor, customer.currency))
            if customer.credit_limit_minor is not None
            else None
        ),
        minimum_balance=Amount.of(Money(customer.minimum_balance_minor, customer.currency)),
        created_at=customer.created_at,
        balance=Amount.of(balance),
    )


def visible_customer(session: Session, caller: Principal, customer_id: int) -> Customer:
    return caller.customer(session, customer_id)


@router.get("", response_model=Page[CustomerOut])
async def list_customers(
    request: Request,
    caller: Staff,
    paging: Paging,
    search: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    status: Annotated[CustomerStatus | None, Query()] = None,
    balance_control: Annotated[BalanceControl | None, Query()] = None,
    reseller_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    class_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[CustomerOut]:
    """Customers by id, a page at a time; ``search`` matches part of the name."""
    app = container(request)

    def work() -> Page[CustomerOut]:
        with app.uow() as uow:
            query = caller.scope(select(Customer), Customer.id)
            if search:
                query = query.where(Customer.name.icontains(search, autoescape=True))
            if status is not None:
                query = query.where(Customer.status == status.value)
            if balance_control is not None:
                query = query.where(Customer.balance_control == balance_control.value)
            if reseller_id is not None:
                query = query.where(Customer.reseller_id == reseller_id)
            if class_id is not None:
                query = query.where(Customer.class_id == class_id)

            def shape(rows: Sequence[Customer]) -> list[CustomerOut]:
                balances = ledger.wallet_balances(uow.session, [(c.id, c.currency) for c in rows])
                return [customer_out(c, balances[c.id]) for c in rows]

            return paginate(uow.session, query, Customer.id, paging, shape)

    return await call(work)


@router.post("", response_model=CustomerOut, status_code=201)
async def create_customer(body: CustomerIn, request: Request, caller: Staff) -> CustomerOut:
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


@router.get("/{customer_id}", response_model=CustomerOut)
async def get_customer(customer_id: CustomerId, request: Request, caller: Caller) -> CustomerOut:
    """One customer with its wallet balance."""
    app = container(request)

    def work() -> CustomerOut:
        with app.uow() as uow:
            customer = visible_customer(uow.session, caller, customer_id)
            balance = ledger.wallet_balance(uow.session, customer.id, customer.currency)
            return customer_out(customer, balance)

    return await call(work)


@router.get("/{customer_id}/wallet", response_model=WalletOut)
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


@router.get("/{customer_id}/ledger", response_model=Page[LedgerEntryOut])
async def list_ledger(
    customer_id: CustomerId,
    request: Request,
    caller: Caller,
    paging: Paging,
    kind: Annotated[EntryKind | None, Query()] = None,
) -> Page[LedgerEntryOut]:
    """The wallet's history, newest posting first, a page at a time."""
    app = container(request)

    def work() -> Page[LedgerEntryOut]:
        with app.uow() as uow:
            customer = visible_customer(uow.session, caller, customer_id)
            code = AccountRef.wallet(customer.id, customer.currency).code
            query = (
                select(LedgerPosting, LedgerTransaction)
                .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
                .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
                .where(LedgerAccount.code == code)
            )
            if kind is not None:
                query = query.where(LedgerTransaction.kind == kind.value)

            def shape(rows: Sequence[Any]) -> list[LedgerEntryOut]:
                return [
                    LedgerEntryOut(
                        posting_id=p.id,
                        transaction_id=t.id,
                        kind=t.kind,
                        memo=t.memo,
                        amount=Amount.of(Money(p.amount_minor, p.currency)),
                        effective_at=t.effective_at,
                        recorded_at=t.recorded_at,
                    )
                    for p, t in rows
                ]

            return paginate(
                uow.session,
                query,
                LedgerPosting.id,
                paging,
                shape,
                newest_first=True,
                scalars=False,
                row_id=lambda row: int(row[0].id),
            )

    return await call(work)


@router.get("/{customer_id}/preview", response_model=PreviewOut)
async def preview_customer(
    customer_id: CustomerId,
    request: Request,
    caller: Caller,
    until: Annotated[
        Instant | None, Query(description="ISO 8601 instant with offset (default: now)")
    ] = None,
) -> PreviewOut:
    """What the engine would charge and change for this customer up to ``until``; writes
    nothing."""
    app = container(request)
    instant = until or app.clock.now()
    within_horizon(instant - app.clock.now(), "until")

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
