"""UISP CRM: prepaying months ahead through forward invoicing and credit, N-month billing
periods, and "active to" pauses (seed 000).

Seed: "The client wants to prepay service for three months ahead. When the client receives the
invoice with the amount for one month's service, he/she will have the option to pay a higher
amount ... The one month invoice will be marked as paid and the rest of the payment will be
saved as the client's credit. When a new invoice is created the next month, it will
automatically use the client's credit." Configuration: "Forward" invoicing type and "Use
(client's) credit automatically".
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from sqlalchemy import select, update

from ispbill.adapters.db.models import Service
from ispbill.bootstrap import App
from ispbill.domain.calendar import local_midnight

from .helpers import (
    ChargeView,
    InvoiceView,
    add_class,
    add_customer,
    add_plan,
    add_service,
    allocations,
    at,
    charges,
    check_books,
    events,
    invoices,
    pay,
    postings,
    set_setting,
    state,
    tick,
    tick_daily,
    wallet,
)

T0 = at(2026, 1, 1, 9)
MIDNIGHT = {m: at(2026, m, 1) for m in range(1, 13)}


def _catalog(app: App) -> None:
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00", period_months=("3:10%",))


def _forward_postpaid(app: App, name: str) -> int:
    return add_customer(
        app,
        T0,
        name,
        balance_control="postpaid",
        invoicing_mode="forward",
        use_credit_automatically=True,
    )


def _month(service: int, month: int) -> ChargeView:
    start = date(2026, month, 1)
    end = date(2026 + month // 12, month % 12 + 1, 1)
    return ChargeView(service, "period", start, end, Fraction(1), 30_00, MIDNIGHT[month], True)


def test_paying_three_months_on_the_first_invoice_leaves_credit_for_the_next_two(
    app: App,
) -> None:
    """Invoice 1 (30.00) is paid out of a 90.00 payment; 60.00 stays as credit and pays
    invoices 2 and 3 when they are issued, with no new payment; invoice 4 waits unpaid."""
    _catalog(app)
    uma = _forward_postpaid(app, "Uma")
    home = add_service(app, T0, uma, "Home 30", active_from=date(2026, 1, 1))

    tick(app, T0)
    assert invoices(app, uma) == [
        InvoiceView(
            date(2026, 1, 1), 30_00, 0, "issued", ((home, date(2026, 1, 1), date(2026, 2, 1)),)
        )
    ]
    assert wallet(app, uma) == -30_00

    recorded = pay(app, at(2026, 1, 5, 14), uma, "90.00", "uisp-90")
    assert str(recorded.applied) == "30.00 USD"
    assert [(i.status, i.paid) for i in invoices(app, uma)] == [("paid", 30_00)]
    assert wallet(app, uma) == 60_00  # the client's credit

    expected_wallet = {2: 30_00, 3: 0, 4: -30_00}
    for month in (2, 3, 4):
        report = tick(app, at(2026, month, 1, 6))
        assert (report.charges, report.invoices) == (1, 1)
        assert wallet(app, uma) == expected_wallet[month]

    assert charges(app, uma) == [_month(home, m) for m in (1, 2, 3, 4)]
    assert [(i.issue_date, i.gross, i.paid, i.status) for i in invoices(app, uma)] == [
        (date(2026, 1, 1), 30_00, 30_00, "paid"),
        (date(2026, 2, 1), 30_00, 30_00, "paid"),
        (date(2026, 3, 1), 30_00, 30_00, "paid"),
        (date(2026, 4, 1), 30_00, 0, "issued"),
    ]
    assert allocations(app, uma) == [
        ("2026-01-01", 30_00, "payment"),
        ("2026-02-01", 30_00, "credit"),
        ("2026-03-01", 30_00, "credit"),
    ]
    wallet_code = f"wallet:{uma}:USD"
    assert postings(app, uma) == [
        (f"charge:{home}:period:2026-01-01", wallet_code, -30_00),
        (f"charge:{home}:period:2026-01-01", "revenue:USD", 30_00),
        ("uisp-90", "cash:USD", -90_00),
        ("uisp-90", wallet_code, 90_00),
        (f"charge:{home}:period:2026-02-01", wallet_code, -30_00),
        (f"charge:{home}:period:2026-02-01", "revenue:USD", 30_00),
        (f"charge:{home}:period:2026-03-01", wallet_code, -30_00),
        (f"charge:{home}:period:2026-03-01", "revenue:USD", 30_00),
        (f"charge:{home}:period:2026-04-01", wallet_code, -30_00),
        (f"charge:{home}:period:2026-04-01", "revenue:USD", 30_00),
    ]
    assert [(e.kind, e.at, e.figures) for e in events(app, uma)] == [
        ("service.active", MIDNIGHT[1], {"from": "pending", "active_from": "2026-01-01"})
    ]
    assert check_books(app).wallets == {uma: -30_00}


def test_a_three_month_billing_period_is_invoiced_every_three_months_with_its_discount(
    app: App,
) -> None:
    """Seed: "the admin sets the billing period to three months. If the 'active to' date is
    not set, the service will continue to run and the invoice will be created every three
    months." The plan enables 3 months at 10 % off: 3 x 30.00 - 10 % = 81.00 per period."""
    _catalog(app)
    quinn = _forward_postpaid(app, "Quinn")
    quarterly = add_service(
        app, T0, quinn, "Home 30", active_from=date(2026, 1, 1), period_months=3
    )

    issued_on_tick = []
    for month in range(1, 11):  # the engine looks every month; it bills every third
        issued_on_tick.append(tick(app, at(2026, month, 1, 6)).invoices)
    assert issued_on_tick == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]

    quarters = [
        (date(2026, 1, 1), date(2026, 4, 1)),
        (date(2026, 4, 1), date(2026, 7, 1)),
        (date(2026, 7, 1), date(2026, 10, 1)),
        (date(2026, 10, 1), date(2027, 1, 1)),
    ]
    assert charges(app, quinn) == [
        ChargeView(quarterly, "period", s, e, Fraction(1), 81_00, at(s.year, s.month, 1), True)
        for s, e in quarters
    ]
    assert invoices(app, quinn) == [
        InvoiceView(s, 81_00, 0, "issued", ((quarterly, s, e),)) for s, e in quarters
    ]
    assert state(app, quarterly) == ("active", None)  # no "active to": it renews
    assert check_books(app).wallets == {quinn: -4 * 81_00}


