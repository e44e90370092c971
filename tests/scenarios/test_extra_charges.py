"""One-off extra charges and recurring add-ons (issue 17, item 4), through the books.

April 2026 has 30 days. A static IP at 3.00 a period attached on 11 April covers 20 of April's
30 days: 2.00 at once, then 3.00 with every period's plan charge. An installation fee of 25.00
is taken from a prepaid wallet at once, or waits for a postpaid customer's next invoice, where
it is a line of its own. Every scenario ends with the books checked (``check_books``) and every
invoice's totals equal to the sum of its lines.
"""

from __future__ import annotations

from datetime import date, datetime
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import select

from ispbill.adapters.db.models import Invoice, InvoiceLineRow
from ispbill.bootstrap import App
from ispbill.domain.errors import Conflict, ValidationError
from ispbill.use_cases.billing import extras
from ispbill.use_cases.catalog import offerings as catalog

from .helpers import (
    ACTOR,
    ChargeView,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    events,
    state,
    tick,
    wallet,
)

T0 = at(2026, 3, 20, 9)
APRIL = at(2026, 4, 1, 6)
ADD = at(2026, 4, 11, 10)
MAY = at(2026, 5, 1, 6)
JUNE = at(2026, 6, 1, 6)
APR1, APR11, MAY1, JUN1 = date(2026, 4, 1), date(2026, 4, 11), date(2026, 5, 1), date(2026, 6, 1)


def _catalog(app: App) -> None:
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")


def _charge(app: App, customer: int, amount: str, now: datetime = ADD, **kw: Any) -> Any:
    kw.setdefault("description", "Installation")
    with app.uow() as uow:
        return extras.add_extra_charge(
            uow, customer_id=customer, amount=amount, now=now, actor=ACTOR, **kw
        )


def _addon(app: App, service: int, price: str = "3.00", now: datetime = ADD, **kw: Any) -> Any:
    kw.setdefault("description", "Static IP")
    with app.uow() as uow:
        return extras.add_addon(uow, service_id=service, price=price, now=now, actor=ACTOR, **kw)


def _invoices_equal_their_lines(app: App) -> list[tuple[int, list[tuple[str, int]]]]:
    """Every invoice's net, tax and gross are the sums of its lines; returns (gross, lines)."""
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
            found.append(
                (invoice.gross_minor, [(line.description, line.gross_minor) for line in lines])
            )
    return found


def test_prepaid_one_off_charge_is_taken_from_the_wallet_once_per_key(app: App) -> None:
    _catalog(app)
    with app.uow() as uow:
        vat = catalog.add_tax_profile(
            uow, name="VAT 21", rate="21", inclusive=False, now=T0, actor=ACTOR
        ).id
    pia = add_customer(app, T0, "Pia", available_funds="100.00")
    add_service(app, T0, pia, "Home 30", active_from=APR1)
    tick(app, APRIL)
    assert wallet(app, pia) == 70_00

    first = _charge(app, pia, "10.00", quantity=2, tax_profile_id=vat, key="install-1")

    # 2 x 10.00 = 20.00 net, 21 % tax 4.20: 24.20 from the wallet at once
    assert (first.created, first.paid_from_wallet) == (True, True)
    assert (str(first.charge.net), str(first.charge.tax), str(first.charge.gross)) == (
        "20.00 USD",
        "4.20 USD",
        "24.20 USD",
    )
    assert wallet(app, pia) == 45_80
    again = _charge(app, pia, "10.00", quantity=2, tax_profile_id=vat, key="install-1")
    assert (again.created, again.charge.id) == (False, first.charge.id)
    assert wallet(app, pia) == 45_80
    with pytest.raises(Conflict) as refused:
        _charge(app, pia, "11.00", quantity=2, tax_profile_id=vat, key="install-1")
    assert refused.value.field == "idempotency_key"
    with pytest.raises(ValidationError) as short:
        _charge(app, pia, "45.81", description="Router")
    assert short.value.field == "amount"
    with pytest.raises(ValidationError) as empty:
        _charge(app, pia, "1.00", description="  ")
    assert empty.value.field == "description"
    assert wallet(app, pia) == 45_80
    [added] = events(app, pia, prefix="charge.")
    assert (added.kind, added.reason, added.figures["gross"], added.figures["paid_from"]) == (
        "charge.added",
        "Installation",
        "24.20 USD",
        "wallet",
    )
    check_books(app)


