"""Discounts (issue 17, item 5), through the books.

A discount is a negative charge of kind ``discount`` next to each charge of a period it
reduces, on the same invoice (``domain/discounts.py``). Home 30 costs 30.00 a month: 10 % off
for two periods charges 27.00 twice, then 30.00; a fixed 5.00 off a postpaid customer until
30 April is a line of its own on April's invoice; 50.00 off a 30.00 period takes 30.00. Every
scenario ends with the books checked and every invoice's totals equal to its lines.
"""

from __future__ import annotations

from datetime import date, datetime
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import select

from ispbill.adapters.db.models import DiscountRow, Invoice, InvoiceLineRow
from ispbill.adapters.pdf.render import render_html
from ispbill.bootstrap import App
from ispbill.domain.errors import ValidationError
from ispbill.use_cases.billing import discounting, plan_changes
from ispbill.use_cases.billing import invoice_corrections as corrections
from ispbill.use_cases.billing.invoice_documents import printable, stored_draft
from ispbill.use_cases.catalog import offerings as catalog

from .helpers import (
    ACTOR,
    CLASS,
    ChargeView,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    events,
    tick,
    wallet,
)

T0 = at(2026, 3, 20, 9)
APRIL, MAY, JUNE = at(2026, 4, 1, 6), at(2026, 5, 1, 6), at(2026, 6, 1, 6)
APR1, MAY1, JUN1, JUL1 = date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1), date(2026, 7, 1)


def _catalog(app: App) -> None:
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")


def _discount(app: App, now: datetime = T0, **kw: Any) -> discounting.DiscountView:
    with app.uow() as uow:
        return discounting.add_discount(uow, now=now, actor=ACTOR, **kw)


def _invoices_equal_their_lines(app: App) -> list[tuple[int, list[tuple[str, str, int]]]]:
    found = []
    with app.uow() as uow:
        for invoice in uow.session.scalars(select(Invoice).order_by(Invoice.id)):
            lines = list(
                uow.session.scalars(
                    select(InvoiceLineRow)
                    .where(InvoiceLineRow.invoice_id == invoice.id)
                    .order_by(InvoiceLineRow.position)
                )
            )
            assert invoice.net_minor == sum(line.net_minor for line in lines), invoice.number
            assert invoice.tax_minor == sum(line.tax_minor for line in lines), invoice.number
            assert invoice.gross_minor == sum(line.gross_minor for line in lines), invoice.number
            assert invoice.gross_minor >= 0
            found.append(
                (
                    invoice.gross_minor,
                    [(line.kind, line.description, line.gross_minor) for line in lines],
                )
            )
    return found