def test_active_to_pauses_the_service_and_no_invoice_follows(app: App) -> None:
    """Seed: "by defining the 'Active to' date, the service is 'paused' and the client receives
    no more invoices."

    Ambiguity resolved: with forward invoicing the last period is cut at "active to" and
    prorated (February 1-14 of 28 days: 14/28 x 30.00 = 15.00), because the date is known when
    the period is invoiced; an operator does not bill a seasonal home for days after it is shut
    (UISP prorates the last period too). The engine charged the whole of February before."""
    _catalog(app)
    sam = _forward_postpaid(app, "Sam")
    cabin = add_service(
        app, T0, sam, "Home 30", active_from=date(2026, 1, 1), active_to=date(2026, 2, 14)
    )

    tick_daily(app, date(2026, 1, 1), date(2026, 2, 20))
    assert state(app, cabin) == ("paused", "active_to")
    report = tick(app, at(2026, 6, 1, 6))  # months later: nothing more
    assert (report.charges, report.invoices) == (0, 0)

    assert charges(app, sam) == [
        _month(cabin, 1),
        ChargeView(
            cabin,
            "period",
            date(2026, 2, 1),
            date(2026, 2, 15),
            Fraction(14, 28),
            15_00,
            MIDNIGHT[2],
            True,
        ),
    ]
    assert [(i.issue_date, i.gross, i.status) for i in invoices(app, sam)] == [
        (date(2026, 1, 1), 30_00, "issued"),
        (date(2026, 2, 1), 15_00, "issued"),
    ]
    assert [(e.kind, e.reason, e.at, e.figures) for e in events(app, sam)] == [
        ("service.active", "", MIDNIGHT[1], {"from": "pending", "active_from": "2026-01-01"}),
        (
            "service.paused",
            "active_to",
            at(2026, 2, 15),
            {"from": "active", "active_to": "2026-02-14"},
        ),
    ]
    assert check_books(app).wallets == {sam: -45_00}


def test_active_to_moved_earlier_refunds_unused_days_as_credit_never_as_a_new_invoice(
    app: App,
) -> None:
    """With ``refund_on_pause`` the unused days of an already invoiced period come back to the
    wallet when the service pauses. The refund is credit: it pays the oldest open invoice and
    is never listed on an invoice (the engine used to invoice it as a 15.00 debt, which also
    counted as 15.00 of phantom credit).

    No use case edits "active to" yet, so the test edits the service row the way one would:
    the new date and the instant the engine must look at it again."""
    _catalog(app)
    set_setting(app, T0, "refund_on_pause", "true")
    rita = _forward_postpaid(app, "Rita")
    home = add_service(app, T0, rita, "Home 30", active_from=date(2026, 1, 1))
    tick(app, T0)
    tick(app, at(2026, 2, 1, 6))  # February invoiced in full

    with app.uow() as uow:
        uow.session.execute(
            update(Service)
            .where(Service.id == home)
            .values(
                active_to=date(2026, 2, 14), next_due_at=local_midnight(date(2026, 2, 15), "UTC")
            )
        )
        uow.commit()
    tick_daily(app, date(2026, 2, 10), date(2026, 3, 5))

    refund = ChargeView(
        home,
        "refund",
        date(2026, 2, 15),
        date(2026, 3, 1),
        Fraction(1, 2),
        15_00,
        at(2026, 2, 15),
        False,
    )
    assert charges(app, rita) == [_month(home, 1), _month(home, 2), refund]
    assert [(i.issue_date, i.gross, i.paid, i.status) for i in invoices(app, rita)] == [
        (date(2026, 1, 1), 30_00, 15_00, "partially_paid"),
        (date(2026, 2, 1), 30_00, 0, "issued"),
    ]
    assert allocations(app, rita) == [("2026-01-01", 15_00, "credit")]
    assert postings(app, rita)[-2:] == [
        (f"charge:{home}:refund:2026-02-15", f"wallet:{rita}:USD", 15_00),
        (f"charge:{home}:refund:2026-02-15", "revenue:USD", -15_00),
    ]
    assert state(app, home) == ("paused", "active_to")
    with app.uow() as uow:
        row = uow.session.scalars(select(Service).where(Service.id == home)).one()
        assert (row.billed_until, row.next_due_at) == (date(2026, 2, 15), None)
    assert check_books(app).wallets == {rita: -45_00}
