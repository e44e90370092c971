"""Corrections (issue 17, item 6) through the books: a credit note for an amount of a line or a
whole invoice, the void of an unpaid invoice by a full credit note (the invoice keeps its
number, the credit notes have their own series), a customer's own payment terms, and a
payment's received day apart from when it was typed.

A postpaid customer on Home 30 (30.00 + 21 % VAT = 36.30) is invoiced on 1 April and 1 May.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from ispbill.adapters.db.models import Invoice, Payment
from ispbill.bootstrap import App
from ispbill.domain.errors import ValidationError
from ispbill.use_cases.billing import invoice_corrections as corrections
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.payments import recording as payments

from .helpers import (
    ACTOR,
    add_customer,
    add_plan,
    add_service,
    at,
    check_books,
    events,
    tick,
    wallet,
)

T0 = at(2026, 3, 20, 9)
APRIL = at(2026, 4, 1, 6)
FIX = at(2026, 4, 5, 10)
MAY = at(2026, 5, 1, 6)
APR1 = date(2026, 4, 1)


def _world(app: App, **terms: object) -> tuple[int, int]:
    with app.uow() as uow:
        vat = catalog.add_tax_profile(
            uow, name="VAT 21", rate="21", inclusive=False, now=T0, actor=ACTOR
        ).id
    with app.uow() as uow:
        catalog.add_class(
            uow, spec=catalog.NewClass(name="Home", tax_profile_id=vat), now=T0, actor=ACTOR
        )
    add_plan(app, T0, "Home 30", "30.00")
    olga = add_customer(
        app,
        T0,
        "Olga",
        balance_control="postpaid",
        invoicing_mode="forward",
        use_credit_automatically=True,
        **terms,
    )
    service = add_service(app, T0, olga, "Home 30", active_from=APR1)
    tick(app, APRIL)
    return olga, service


def _documents(app: App, customer: int) -> list[tuple[str, str, int, int, str, str | None]]:
    with app.uow() as uow:
        rows = list(
            uow.session.scalars(
                select(Invoice).where(Invoice.customer_id == customer).order_by(Invoice.id)
            )
        )
        numbers = {i.id: i.number for i in rows}
        return [
            (
                i.number,
                i.kind,
                i.gross_minor,
                i.paid_minor,
                i.status,
                numbers.get(i.corrects_id or 0),
            )
            for i in rows
        ]


def _invoice_id(app: App, number: str) -> int:
    with app.uow() as uow:
        return uow.session.scalars(select(Invoice.id).where(Invoice.number == number)).one()


def test_part_of_a_line_then_the_rest_never_more_than_the_invoice(app: App) -> None:
    olga, _ = _world(app)
    assert wallet(app, olga) == -36_30
    april = _invoice_id(app, "2026-000001")
    with app.uow() as uow:
        done = corrections.credit_invoice(
            uow, invoice_id=april, line=1, amount="12.10", reason="outage 3 days",
            now=FIX, actor=ACTOR,
        )  # fmt: skip
    # 12.10 gross at 21 %: 10.00 net + 2.10 tax; applied to the open invoice at once
    assert (done.credit_note_number, str(done.credited), done.invoice_status) == (
        "CN2026-00001",
        "12.10 USD",
        "partially_paid",
    )
    assert wallet(app, olga) == -24_20
    with pytest.raises(ValidationError) as too_much, app.uow() as uow:
        corrections.credit_invoice(
            uow, invoice_id=april, line=1, amount="24.21", reason="x", now=FIX, actor=ACTOR
        )
    assert too_much.value.field == "lines"
    with pytest.raises(ValidationError) as no_reason, app.uow() as uow:
        corrections.credit_invoice(uow, invoice_id=april, reason=" ", now=FIX, actor=ACTOR)
    assert no_reason.value.field == "reason"
    with pytest.raises(ValidationError) as paid, app.uow() as uow:
        corrections.void_invoice(uow, invoice_id=april, reason="x", now=FIX, actor=ACTOR)
    assert paid.value.field == "invoice"
    with app.uow() as uow:
        rest = corrections.credit_invoice(
            uow, invoice_id=april, line=1, amount="24.20", reason="goodwill", now=FIX, actor=ACTOR
        )
    assert (rest.credit_note_number, rest.invoice_status) == ("CN2026-00002", "paid")
    assert wallet(app, olga) == 0
    assert _documents(app, olga) == [
        ("2026-000001", "invoice", 36_30, 36_30, "paid", None),
        ("CN2026-00001", "credit_note", 12_10, 12_10, "paid", "2026-000001"),
        ("CN2026-00002", "credit_note", 24_20, 24_20, "paid", "2026-000001"),
    ]
    kinds = [(e.kind, e.reason) for e in events(app, olga, prefix="invoice.")]
    assert kinds == [("invoice.credited", "outage 3 days"), ("invoice.credited", "goodwill")]
    check_books(app)


def test_void_an_unpaid_invoice_keeps_its_number(app: App) -> None:
    olga, _ = _world(app)
    april = _invoice_id(app, "2026-000001")
    with app.uow() as uow:
        done = corrections.void_invoice(
            uow, invoice_id=april, reason="issued in error", now=FIX, actor=ACTOR
        )
    assert (done.invoice_status, done.credit_note_number) == ("void", "CN2026-00001")
    assert wallet(app, olga) == 0
    tick(app, MAY)  # the next invoice takes the next number: the series has no gap
    assert [d[:5] for d in _documents(app, olga)] == [
        ("2026-000001", "invoice", 36_30, 0, "void"),
        ("CN2026-00001", "credit_note", 36_30, 36_30, "paid"),
        ("2026-000002", "invoice", 36_30, 0, "issued"),
    ]
    with pytest.raises(ValidationError) as twice, app.uow() as uow:
        corrections.void_invoice(uow, invoice_id=april, reason="again", now=FIX, actor=ACTOR)
    assert "is void" in str(twice.value)
    [voided] = events(app, olga, prefix="invoice.")
    assert (voided.kind, voided.figures["credit_note"]) == ("invoice.voided", "CN2026-00001")
    check_books(app)


def test_customer_payment_terms_and_received_day(app: App) -> None:
    olga, _ = _world(app)
    with app.uow() as uow:
        first = uow.session.scalars(select(Invoice).where(Invoice.number == "2026-000001")).one()
        assert first.due_date == date(2026, 4, 15)  # the operator's 14 days
    with app.uow() as uow:
        corrections.set_payment_terms(uow, customer_id=olga, days=30, now=FIX, actor=ACTOR)
    with pytest.raises(ValidationError) as refused, app.uow() as uow:
        corrections.set_payment_terms(uow, customer_id=olga, days=400, now=FIX, actor=ACTOR)
    assert refused.value.field == "payment_terms_days"
    tick(app, MAY)
    with app.uow() as uow:
        second = uow.session.scalars(select(Invoice).where(Invoice.number == "2026-000002")).one()
        assert second.due_date == date(2026, 5, 31)
    spec = payments.NewPayment(
        customer_id=olga, amount="36.30", reference="VS-1", received_on=date(2026, 4, 28)
    )
    with app.uow() as uow:
        payments.record_payment(uow, spec=spec, now=MAY, actor=ACTOR)
    with app.uow() as uow:
        payment = uow.session.scalars(select(Payment)).one()
        assert (payment.received_at, payment.recorded_at) == (at(2026, 4, 28), MAY)
    future = payments.NewPayment(
        customer_id=olga, amount="1.00", reference="VS-2", received_on=date(2026, 5, 2)
    )
    with pytest.raises(ValidationError) as ahead, app.uow() as uow:
        payments.record_payment(uow, spec=future, now=MAY, actor=ACTOR)
    assert ahead.value.field == "received_on"
    check_books(app)