def test_ten_percent_for_two_periods_then_full_price(app: App) -> None:
    _catalog(app)
    pia = add_customer(app, T0, "Pia", available_funds="100.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    added = _discount(app, service_id=home, percent=10, periods=2, reason="Welcome")

    for now in (APRIL, MAY, JUNE):
        tick(app, now)

    assert wallet(app, pia) == 100_00 - 27_00 - 27_00 - 30_00
    assert charges(app, pia) == [
        ChargeView(home, "period", APR1, MAY1, Fraction(1), 30_00, at(2026, 4, 1), False),
        ChargeView(home, "discount", APR1, MAY1, Fraction(1), -3_00, at(2026, 4, 1), False),
        ChargeView(home, "period", MAY1, JUN1, Fraction(1), 30_00, at(2026, 5, 1), False),
        ChargeView(home, "discount", MAY1, JUN1, Fraction(1), -3_00, at(2026, 5, 1), False),
        ChargeView(home, "period", JUN1, JUL1, Fraction(1), 30_00, at(2026, 6, 1), False),
    ]
    with app.uow() as uow:
        [listed] = discounting.list_discounts(uow, customer_id=pia)
    assert (listed.id, listed.percent, listed.periods, str(listed.given)) == (
        added.id,
        10,
        2,
        "6.00 USD",
    )
    [event] = events(app, pia, prefix="discount.")
    assert (event.kind, event.reason, event.figures["percent"], event.figures["periods"]) == (
        "discount.added",
        "Welcome",
        10,
        2,
    )
    check_books(app)


def test_fixed_customer_discount_is_its_own_invoice_line(app: App) -> None:
    with app.uow() as uow:
        vat = catalog.add_tax_profile(
            uow, name="VAT 21", rate="21", inclusive=False, now=T0, actor=ACTOR
        ).id
        catalog.add_class(
            uow, spec=catalog.NewClass(name=CLASS, tax_profile_id=vat), now=T0, actor=ACTOR
        )
    add_plan(app, T0, "Home 30", "30.00")
    olga = add_customer(app, T0, "Olga", balance_control="postpaid", invoicing_mode="forward")
    add_service(app, T0, olga, "Home 30", active_from=APR1)
    _discount(app, customer_id=olga, amount="5.00", until=date(2026, 4, 30), reason="Loyalty")

    tick(app, APRIL)
    tick(app, MAY)

    # 30.00 + 21 % = 36.30; 5.00 off the net is 6.05 off the gross: 30.25 in April
    assert _invoices_equal_their_lines(app) == [
        (
            30_25,
            [("charge", "Home 30", 36_30), ("discount", "Discount 5.00 USD: Loyalty", -6_05)],
        ),
        (36_30, [("charge", "Home 30", 36_30)]),
    ]
    with app.uow() as uow:
        [april] = uow.session.scalars(select(Invoice).order_by(Invoice.id).limit(1))
        assert (april.net_minor, april.tax_minor) == (25_00, 5_25)
        # the document as printed: the discount is a line of its own, and the 21 % row of the
        # tax summary holds the discounted net and tax
        draft = stored_draft(april)
        assert [line.kind.value for line in draft.lines] == ["charge", "discount"]
        assert [(r.rate_bp, r.net.minor, r.tax.minor) for r in draft.tax_summary()] == [
            (2100, 25_00, 5_25)
        ]
        page = render_html(printable(uow, april.number).view)
        assert "Discount 5.00 USD: Loyalty" in page
    assert wallet(app, olga) == -(30_25 + 36_30)
    check_books(app)


def test_discount_larger_than_the_charge_is_capped(app: App) -> None:
    _catalog(app)
    pia = add_customer(app, T0, "Pia", available_funds="10.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    _discount(app, service_id=home, amount="50.00", periods=1)

    tick(app, APRIL)  # 10.00 would not cover 30.00; the discounted period costs nothing

    assert wallet(app, pia) == 10_00
    assert [(c.kind, c.gross) for c in charges(app, pia)] == [
        ("period", 30_00),
        ("discount", -30_00),
    ]
    tick(app, MAY)  # the one period is used: 30.00 is not covered
    assert wallet(app, pia) == 10_00
    assert [(c.kind, c.gross) for c in charges(app, pia)] == [
        ("period", 30_00),
        ("discount", -30_00),
    ]
    check_books(app)


def test_ended_discount_stops_after_today(app: App) -> None:
    _catalog(app)
    pia = add_customer(app, T0, "Pia", available_funds="100.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    added = _discount(app, service_id=home, percent=50, until=date(2026, 12, 31))
    tick(app, APRIL)
    with app.uow() as uow:
        ended = discounting.end_discount(
            uow, discount_id=added.id, now=at(2026, 4, 10, 9), actor=ACTOR
        )
    assert ended.ended_on == date(2026, 4, 10)
    tick(app, MAY)
    assert wallet(app, pia) == 100_00 - 15_00 - 30_00
    assert [e.kind for e in events(app, pia, prefix="discount.")] == [
        "discount.added",
        "discount.ended",
    ]
    with app.uow() as uow, pytest.raises(ValidationError) as again:
        discounting.end_discount(uow, discount_id=added.id, now=at(2026, 5, 2, 9), actor=ACTOR)
    assert again.value.field == "discount"
    check_books(app)


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"percent": 0, "periods": 1}, "percent"),
        ({"percent": 101, "periods": 1}, "percent"),
        ({"percent": 10, "amount": "1.00", "periods": 1}, "percent"),
        ({"amount": "-1.00", "periods": 1}, "amount"),
        ({"amount": "0", "periods": 1}, "amount"),
        ({"percent": 10}, "periods"),
        ({"percent": 10, "periods": 2, "until": date(2026, 5, 1)}, "periods"),
        ({"percent": 10, "periods": 0}, "periods"),
        ({"percent": 10, "until": date(2026, 3, 1)}, "until"),
    ],
)
def test_refusals_name_the_field_and_write_nothing(
    app: App, terms: dict[str, Any], field: str
) -> None:
    _catalog(app)
    pia = add_customer(app, T0, "Pia", available_funds="100.00")
    with pytest.raises(ValidationError) as refused:
        _discount(app, customer_id=pia, **terms)
    assert refused.value.field == field
    with app.uow() as uow:
        assert list(uow.session.scalars(select(DiscountRow))) == []
    assert events(app, pia, prefix="discount.") == []


def test_void_of_an_invoice_with_a_discount_line_credits_both_lines(app: App) -> None:
    """The credit note mirrors the invoice: the charge and the discount line, net 25.00."""
    _catalog(app)
    olga = add_customer(app, T0, "Olga", balance_control="postpaid", invoicing_mode="forward")
    add_service(app, T0, olga, "Home 30", active_from=APR1)
    _discount(app, customer_id=olga, amount="5.00", periods=1)
    tick(app, APRIL)
    with app.uow() as uow:
        [invoice] = uow.session.scalars(select(Invoice))
        invoice_id = invoice.id
    with app.uow() as uow:
        voided = corrections.void_invoice(
            uow, invoice_id=invoice_id, reason="issued in error", now=at(2026, 4, 2, 9), actor=ACTOR
        )
    assert (voided.invoice_status, str(voided.credited)) == ("void", "25.00 USD")
    assert wallet(app, olga) == 0
    with app.uow() as uow:
        note = uow.session.scalars(select(Invoice).where(Invoice.corrects_id == invoice_id)).one()
        draft = stored_draft(note)
        assert [(line.kind.value, line.gross.minor) for line in draft.lines] == [
            ("charge", 30_00),
            ("discount", -5_00),
        ]
        assert "Discount 5.00 USD" in render_html(printable(uow, note.number).view)
    _invoices_equal_their_lines(app)
    check_books(app)


def test_terminating_a_discounted_period_credits_its_discounted_price(app: App) -> None:
    """27.00 charged for April (10 % off 30.00); terminated on 16 April, the 15 days credited
    (16 to 30 April, as ``terminate_service`` counts them) give back 27.00 x 15 / 30 = 13.50,
    not the undiscounted 15.00."""
    _catalog(app)
    pia = add_customer(app, T0, "Pia", available_funds="100.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    _discount(app, service_id=home, percent=10, until=date(2026, 12, 31))
    tick(app, APRIL)
    assert wallet(app, pia) == 73_00
    with app.uow() as uow:
        plan_changes.terminate_service(uow, service_id=home, now=at(2026, 4, 16, 9), actor=ACTOR)
    assert wallet(app, pia) == 73_00 + 13_50
    check_books(app)