def test_postpaid_one_off_charge_is_a_line_of_the_next_invoice(app: App) -> None:
    _catalog(app)
    olga = add_customer(app, T0, "Olga", balance_control="postpaid", invoicing_mode="forward")
    home = add_service(app, T0, olga, "Home 30", active_from=APR1)
    tick(app, APRIL)

    result = _charge(app, olga, "50.00", description="Router")

    assert (result.paid_from_wallet, result.charge.invoice_number) == (False, None)
    assert wallet(app, olga) == -80_00  # owed at once, invoiced with the next period
    tick(app, MAY)
    assert _invoices_equal_their_lines(app) == [
        (30_00, [("Home 30", 30_00)]),
        (80_00, [("Home 30", 30_00), ("Router", 50_00)]),
    ]
    with app.uow() as uow:
        [listed] = extras.list_extra_charges(uow, customer_id=olga)
    assert (listed.description, str(listed.gross), listed.invoice_number) == (
        "Router",
        "50.00 USD",
        "2026-000002",
    )
    assert state(app, home) == ("active", None)
    check_books(app)


def test_addon_is_charged_from_its_day_then_with_every_period(app: App) -> None:
    """Prepaid: 2.00 at once for 20 of April's 30 days, 30.00 + 3.00 on 1 May; ended on the
    last charged day (31 May), June has the plan alone."""
    _catalog(app)
    pia = add_customer(app, T0, "Pia", available_funds="100.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    tick(app, APRIL)

    added = _addon(app, home)

    assert (str(added.charged), added.invoice_number) == ("2.00 USD", None)
    assert wallet(app, pia) == 68_00
    tick(app, MAY)
    assert wallet(app, pia) == 35_00
    with app.uow() as uow:
        ended = extras.end_addon(uow, addon_id=added.addon.id, now=at(2026, 5, 20, 9), actor=ACTOR)
    assert ended.ends_on == date(2026, 5, 31)
    tick(app, JUNE)
    assert wallet(app, pia) == 5_00
    assert charges(app, pia) == [
        ChargeView(home, "period", APR1, MAY1, Fraction(1), 30_00, at(2026, 4, 1), False),
        ChargeView(home, "addon", APR11, MAY1, Fraction(2, 3), 2_00, ADD, False),
        ChargeView(home, "period", MAY1, JUN1, Fraction(1), 30_00, at(2026, 5, 1), False),
        ChargeView(home, "addon", MAY1, JUN1, Fraction(1), 3_00, at(2026, 5, 1), False),
        ChargeView(
            home, "period", JUN1, date(2026, 7, 1), Fraction(1), 30_00, at(2026, 6, 1), False
        ),
    ]
    kinds = [e.kind for e in events(app, pia) if e.kind.startswith("service.addon")]
    assert kinds == ["service.addon_added", "service.addon_ended"]
    check_books(app)


def test_prepaid_period_needs_funds_for_the_plan_and_its_addons(app: App) -> None:
    """31.00 covers the plan (30.00) but not the plan and the add-on (33.00): deactivated."""
    _catalog(app)
    pia = add_customer(app, T0, "Pia", available_funds="30.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    _addon(app, home, now=T0, starts_on=APR1)
    tick(app, APRIL)
    assert state(app, home) == ("deactivated", "insufficient_funds")
    assert wallet(app, pia) == 30_00
    check_books(app)


def test_postpaid_addon_rest_of_period_is_invoiced_at_once(app: App) -> None:
    _catalog(app)
    olga = add_customer(app, T0, "Olga", balance_control="postpaid", invoicing_mode="forward")
    home = add_service(app, T0, olga, "Home 30", active_from=APR1)
    tick(app, APRIL)

    added = _addon(app, home)
    assert (str(added.charged), added.invoice_number) == ("2.00 USD", "2026-000002")
    tick(app, MAY)
    assert _invoices_equal_their_lines(app) == [
        (30_00, [("Home 30", 30_00)]),
        (2_00, [("Static IP", 2_00)]),
        (33_00, [("Home 30", 30_00), ("Static IP", 3_00)]),
    ]
    with pytest.raises(ValidationError) as early, app.uow() as uow:
        extras.end_addon(
            uow, addon_id=added.addon.id, ends_on=date(2026, 5, 10), now=MAY, actor=ACTOR
        )
    assert early.value.field == "ends_on"
    check_books(app)
