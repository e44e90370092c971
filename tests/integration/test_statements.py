"""Splynx monthly statements of prepaid charges, issued on the first day of the next month."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.models import Charge, Invoice, LedgerAccount
from ispbill.bootstrap import App
from ispbill.domain.ledger import AccountKind, AccountRef
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.catalog import customer_accounts as customers
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, customer_id_of, plan_id_of
from ispbill.use_cases.payments import refill_cards
from ispbill.use_cases.service_lifecycle import new_services as services

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def _prepaid_customer(app: App) -> None:
    with app.uow() as uow:
        catalog.add_class(uow, spec=catalog.NewClass(name="Home"), now=T0, actor="t")
    with app.uow() as uow:
        catalog.add_plan(
            uow,
            spec=catalog.NewPlan(
                name="Flat 30", price="30.00", currency="USD", download="20M", upload="5M"
            ),
            now=T0,
            actor="t",
        )
    with app.uow() as uow:
        customers.add_customer(
            uow,
            spec=customers.NewCustomer(
                name="Prepaid Pat",
                customer_class_id=customer_class_id_of(uow, "Home"),
                currency="USD",
                available_funds="100.00",
            ),
            now=T0,
            actor="t",
        )
    with app.uow() as uow:
        services.add_service(
            uow,
            spec=services.NewService(
                customer_id=customer_id_of(uow, "Prepaid Pat"),
                plan_id=plan_id_of(uow, "Flat 30"),
                active_from=date(2026, 1, 1),
            ),
            now=T0,
            actor="t",
        )


def test_statement_lists_last_months_prepaid_charges_once(app: App) -> None:
    _prepaid_customer(app)
    with app.uow() as uow:
        settings_store.set_value(
            uow, key="prepaid_monthly_statement", raw="true", now=T0, actor="t"
        )
    billing.tick(app.uow, now=T0)
    with app.uow() as uow:
        assert uow.session.scalars(select(Invoice)).all() == []  # January is not over yet

    feb = datetime(2026, 2, 1, 6, tzinfo=UTC)
    first = billing.tick(app.uow, now=feb)
    again = billing.tick(app.uow, now=feb)
    assert (first.invoices, again.invoices) == (1, 0)
    with app.uow() as uow:
        [statement] = uow.session.scalars(select(Invoice)).all()
        assert (statement.issue_date, statement.gross_minor, statement.status) == (
            date(2026, 2, 1),
            3000,
            "paid",
        )
        assert statement.number == "2026-000001"
        charges = uow.session.scalars(select(Charge).order_by(Charge.period_start)).all()
        assert [(c.period_start, c.invoice_id) for c in charges] == [
            (date(2026, 1, 1), statement.id),
            (date(2026, 2, 1), None),  # February's charge waits for March 1st
        ]
        assert ledger.wallet_balance(uow.session, 1, "USD").minor == 100_00 - 2 * 30_00
        assert ledger.check(uow.session) == []


def test_statements_are_off_by_default(app: App) -> None:
    _prepaid_customer(app)
    billing.tick(app.uow, now=T0)
    report = billing.tick(app.uow, now=datetime(2026, 3, 2, tzinfo=UTC))
    assert report.invoices == 0


def test_the_tick_moves_expired_refill_cards_to_breakage(app: App) -> None:
    """Everything due happens in the tick, including the expiry of unredeemed cards."""

    with app.uow() as uow:
        refill_cards.generate_batch(
            uow,
            spec=refill_cards.NewBatch(
                count=3, value="20.00", currency="USD", expires_on=date(2026, 1, 31)
            ),
            key=b"tick-test-refill-secret-0123456789abcdef",
            now=T0,
            actor="t",
            deliver=lambda _issued: None,
        )
    assert billing.tick(app.uow, now=datetime(2026, 1, 31, 12, tzinfo=UTC)).cards_expired == 0
    assert billing.tick(app.uow, now=datetime(2026, 2, 1, 1, tzinfo=UTC)).cards_expired == 3
    assert billing.tick(app.uow, now=datetime(2026, 2, 1, 2, tzinfo=UTC)).cards_expired == 0
    with app.uow() as uow:
        code = AccountRef.system(AccountKind.REFILL_CARD_LIABILITY, "USD").code
        liability = uow.session.scalars(
            select(LedgerAccount).where(LedgerAccount.code == code)
        ).one()
        assert liability.balance_minor == 0  # issued 60.00, all of it expired to breakage
        assert ledger.check(uow.session) == []
